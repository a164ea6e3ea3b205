"""Time faults: the wall clock steps forward or back (NTP), and DST changes inside
`time_intervals`. Timers (group_wait, group_interval, repeat_interval, retry backoff)
neither fire twice nor stall.

The daemon runs in-process on the fake clock, which the tests step like an NTP daemon would.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from configs import config_text, rule
from routing_helpers import Shop
from structlog.testing import capture_logs

from alertd.config.load import load_config
from alertd.config.time_intervals import interval_contains
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels


def site_config(fail: int) -> str:
    return config_text(sources={"app": {"type": "test_list", "every": "1m"}},
                       rules=[rule("cpu_high", flapping=False)],
                       receivers={"rec": [{"type": "test_record", "fail_times": fail}]},
                       routes={"receiver": "rec", "group_by": ["rule"], "group_wait": "30s", "group_interval": "5m",
                               "repeat_interval": "1h"})



def run(write_config, registry, tmp_path, clock, scenario, fail: int = 0):
    config = load_config(write_config(site_config(fail)), registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        sent = sys.modules[type(d.notifiers[("rec", 0)]).__module__].SENT
        sent.clear()

        async def poll(value=95.0):
            d.sources["app"].pending = [Sample("cpu", make_labels({"host": "a"}), clock.now(), value)]
            await d.poll("app")

        async def step(seconds: float, times: int = 1, value: float | None = 95.0) -> None:
            for _ in range(times):
                clock.advance(seconds)
                if value is not None:
                    await poll(value)
                await d.pass_once()
        try:
            with capture_logs() as logs:
                result = await scenario(d, poll, step, sent)
            return result, logs
        finally:
            await d.drain()
    return asyncio.run(main())


def test_a_forward_step_fires_each_due_timer_once(write_config, registry, tmp_path, clock):
    async def scenario(d, poll, step, sent):
        await poll()
        await step(60, 2)  # group_wait: the first notice
        first = len(sent)
        clock.advance(6 * 3600)  # NTP steps six hours forward
        await step(1, 3)
        after_jump = len(sent)
        await step(60, 30)  # half an hour on: the next repeat is an hour away
        return first, after_jump, len(sent), [n.kind for n in sent]

    (first, after_jump, end, kinds), _ = run(write_config, registry, tmp_path, clock, scenario)
    assert first == 1
    assert after_jump == 2  # one repeat, not six
    assert end == 2 and kinds == ["firing", "firing"]


def test_a_backward_step_does_not_hold_repeats_back(write_config, registry, tmp_path, clock):
    async def scenario(d, poll, step, sent):
        await poll()
        await step(60, 2)
        assert len(sent) == 1
        clock.advance(-3600)  # NTP steps an hour back
        minutes = 0
        while len(sent) == 1 and minutes < 180:
            await step(60, value=None)  # (samples stamped before the last stored one would be skipped)
            minutes += 1
        return minutes

    minutes, logs = run(write_config, registry, tmp_path, clock, scenario)
    # the repeat is due an hour after the first notice, at a group_interval tick: not 2 h later
    assert 55 <= minutes <= 65
    step = [e for e in logs if e["event"] == "clock_stepped_back"]
    # the step as seen between two passes: an hour back, less the minute the test stepped on
    assert len(step) == 1 and step[0]["seconds"] == 3540


def test_a_backward_step_does_not_hold_a_retry_back(write_config, registry, tmp_path, clock):
    async def scenario(d, poll, step, sent):
        await poll()
        await step(30, value=None)  # group_wait over: the send fails once
        failed = len(sent)
        clock.advance(-3600)
        await step(1, value=None)  # the daemon's dispatcher passes at least once a second
        await step(5, value=None)  # the backoff (2-4 s) has passed in real time
        return failed, len(sent), d.store.outbox.rows()

    (failed, delivered, pending), _ = run(write_config, registry, tmp_path, clock, scenario, fail=1)
    assert failed == 0 and delivered == 1, pending


def test_a_clock_that_only_moves_forward_is_not_a_step(write_config, registry, tmp_path, clock):
    async def scenario(d, poll, step, sent):
        await poll()
        await step(0.5, 200)
        return len(sent)

    n, logs = run(write_config, registry, tmp_path, clock, scenario)
    assert n == 1 and not [e for e in logs if e["event"] == "clock_stepped_back"]


# -- DST in time_intervals ---------------------------------------------------------------------

NIGHT = config_text(
    http=None,
    time_intervals=[{"name": "night", "time_intervals": [
        {"times": [{"start_time": "01:00", "end_time": "04:00"}], "location": "Europe/Berlin"}]}],
    sources={"app": {"type": "test_list", "every": "1m"}},
    rules=[rule("cpu_high", series='cpu{host=~".+"}', flapping=False)],
    receivers={"team": [{"type": "test_record"}]},
    routes={"receiver": "team", "group_by": ["rule"], "group_wait": "30s", "group_interval": "5m",
            "repeat_interval": "1h", "routes": [{"matchers": ['rule="cpu_high"'], "mute_time_intervals": ["night"]}]})

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("day, held_hours", [("2026-03-29", 1.5), ("2026-10-25", 3.5), ("2026-06-15", 2.5)])
def test_a_night_mute_across_dst_ends_once_at_local_4am(write_config, registry, clock, tmp_path, day, held_hours):
    """01:00-04:00 Berlin time lasts 2 real hours on the spring-forward night, 4 on the
    fall-back night (02:00-03:00 happens twice), 3 otherwise. An incident firing at 01:30
    is told once, just after local 04:00 (1.5, 3.5 or 2.5 real hours later), and repeats stay hourly
    after it (epoch-based timers do not see DST)."""
    local = lambda hhmm: datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=BERLIN).timestamp()  # noqa: E731
    clock.set(local("00:30"))
    shop = Shop(write_config, registry, clock, tmp_path, NIGHT)
    try:
        sent_at, muted_minutes = [], 0
        for minute in range(8 * 60):  # 00:30 to 08:30 local (real minutes)
            before = len(shop.rows())
            shop.feed({"a": 95 if clock.now() >= local("01:30") else 10})
            shop.flush()
            if len(shop.rows()) > before:
                sent_at.append(clock.now())
            muted_minutes += interval_contains(shop.config.time_intervals["night"], clock.now())
            clock.advance(60)
        assert muted_minutes == {1.5: 2, 3.5: 4, 2.5: 3}[held_hours] * 60
        # once the window is over, at the group's next group_interval (5m) tick, not before
        first = datetime.fromtimestamp(sent_at[0], BERLIN)
        assert first.hour == 4 and first.minute < 5
        assert 0 <= sent_at[0] - local("01:30") - held_hours * 3600 < 300
        gaps = {round(b - a) for a, b in zip(sent_at, sent_at[1:])}
        assert gaps == {3600}  # hourly repeats after it, never twice, never late
    finally:
        shop.close()
