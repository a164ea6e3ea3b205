"""`alertd backtest`: CSV and stored-series replays, labels, plots, and NAB-layout folders."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone

import numpy as np
from detect_data import daily, write_csv

from alertd.cli.entry import main
from alertd.model import Sample, make_labels
from alertd.store import Store

CONFIG = """\
plugin_dirs: []
store: alertd.db
sources:
  shop: {type: shop_sim, every: 5s}
rules:
  - name: orders_anomaly
    source: shop
    series: orders_per_minute{region=~".+"}
    detector: {type: pyod, min_history: 100, retrain_points: 150, train_points: 1000}
  - {name: floor, source: shop, series: orders_per_minute, detector: {type: threshold, below: 10}}
receivers:
  console: [{type: console}]
"""


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def series_with_outage(tmp_path):
    ts, v = daily(days=4)
    v[450:456] = 3.0
    path = tmp_path / "orders.csv"
    write_csv(path, ts, v)
    (tmp_path / "labels.json").write_text(json.dumps([[stamp(ts[440]), stamp(ts[470])]]))
    return ts, v, path


def test_csv_replay_reports_quality_and_writes_scores_and_a_plot(write_config, tmp_path, capsys):
    config = write_config(CONFIG)
    ts, v, path = series_with_outage(tmp_path)
    out, plot = tmp_path / "scores.csv", tmp_path / "plot.png"
    assert main(["backtest", "-c", str(config), "--rule", "orders_anomaly", "--csv", str(path),
                 "--labels", str(tmp_path / "labels.json"), "--plot", str(plot), "--out", str(out),
                 "--quiet"]) == 0
    text = capsys.readouterr().out
    assert f"replayed {len(ts)} rows of {path} through rule orders_anomaly (pyod)" in text
    assert "labelled windows: 1, found 1;" in text and "recall 1.00" in text
    assert "NAB score at threshold 0.999: standard" in text
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(ts)
    assert rows[450]["status"] == "anomalous" and float(rows[450]["anomaly_score"]) >= 0.999
    assert "expected" in rows[450]["reason"]
    assert rows[0]["status"] == "warming_up" and rows[0]["score"] == ""
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_threshold_override_and_the_built_in_default(write_config, tmp_path, capsys):
    config = write_config(CONFIG)
    _, _, path = series_with_outage(tmp_path)
    assert main(["backtest", "-c", str(config), "--rule", "orders_anomaly", "--csv", str(path),
                 "--threshold", "0.9", "--quiet", "--out", str(tmp_path / "a.csv")]) == 0
    assert "through rule orders_anomaly" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert {r["threshold"] for r in rows if r["threshold"]} == {"0.9"}
    assert main(["backtest", "--csv", str(path), "--quiet", "--out", str(tmp_path / "b.csv")]) == 0
    assert "through rule default_anomaly (surprise)" in capsys.readouterr().out


def test_a_stored_series_can_be_replayed(write_config, tmp_path, capsys):
    config = write_config(CONFIG)
    store = Store(tmp_path / "alertd.db")
    ts, v = daily(days=2)
    labels = make_labels({"region": "eu"})
    with store.atomic():
        store.samples.append([Sample("orders_per_minute", labels, t, x) for t, x in zip(ts, v)], "shop")
    store.close()
    key = 'orders_per_minute{region="eu"}'
    assert main(["backtest", "-c", str(config), "--rule", "orders_anomaly", "--series", key, "--quiet",
                 "--out", str(tmp_path / "s.csv")]) == 0
    assert f"replayed {len(ts)} rows of {key}" in capsys.readouterr().out


def test_bad_input_is_one_sentence_and_exit_1(write_config, tmp_path, capsys):
    config = write_config(CONFIG)
    assert main(["backtest", "-c", str(config), "--rule", "nope", "--csv", "x.csv"]) == 1
    assert 'the config has no rule "nope"' in capsys.readouterr().err
    assert main(["backtest", "-c", str(config), "--rule", "orders_anomaly", "--csv", str(tmp_path / "x.csv")]) == 1
    assert "x.csv does not exist" in capsys.readouterr().err
    assert main(["backtest", "-c", str(config), "--rule", "floor", "--csv", "x.csv", "--threshold", "0.9"]) == 1
    assert "has no threshold to set" in capsys.readouterr().err
    assert main(["backtest", "--nab", str(tmp_path)]) == 1
    assert "--nab needs --results OUT" in capsys.readouterr().err
    assert main(["backtest", "--nab", str(tmp_path), "--results", str(tmp_path / "out")]) == 1
    assert "has no data/ folder" in capsys.readouterr().err


def test_nab_folder_results_one_row_per_input_row_and_scores(tmp_path, capsys):
    root = tmp_path / "nab"
    windows = {}
    for k, name in enumerate(["a.csv", "b.csv"]):
        ts, v = daily(days=3, seed=k)
        v[300 + 20 * k] += 120
        ts = np.r_[ts[:200], ts[199], ts[200:]]  # a repeated timestamp, as in real NAB files
        v = np.r_[v[:200], v[199], v[200:]]
        (root / "data" / "cat").mkdir(parents=True, exist_ok=True)
        write_csv(root / "data" / "cat" / name, ts, v)
        windows[f"cat/{name}"] = [[stamp(ts[290]) + ".000000", stamp(ts[330]) + ".000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    out = tmp_path / "results"
    assert main(["backtest", "--nab", str(root), "--results", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "replayed 2 files" in text and "reward_low_FP" in text and "reward_low_FN" in text
    for name in ("a.csv", "b.csv"):
        rows = list(csv.reader((out / "cat" / name).open()))
        source = list(csv.reader((root / "data" / "cat" / name).open()))
        assert rows[0] == ["timestamp", "value", "anomaly_score"]
        assert len(rows) == len(source) and [r[0] for r in rows] == [r[0] for r in source]
    standard = next(line for line in text.splitlines() if line.startswith("standard"))
    assert float(standard.split()[1]) > 50  # both spikes found early in their windows
