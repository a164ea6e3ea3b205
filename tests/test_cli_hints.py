"""Small things a user at 3 a.m. trips over (issue 16): each says what happened and what to do.

Before: `notifications --attempts` printed an attempt's duration as "retry in 74ms";
`silence add` on a rule that does not exist, `--expire-on-resolve` on a resolved incident and
`unack` on a resolved one gave no hint; `backtest --series` wrote into the working directory;
a `plugin_dirs` entry that does not exist was ignored without a word.
"""

from __future__ import annotations

import os

from cli_shop import cli, shop  # noqa: F401  (shop: a fixture)

from alertd.model import Sample, make_labels
from alertd.store import Store
from alertd.store.ledger import Attempt


def test_an_attempts_duration_is_not_a_retry_delay(shop, capsys):
    row = shop.store.outbox.rows()[0]
    shop.store.ledger.record([Attempt(row["id"], row["idempotency_key"], row["receiver"], row["integration"],
                                      row["notifier"], row["kind"], 1, shop.clock.now(), "retry",
                                      "503 from the receiver", None, 74.2)])
    code, out, _ = cli(capsys, "notifications", "--attempts", "--store", str(shop.path))
    assert code == 0
    line = next(line for line in out.splitlines() if "attempt 1:" in line)
    assert "attempt 1: failed, to be retried (took 74ms)  503 from the receiver" in line
    assert "retry in" not in out


def test_a_silence_on_a_rule_nobody_knows_gets_a_note(shop, capsys):
    code, out, err = cli(capsys, "silence", "add", "rule=cpu_hihg", "--for", "1h", "--store", str(shop.path))
    assert code == 0 and "matches 0 open incidents" in out
    assert err.startswith('note: no rule is named "cpu_hihg" in alertd.yaml or the store; did you mean "cpu_high"? '
                          "The silence was added; it mutes nothing until such a rule fires.")
    code, out, err = cli(capsys, "silence", "add", "rule=cpu_high", "--for", "1h", "--store", str(shop.path))
    assert code == 0 and err == ""  # a known rule: no note


def test_expire_on_resolve_on_what_is_not_open_is_refused_or_explained(shop, capsys):
    store = str(shop.path)
    code, _, _ = cli(capsys, "incidents", "resolve", "1", "--store", store)
    assert code == 0
    code, out, err = cli(capsys, "silence", "add", "--incident", "1", "--expire-on-resolve", "--for", "1h",
                         "--store", store)
    assert code == 1 and out == ""
    assert err.strip() == ("error: incident #1 is already resolved, so --expire-on-resolve would not end with it "
                           "(the silence would wait for the next incident of these labels to resolve); leave it "
                           "out and give --for or --until to mute its labels for a while")
    assert shop.store.silences.rows() == []
    code, out, err = cli(capsys, "silence", "add", "host=zzz", "--expire-on-resolve", "--for", "1h", "--store", store)
    assert code == 0 and err.startswith("note: the silence matches no open incident, so --expire-on-resolve ends "
                                        "it only when the next matching incident resolves (or at ")
    code, out, err = cli(capsys, "silence", "add", "host=b", "--expire-on-resolve", "--for", "1h", "--store", store)
    assert code == 0 and "matches 1 open incident (#2)" in out


def test_unack_of_a_resolved_incident_says_why_nothing_changes(shop, capsys):
    store = str(shop.path)
    assert cli(capsys, "incidents", "ack", "1", "--store", store)[0] == 0
    assert cli(capsys, "incidents", "resolve", "1", "--store", store)[0] == 0
    code, out, err = cli(capsys, "incidents", "unack", "1", "--store", store)
    assert code == 1 and err.strip() == (
        "error: incident #1 is already resolved; an acknowledgement only matters while an incident is open "
        "(it holds back repeats), so there is nothing to undo")


def test_backtest_of_a_stored_series_writes_nothing_into_the_working_directory(write_config, tmp_path, capsys,
                                                                               monkeypatch):
    config = write_config("""
        sources: {shop: {type: shop_sim, every: 1m}, lab: {type: shop_sim, every: 1m}}
        rules:
          - {name: floor, source: shop, series: orders_per_minute, detector: {type: threshold, below: 10}}
        receivers: {c: [{type: console}]}
        """)
    store = Store(tmp_path / "alertd.db")
    labels = make_labels({"region": "eu"})
    with store.atomic():
        store.samples.append([Sample("orders_per_minute", labels, 1000.0 + 60 * i, 50.0) for i in range(50)], "shop")
        store.samples.append([Sample("orders_per_minute", labels, 1000.0 + 60 * i, 5.0) for i in range(20)], "lab")
    store.close()
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    key = 'orders_per_minute{region="eu"}'
    code, out, _ = cli(capsys, "backtest", "-c", str(config), "--rule", "floor", "--series", key, "--quiet",
                       "--store", str(tmp_path / "alertd.db"))
    assert code == 0 and os.listdir(work) == []
    assert f"replayed 50 rows of {key}" in out  # the rule's source, not the lab's 20 points
    assert "per-row scores: not written (pass --out FILE to write them)" in out
    code, out, err = cli(capsys, "backtest", "-c", str(config), "--series", key, "--quiet",
                         "--store", str(tmp_path / "alertd.db"))
    assert code == 1 and f"the sources lab, shop each have a series {key}; pick one with --source" in err
    code, out, _ = cli(capsys, "backtest", "-c", str(config), "--series", key, "--source", "lab", "--quiet",
                       "--store", str(tmp_path / "alertd.db"), "--out", str(tmp_path / "s.csv"))
    assert code == 0 and f"replayed 20 rows of {key}" in out and (tmp_path / "s.csv").exists()


def test_a_plugin_dir_that_does_not_exist_is_an_error_at_its_line(write_config, capsys, tmp_path):
    (tmp_path / "plugins").mkdir()
    path = write_config("""
        plugin_dirs:
          - plugins
          - site-plugins
        sources: {}
        """)
    code, _, err = cli(capsys, "validate", "-c", str(path))
    assert code == 1
    assert err.splitlines()[0] == (
        f"error: {path}:3: plugin_dirs[1]: the plugin directory {tmp_path / 'site-plugins'} does not exist; "
        "create it (and put the site's plugins in it), fix the path (a relative one is taken from the config "
        "file's directory), or remove the entry")
