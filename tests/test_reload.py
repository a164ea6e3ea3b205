"""Reload in process: only the difference is applied; a bad file changes nothing.

The daemon runs in the test's event loop with a fake clock; sources have a cron schedule that
never fires during the test, and the test polls by hand.
"""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest
from configs import NEVER as CRON
from configs import config_text, rule

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.daemon.reload import source_changes
from alertd.model import Sample, make_labels

NEVER = f'"{CRON}"'  # as the config text writes it

CONFIG = config_text(
    sources={"app": {"type": "test_list", "cron": CRON}, "other": {"type": "test_list", "cron": CRON, "note": "one"}},
    rules=[rule("cpu_high"), rule("mem_high", series="mem"), rule("gone", source="other", series="disk")],
    receivers={"pager": [{"type": "test_record"}]},
    routes={"receiver": "pager", "group_by": ["..."], "group_wait": "0s", "group_interval": "1s"})


def sample(name, ts, value):
    return Sample(name, make_labels({}), ts, value)


class Running:
    """A started daemon in the test loop; `poll(source, samples)` runs one tick."""

    def __init__(self, path, registry, clock, tmp_path):
        self.path, self.clock = path, clock
        self.daemon = Daemon(load_config(path, registry, environ={}), registry,
                             store_path=tmp_path / "r.db", clock=clock)

    async def poll(self, source, *samples):
        self.daemon.sources[source].pending = list(samples)
        await self.daemon.poll(source)
        await self.daemon.pass_once()

    def rewrite(self, old, new):
        text = self.path.read_text()
        assert old in text
        self.path.write_text(text.replace(old, new))


@pytest.fixture
def running(write_config, registry, clock, tmp_path):
    def make(text=CONFIG):
        return Running(write_config(text), registry, clock, tmp_path)
    return make


def outbox(daemon):
    return [(r["kind"], r["status"], json.loads(r["payload"])["incidents"][0]["rule"])
            for r in daemon.store.outbox.rows()]


def test_unchanged_rules_keep_their_runtime_and_open_incidents(running):
    async def scenario():
        r = running()
        d = r.daemon
        await d.start()
        t = r.clock.now()
        await r.poll("app", sample("cpu", t, 95), sample("mem", t, 95))
        await r.poll("other", sample("disk", t, 99))
        runtimes = {rt.rule.name: rt for rt in d.engine.runtimes()}
        cpu_detector = runtimes["cpu_high"].detector
        open_before = {i.rule: i.id for i in d.engine.tracker.open.values()}
        r.rewrite("series: mem, detector: {type: test_above, limit: 90}",
                  "series: mem, detector: {type: test_above, limit: 99}")
        r.rewrite("  - {name: gone, source: other, series: disk, detector: {type: test_above, limit: 90}}\n", "")
        r.rewrite("receivers:", "  - {name: new_rule, source: app, series: cpu, detector: {type: test_above, limit: 50}}\nreceivers:")
        outcome = await d.reload()
        after = {rt.rule.name: rt for rt in d.engine.runtimes()}
        r.clock.advance(5)
        await r.poll("app", sample("cpu", t + 5, 96), sample("mem", t + 5, 96))
        r.clock.advance(1)  # resolved notices go out at the group's next interval
        await d.pass_once()
        result = (outcome, runtimes, after, cpu_detector, open_before,
                  {i.rule: (i.id, i.count) for i in d.engine.tracker.open.values()}, outbox(d))
        await d.drain()
        await d.close()
        return result

    outcome, before, after, cpu_detector, open_before, open_after, rows = asyncio.run(scenario())
    assert outcome.ok and outcome.changes["rules_added"] == ["new_rule"]
    assert outcome.changes["rules_changed"] == ["mem_high"] and outcome.changes["rules_removed"] == ["gone"]
    assert after["cpu_high"] is before["cpu_high"] and after["cpu_high"].detector is cpu_detector
    assert after["mem_high"] is not before["mem_high"]
    # mem_high changed (limit 99): its incident stays open as the same incident; 96 < 99 is
    # normal now, and with clear_for 0 it resolves on this point.
    assert open_before.keys() == {"cpu_high", "mem_high", "gone"}
    assert open_after["cpu_high"] == (open_before["cpu_high"], 2)
    assert "gone" not in open_after and "mem_high" not in open_after
    assert open_after["new_rule"][1] == 1
    assert sorted(rows) == sorted([
        ("firing", "sent", "cpu_high"), ("firing", "sent", "mem_high"), ("firing", "sent", "gone"),
        ("resolved", "sent", "gone"),  # a removed rule's incident is resolved and told
        ("resolved", "sent", "mem_high"), ("firing", "sent", "new_rule")])


def test_sources_are_rescheduled_rebuilt_added_and_removed(running):
    async def scenario():
        r = running()
        d = r.daemon
        await d.start()
        app, other = d.sources["app"], d.sources["other"]
        r.rewrite(f"app: {{type: test_list, cron: {NEVER}}}", 'app: {type: test_list, every: 1h}')
        r.rewrite("note: one}", "note: two}\n  extra: {type: test_list, every: 2h}")
        first = await d.reload()
        jobs = {j.id: str(j.trigger) for j in d.scheduler.get_jobs()}
        kept_app, new_other = d.sources["app"] is app, d.sources["other"] is not other
        r.rewrite("\n  extra: {type: test_list, every: 2h}", "")
        second = await d.reload()
        jobs_after = {j.id for j in d.scheduler.get_jobs()}
        await d.drain()
        await d.close()
        return first, second, jobs, jobs_after, kept_app, new_other, d

    first, second, jobs, jobs_after, kept_app, new_other, d = asyncio.run(scenario())
    assert first.changes["sources_rescheduled"] == ["app"] and first.changes["sources_rebuilt"] == ["other"]
    assert first.changes["sources_added"] == ["extra"]
    assert kept_app and new_other
    assert jobs["source:app"] == "interval[1:00:00]" and jobs["source:extra"] == "interval[2:00:00]"
    assert second.changes["sources_removed"] == ["extra"] and "source:extra" not in jobs_after
    assert "extra" not in d.sources


def test_a_bad_file_changes_nothing_and_fires_a_meta_incident_until_fixed(running):
    async def scenario():
        r = running()
        d = r.daemon
        await d.start()
        config, good = d.config, r.path.read_text()
        r.path.write_text(good.replace("limit: 90", "limit: lots", 1).replace("cron: ", "cron_: ", 1))
        bad = await d.reload()
        await d.pass_once()
        state = (d.config is config, [i.rule for i in d.engine.tracker.open.values()], outbox(d),
                 d.metrics.reload_ok._value.get(), d.metrics.reloads.labels("failure")._value.get())
        r.clock.advance(60)
        r.path.write_text(good)
        fixed = await d.reload()
        await d.pass_once()
        final = ([i.rule for i in d.engine.tracker.open.values()], outbox(d), d.metrics.reload_ok._value.get())
        await d.drain()
        await d.close()
        return bad, state, fixed, final

    bad, state, fixed, final = asyncio.run(scenario())
    assert not bad.ok and len(bad.problems) == 2
    assert 'sources.app.cron_: unknown key "cron_"; did you mean "cron"?' in bad.problems[0]
    same_config, open_rules, rows, ok_gauge, failures = state
    assert same_config and open_rules == ["alertd_config_reload_failed"]
    assert rows == [("firing", "sent", "alertd_config_reload_failed")]
    assert ok_gauge == 0 and failures == 1
    assert fixed.ok
    open_rules, rows, ok_gauge = final
    assert open_rules == [] and ok_gauge == 1
    assert rows[-1] == ("resolved", "sent", "alertd_config_reload_failed")


def test_a_failed_reload_incident_left_open_is_resolved_by_the_next_start(running, registry, clock, tmp_path):
    async def scenario():
        r = running()
        await r.daemon.start()
        r.path.write_text("sources: [")
        await r.daemon.reload()
        await r.daemon.close()
        r.path.write_text(CONFIG)
        again = Daemon(load_config(r.path, registry, environ={}), registry, store_path=tmp_path / "r.db",
                       clock=clock)
        await again.start()
        still_open = list(again.engine.tracker.open)
        incidents = [(i.rule, i.state) for i in again.store.incidents.list(include_closed=True)]
        await again.close()
        return still_open, incidents

    still_open, incidents = asyncio.run(scenario())
    assert still_open == [] and incidents == [("alertd_config_reload_failed", "resolved")]


def test_source_changes_classifies_by_config_equality(write_config, registry):
    a = load_config(write_config(CONFIG), registry, environ={})
    b = load_config(write_config(textwrap.dedent(CONFIG).replace("note: one", "note: two"), "b.yaml"),
                    registry, environ={})
    assert source_changes(a.sources, a.sources)["kept"] == ["app", "other"]
    assert source_changes(a.sources, b.sources)["rebuilt"] == ["other"]


def test_a_new_source_that_cannot_start_fails_the_reload_and_changes_nothing(running):
    import socket

    async def scenario():
        r = running()
        d = r.daemon
        await d.start()
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            r.rewrite("rules:", f"  inbox: {{type: push, port: {port}, cron: {NEVER}}}\nrules:")
            outcome = await d.reload()
        state = (sorted(d.sources), sorted(j.id for j in d.scheduler.get_jobs()), d.config.sources.keys())
        await d.drain()
        return outcome, state

    outcome, (sources, jobs, configured) = asyncio.run(scenario())
    assert not outcome.ok and len(outcome.problems) == 1
    assert outcome.problems[0].startswith('the source "inbox" could not start: cannot listen on 127.0.0.1:')
    assert sources == ["app", "other"] and "source:inbox" not in jobs and "inbox" not in configured


def test_group_timers_and_incidents_survive_a_reload_of_other_rules(running):
    async def scenario():
        r = running(CONFIG.replace("group_interval: 1s", "group_interval: 5m"))
        d = r.daemon
        await d.start()
        t = r.clock.now()
        await r.poll("app", sample("cpu", t, 95))
        before = {g.key: (g.next_flush_at, g.last_flush_at, g.flushes) for g in d.store.groups.all()}
        r.rewrite("series: mem, detector: {type: test_above, limit: 90}",
                  "series: mem, detector: {type: test_above, limit: 80}")
        r.clock.advance(10)
        outcome = await d.reload()
        after = {g.key: (g.next_flush_at, g.last_flush_at, g.flushes) for g in d.store.groups.all()}
        r.clock.advance(5)
        await r.poll("app", sample("cpu", t + 15, 97))  # still firing: no new notice before 5m
        rows = outbox(d)
        await d.drain()
        return outcome, before, after, rows

    outcome, before, after, rows = asyncio.run(scenario())
    assert outcome.ok and outcome.changes["rules_changed"] == ["mem_high"]
    assert len(before) == 1 and after == before
    assert rows == [("firing", "sent", "cpu_high")]


def test_a_template_bomb_is_refused_by_the_reload_while_the_loop_goes_on(running):
    """Was: a SIGHUP with `'x' * 1000000000` or nested range(100000) loops in a receiver's
    template froze the running daemon. The file is read and checked in a worker thread, and
    the template's render is bounded."""
    async def scenario():
        r = running()
        d = r.daemon
        await d.start()
        r.rewrite("pager: [{type: test_record}]", "pager: [{type: test_record}]\n  bomb: [{type: console, "
                  "text_template: \"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                  "{% endfor %}\"}]")
        beats = 0

        async def heartbeat():
            nonlocal beats
            while True:
                await asyncio.sleep(0.01)
                beats += 1
        beating = asyncio.create_task(heartbeat())
        outcome = await d.reload()
        beating.cancel()
        config_kept = "bomb" not in d.config.receivers
        await d.drain()
        await d.close()
        return outcome, beats, config_kept

    outcome, beats, config_kept = asyncio.run(scenario())
    assert not outcome.ok and config_kept
    (problem,) = outcome.problems
    assert "receivers.bomb[0].text_template: the template fails on a sample incident (template line 1: " \
           "rendering took more than 0.25s (a loop too large?)" in problem
    assert beats >= 3  # the loop ran while the file was checked


def test_secrets_of_a_reloaded_config_never_reach_a_log_line(running):
    from alertd.log import redact_text

    token = "s3cr3t-added-by-reload"

    async def scenario():
        r = running()
        d = r.daemon
        await d.start()
        before = redact_text(f"POST http://127.0.0.1:9/{token} failed")
        r.rewrite("pager: [{type: test_record}]",
                  f'pager: [{{type: test_record}}]\n  hook: [{{type: webhook, url: "http://127.0.0.1:9/{token}"}}]')
        outcome = await d.reload()
        after = redact_text(f"POST http://127.0.0.1:9/{token} failed")
        await d.drain()
        await d.close()
        return before, outcome, after

    before, outcome, after = asyncio.run(scenario())
    assert token in before  # (not a secret of the first config)
    assert "hook" in json.dumps(outcome.changes), outcome.changes
    assert token not in after and "***" in after  # (the whole URL is the secret)
