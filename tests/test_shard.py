"""Sharding: `shard: i/N` / `--shard` split the rules of one config over N instances."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from configs import NEVER, config_text, rule
from prometheus_client import generate_latest
from servers import http_server  # noqa: F401  (fixture)

from alertd.cli.entry import main
from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.config.shards import Shard, apply_shard, parse_shard, rule_shard
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels

RULES = [f"rule_{k}" for k in range(10)]




def _config_text(url: str, shard: str = "") -> str:
    rules = [rule(name, source="shop" if k % 2 else "warehouse", series=f"m{k}", limit=10)
             for k, name in enumerate(RULES)]
    return config_text(http=None, shard=shard or None,
                       sources={name: {"type": "test_list", "cron": NEVER} for name in ("shop", "warehouse", "solo")},
                       rules=[*rules, rule("solo_rule", source="solo", series="m_solo", limit=10)],
                       receivers={"am": [{"type": "alertmanager", "url": url}]},
                       routes={"receiver": "am", "group_by": ["alertname"], "group_wait": "0s"})


def test_two_sharded_daemons_over_one_config_run_every_rule_exactly_once(
        write_config, registry, clock, tmp_path, http_server):  # noqa: F811
    # instance 0 takes its shard from the file, instance 1 from the override (--shard)
    config = load_config(write_config(_config_text(http_server.url + "/", "0/2")), registry, environ={})
    all_sources = set(config.sources)

    async def run_instance(index: int):
        daemon = Daemon(config, registry, store_path=tmp_path / f"shard{index}.db", clock=clock,
                        shard=Shard(1, 2) if index else None)
        await daemon.start()
        t = clock.now()
        for name, source in daemon.sources.items():  # every series of every polled source is bad
            series = ["m_solo"] if name == "solo" else [f"m{k}" for k in range(len(RULES))]
            source.pending = [Sample(m, make_labels({"shop": "eu"}), t, 50.0) for m in series]
            await daemon.poll(name)
        while await daemon.pass_once():
            pass
        ran = {rule for rule, state in daemon.engine.rule_states().items() if state["last_tick"]}
        opened = {i.rule for i in daemon.store.incidents.open()}
        metrics = generate_latest(daemon.metrics.registry).decode()
        polled, shard = set(daemon.sources), str(daemon.config.shard)
        status = daemon.status()["shard"]
        assert status["shard"] == shard and set(status["rules"]) == ran and status["rules_total"] == 11
        await daemon.drain()
        return ran, opened, polled, shard, metrics

    results = [asyncio.run(run_instance(i)) for i in (0, 1)]
    (ran0, opened0, polled0, shard0, metrics0), (ran1, opened1, polled1, shard1, _) = results
    everything = set(RULES) | {"solo_rule"}
    assert (shard0, shard1) == ("0/2", "1/2")
    assert ran0 and ran1 and not ran0 & ran1 and ran0 | ran1 == everything
    assert opened0 == ran0 and opened1 == ran1  # each instance's store holds only its incidents
    assert ran0 == {r for r in everything if rule_shard(r, 2) == 0}
    # a source is polled only by instances owning one of its rules: solo by exactly one
    assert ("solo" in polled0) != ("solo" in polled1) and polled0 | polled1 == all_sources
    # every rule reached the (stand-in) Alertmanager exactly once, from whichever instance owns it
    names = [alert["labels"]["alertname"] for req in http_server.requests for alert in req.json()]
    assert sorted(names) == sorted(everything)
    assert f'alertd_rules_owned{{shard="0/2"}} {float(len(ran0))}' in metrics0
    assert f"alertd_config_rules {float(len(everything))}" in metrics0


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_partition_the_rules_and_keep_only_sources_they_read(write_config, registry, count):
    config = load_config(write_config(_config_text("http://127.0.0.1:9/")), registry, environ={})
    parts = [apply_shard(config, Shard(i, count)) for i in range(count)]
    owned = [r.name for part in parts for r in part.rules]
    assert sorted(owned) == sorted(r.name for r in config.rules)  # each rule exactly once
    for part in parts:
        assert set(part.sources) == {r.source for r in part.rules}
        assert apply_shard(part) == part  # applying the shard again changes nothing
        assert part.all_rules == tuple(r.name for r in config.rules)


def test_the_shard_of_a_name_does_not_depend_on_the_process(tmp_path):
    code = "from alertd.config.shards import rule_shard; print([rule_shard(f'r{k}', 7) for k in range(50)])"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PYTHONPATH": ":".join(sys.path)}).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1
    assert outs.pop().strip() == str([rule_shard(f"r{k}", 7) for k in range(50)])
    assert len(set(rule_shard(f"r{k}", 7) for k in range(50))) == 7  # it spreads


def test_a_rule_less_source_is_polled_by_exactly_one_shard(write_config, registry):
    text = _config_text("http://127.0.0.1:9/")
    text = text.replace("sources:\n", "sources:\n  spare: {type: test_list, every: 5s}\n")
    config = load_config(write_config(text), registry, environ={})
    assert sum("spare" in apply_shard(config, Shard(i, 3)).sources for i in range(3)) == 1


@pytest.mark.parametrize("text, ok", [("0/2", True), ("1/2", True), (" 0 / 1 ", True), ("2/2", False),
                                      ("0/0", False), ("-1/2", False), ("1", False), ("a/b", False)])
def test_parse_shard(text, ok):
    if ok:
        assert str(parse_shard(text)) == text.replace(" ", "")
    else:
        with pytest.raises(ValueError, match='write "|N must be|i counts from 0'):
            parse_shard(text)


def test_a_bad_shard_key_is_one_sentence_naming_file_line_and_key(write_config, registry):
    path = write_config(_config_text("http://127.0.0.1:9/", "2/2"))
    with pytest.raises(ConfigError) as err:
        load_config(path, registry, environ={})
    assert [str(p) for p in err.value.problems] == [
        f'{path}:1: shard: "2/2" is out of range; i counts from 0 to N-1, so write "0/2" to "1/2"']


def test_validate_lists_what_a_shard_runs_and_rejects_a_bad_flag(write_config, capsys):
    path = str(write_config(_config_text("http://127.0.0.1:9/").replace("test_list", "shop_sim")
                            .replace("test_above", "threshold").replace("limit: 10", "above: 10")))
    assert main(["validate", "-c", path, "--shard", "1/3"]) == 0
    out = capsys.readouterr().out
    mine = [r for r in [*RULES, "solo_rule"] if rule_shard(r, 3) == 1]
    assert f"shard    1/3: this instance runs {len(mine)} of {len(RULES) + 1} rules" in out
    assert f"rule     {mine[0]}: " in out and f"[shard 1]" in out
    assert main(["validate", "-c", path, "--shard", "3/3"]) == 1
    assert capsys.readouterr().err.strip() == ('error: --shard "3/3" is out of range; i counts from 0 '
                                               'to N-1, so write "0/3" to "2/3"')


def test_a_reload_keeps_the_shard_of_the_flag_and_takes_new_rules_of_it_only(write_config, registry, clock,
                                                                              tmp_path):
    path = write_config(_config_text("http://127.0.0.1:9/"))
    extra = [f"late_{k}" for k in range(8)]

    async def scenario():
        daemon = Daemon(load_config(path, registry, environ={}), registry, store_path=tmp_path / "r.db",
                        clock=clock, shard=Shard(1, 2))
        await daemon.start()
        before = {r.name for r in daemon.engine.config.rules}
        text = path.read_text().replace("receivers:", "".join(
            f"  - {{name: {name}, source: shop, series: x{k}, detector: {{type: test_above, limit: 1}}}}\n"
            for k, name in enumerate(extra)) + "receivers:")
        path.write_text(text)
        outcome = await daemon.request_reload()
        after = {rt.rule.name for rt in daemon.engine.runtimes()}
        await daemon.drain()
        return before, outcome, after

    before, outcome, after = asyncio.run(scenario())
    assert outcome.ok
    assert before == {r for r in [*RULES, "solo_rule"] if rule_shard(r, 2) == 1}
    assert after == before | {r for r in extra if rule_shard(r, 2) == 1}
    assert after - before and set(extra) - after  # some new rules came here, some went to shard 0


def test_after_resharding_a_start_resolves_the_incidents_of_rules_now_elsewhere(write_config, registry,
                                                                                clock, tmp_path, http_server):  # noqa: F811
    config = load_config(write_config(_config_text(http_server.url)), registry, environ={})
    store = tmp_path / "one.db"

    async def start(shard, fire):
        daemon = Daemon(config, registry, store_path=store, clock=clock, shard=shard)
        await daemon.start()
        if fire:
            daemon.sources["shop"].pending = [Sample(f"m{k}", make_labels({}), clock.now(), 50.0)
                                              for k in range(len(RULES))]
            await daemon.poll("shop")
        while await daemon.pass_once():
            pass
        open_rules = {i.rule for i in daemon.store.incidents.open()}
        await daemon.drain()
        return open_rules

    fired = asyncio.run(start(None, True))  # one instance ran every rule
    assert fired == {r for k, r in enumerate(RULES) if k % 2}
    clock.advance(600)  # past group_interval (5m): a group's resolve is sent at once
    kept = asyncio.run(start(Shard(0, 2), False))  # now it is shard 0 of 2
    assert kept == {r for r in fired if rule_shard(r, 2) == 0} and kept != fired
    ends: dict[str, list[str]] = {}
    for alert in (a for req in http_server.requests for a in req.json()):
        ends.setdefault(alert["labels"]["alertname"], []).append(alert["endsAt"])
    moved = fired - kept
    # each moved rule: fired (endsAt a day ahead), then resolved at the restart (endsAt now)
    assert all(len(ends[r]) == 2 and ends[r][1] < ends[r][0] for r in moved)
    assert all(len(ends[r]) == 1 for r in kept)  # the kept ones were not touched
