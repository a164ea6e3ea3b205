"""`alertd backtest --sim-week`: the labelled week replayed through a config's rules by the
real engine, judged by incidents, printed as a table or JSON; and its mistakes.

The replays here use 10-minute slots, a day of history and threshold rules, so a week takes
a few seconds (the demo config's full week: docs/detectors.md)."""

from __future__ import annotations

import json
import re

import pytest

from alertd.backtest.rules import BacktestError
from alertd.backtest.sim_week import replay_week
from alertd.cli.entry import main
from alertd.config.load import load_with_plugins

CONFIG = """\
plugin_dirs: []
store: alertd.db
sources:
  shop: {type: shop_sim, every: 10m, step: 10m, seed: 42}
  events: {type: push, every: 5s, port: 0}
rules:
  - name: payments
    source: shop
    series: payment_success_ratio{provider=~".+"}
    detector: {type: threshold, below: 0.9, clear_below: 0.95}
  - name: eu_evening            # fires on every evening peak in eu
    source: shop
    series: orders_per_minute{region="eu"}
    detector: {type: threshold, above: 115, clear_above: 100}
    for: 10m
  - name: queue
    source: shop
    series: order_queue_backlog
    detector: {type: threshold, above: 1000, clear_above: 300}
    for: 10m
  - name: stock
    source: shop
    series: stock_level{sku=~".+"}
    detector: {type: threshold, below: 1, clear_below: 5}
  - name: pushed
    source: events
    series: anything
    detector: {type: threshold, above: 1}
receivers:
  console: [{type: console}]
"""
FAST = ["--history", "1d", "--quiet"]


@pytest.fixture
def config(write_config):
    return write_config(CONFIG)


def rows(text: str) -> dict[str, list[str]]:
    """The report's table: rule -> labels, found, recall, pages, true, explained, false,
    precision, median time to fire, "/", max time to fire."""
    out = {}
    for line in text.split("\n\n")[1].splitlines()[1:]:
        words = line.split()
        name, n = ("all rules", 2) if line.startswith("all rules") else (words[0], 1)
        out[name] = words[n:]
    return out


def test_the_report_per_rule_overall_labels_and_false_pages(config, tmp_path, capsys):
    labels = tmp_path / "labels.json"
    assert main(["backtest", "-c", str(config), "--sim-week", *FAST, "--labels-out", str(labels)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("replayed the labelled week of source shop (2025-06-02 00:00 to 2025-06-09 00:00 UTC, "
                           "seed 42, 1008 polls of 14 series, step 10m, after 1d of history) through 4 rules")
    table = rows(text)
    # labels found recall pages true expl. false precision; time to fire median / max
    assert table["payments"] == ["2", "2", "1.00", "2", "2", "0", "0", "1.00", "0s", "/", "0s"]
    assert table["queue"][:8] == ["1", "1", "1.00", "1", "1", "0", "0", "1.00"]
    assert table["stock"][:8] == ["3", "3", "1.00", "3", "3", "0", "0", "1.00"]
    evening = table["eu_evening"]
    assert evening[:2] == ["3", "1"] and int(evening[6]) >= 6 and float(evening[7]) < 0.3
    # it "finds" the drop at the eu peak only by firing again when orders come back up, 10
    # minutes after it ended (within the tolerance): the time to fire says so
    assert "eu_evening: found after 40m (1 page)" in text and "03-traffic_drop" in text
    assert "queue: found after 10m (1 page)" in text
    assert "06-memory_leak" in text and "no rule watches memory_used_ratio" in text
    assert "not replayed: pushed (it reads source events, not the simulator (shop))" in text
    false = [line for line in text.splitlines() if "  eu_evening  " in line]
    assert len(false) == int(evening[6])
    local_hours = [int(m) for m in re.findall(r"\((\d\d):\d\d eu time\)", "\n".join(false))]
    assert len(local_hours) == len(false) and all(18 <= h <= 22 for h in local_hours)  # evening peaks
    data = json.loads(labels.read_text())
    assert data["scenario"] == "week" and len(data["labels"]) == 14 and data["step"] == 600.0


def test_json_output_and_two_worker_processes_agree(config, capsys):
    assert main(["backtest", "-c", str(config), "--sim-week", *FAST, "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(["backtest", "-c", str(config), "--sim-week", *FAST, "--json", "--jobs", "2"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert [r["rule"] for r in one["rules"]] == ["payments", "eu_evening", "queue", "stock"]
    strip = [{k: v for k, v in r.items()} for r in one["rules"]]
    assert strip == two["rules"] and one["overall"] == two["overall"]
    payments = one["rules"][0]
    assert payments["precision"] == 1.0 and payments["recall"] == 1.0 and payments["time_to_fire_median"] == 0.0
    assert one["overall"]["labels"] == 2 + 3 + 1 + 3  # payments, drops in eu, the queue, stock-outs
    assert one["not_replayed"] == [{"rule": "pushed", "why": "it reads source events, not the simulator (shop)"}]
    assert one["polls"] == 1008 and one["history_s"] == 86400.0 and len(one["labels"]) == 14
    evening = one["rules"][1]
    assert evening["false_page_list"][0]["series"] == 'orders_per_minute{region="eu"}'


def test_one_rule_with_its_tolerance_and_lead(config, capsys):
    assert main(["backtest", "-c", str(config), "--sim-week", *FAST, "--json", "--rule", "payments",
                 "--tolerance", "5m", "--lead", "payments=30m", "--lead", "10m"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (rule,) = doc["rules"]
    assert rule["rule"] == "payments" and doc["tolerance_s"] == 300.0
    assert doc["lead_s"] == 600.0 and doc["leads_s"] == {"payments": 1800.0}
    assert rule["found"] == 2 and doc["not_replayed"] == []


def test_labels_only_writes_the_labels_and_replays_nothing(config, tmp_path, capsys):
    out = tmp_path / "week.json"
    assert main(["backtest", "-c", str(config), "--sim-week", "--labels-out", str(out), "--labels-only"]) == 0
    assert capsys.readouterr().out == f"labels: {out} (14 labelled incidents)\n"
    assert [lab["id"] for lab in json.loads(out.read_text())["labels"]][:2] == ["01-payment_outage", "02-traffic_drop"]


@pytest.mark.parametrize("argv, message", [
    (["--sim-week", "--rule", "nope"], 'the config has no rule "nope"'),
    (["--sim-week", "--threshold", "0.5"], "--threshold with --sim-week needs --rule"),
    (["--sim-week", "--rule", "payments", "--threshold", "0.5"], "has no threshold to set"),
    (["--sim-week", "--history", "a week"], "--history 'a week' is not a duration"),
    (["--sim-week", "--lead", "nobody=1h"], "no replayed rule is called nobody"),
    (["--sim-week", "--source", "events"], 'source "events" is a push source'),
    (["--sim-week", "--source", "shop2"], 'the config has no source "shop2"'),
    (["--sim-week", "--rule", "pushed"], "no rule of the config reads the simulator"),
    (["--sim-week", "--plot", "x.png"], "--plot does not go with --sim-week"),
    (["--sim-week", "--labels-only"], "--labels-only needs --labels-out FILE"),
    (["--csv", "x.csv", "--json"], "--json goes with --sim-week"),
])
def test_mistakes_are_one_sentence_and_exit_1(config, capsys, argv, message):
    assert main(["backtest", "-c", str(config), *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_config_without_the_simulator(write_config, capsys):
    config = write_config(CONFIG.replace("type: shop_sim, every: 10m, step: 10m, seed: 42",
                                         "type: push, every: 5s, port: 0"))
    assert main(["backtest", "-c", str(config), "--sim-week"]) == 1
    assert "has no shop_sim source; add one (type: shop_sim)" in capsys.readouterr().err
    cfg, registry = load_with_plugins(config)
    with pytest.raises(BacktestError, match="has no shop_sim source"):
        replay_week(cfg, registry)


def test_the_demo_config_replays_its_rules_through_the_daemons_engine(tmp_path):
    """alertd.yaml itself: a day of the week (Tuesday: the stripe outage and the eu drop at the
    evening peak) through its threshold rules, as the daemon would run them."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    cfg, registry = load_with_plugins(root / "alertd.yaml")
    run = replay_week(cfg, registry, rules=["payment_success_drop", "http_errors", "stock_out"], history=3600.0)
    assert run.polls == 5040 and [r.name for r in run.rules] == ["payment_success_drop", "http_errors", "stock_out"]
    pages = {(p.rule, p.series) for p in run.pages}
    assert ("payment_success_drop", 'payment_success_ratio{provider="stripe"}') in pages
    assert ("http_errors", "http_5xx_rate") in pages and ("stock_out", 'stock_level{sku="sku-mug"}') in pages
    stripe = next(p for p in run.pages if p.series.endswith('"stripe"}'))
    assert stripe.resolved_at - stripe.fired_at >= 4 * 60  # clear_for: 4m
