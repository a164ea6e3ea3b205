"""`model: trend` claims Prometheus' `predict_linear`: a real Prometheus (Debian's) is given the
same samples (backfilled with `promtool tsdb create-blocks-from openmetrics`) and asked, and
its answers are compared with alertd's line and with its will_cross decision."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from processes import serve
from servers import free_port

from alertd.detect.forecast import Line
from alertd.detect.trend import line_fit, trend_crossing

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def samples(now: float):
    """Per series (times, values) over the 90 minutes before `now` (whole seconds)."""
    rng = np.random.default_rng(11)
    start = now - 5400
    minute = start + np.arange(91) * 60.0
    out = {
        "steady": (minute, 0.5 + 0.0001 * (minute - start) + rng.normal(0, 0.004, len(minute))),
        "gappy": (np.sort(rng.choice(np.arange(start, now - 7.0, 17.0), 70, replace=False)),
                  None),
        "flat": (minute, np.full(len(minute), 0.42)),
        "falling": (minute, 0.95 - 0.00005 * (minute - start) + rng.normal(0, 0.01, len(minute))),
        "lonely": (np.array([now - 7200.0, now - 1800.0]), np.array([0.3, 0.97])),  # one point in the hour
        "edge": (np.array([now - 3600.0, now - 1200.0, now - 60.0]), np.array([0.2, 0.5, 0.6])),  # at the edge
    }
    t = out["gappy"][0]
    out["gappy"] = (t, 0.6 + 0.00012 * (t - start) + rng.normal(0, 0.01, len(t)))
    return out


def query(port: int, expr: str, at: float) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return {r["metric"]["s"]: float(r["value"][1]) for r in body["data"]["result"]}


def test_trend_is_prometheus_predict_linear(tmp_path):
    for tool in (PROMETHEUS, PROMTOOL):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is not installed; run `sh scripts/system-deps.sh` (make test does)")
    now = float(int(time.time()) - 600)  # inside the default retention; the head stays empty
    data = samples(now)
    lines = ["# TYPE disk_used gauge"]
    rows = []
    for name, (t, v) in data.items():
        rows += [(float(ti), f'disk_used{{s="{name}"}} {float(vi)!r} {int(ti)}') for ti, vi in zip(t, v)]
    lines += [text for _, text in sorted(rows)]
    (tmp_path / "in.om").write_text("\n".join(lines) + "\n# EOF\n")
    subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", str(tmp_path / "in.om"),
                    str(tmp_path / "tsdb")], check=True, capture_output=True, timeout=120)
    (tmp_path / "prometheus.yml").write_text("global: {scrape_interval: 1h}\n")
    port = free_port()
    argv = [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}"]
    with serve(argv, f"http://127.0.0.1:{port}/-/ready", tmp_path / "prometheus.log", name="prometheus"):
        at = now - 0.5  # not on a sample
        theirs = query(port, "predict_linear(disk_used[1h], 3600)", at)
        warned = query(port, "predict_linear(disk_used[1h], 3600) > 0.9", at)

    names = list(data)
    width = max(len(t) for t, _ in data.values())
    T = np.full((len(names), width), np.nan)
    V = np.full((len(names), width), np.nan)
    for i, name in enumerate(names):
        t, v = data[name]
        T[i, :len(t)], V[i, :len(t)] = t, v
    fit = line_fit(V, T, np.full(len(names), at), 3600.0)
    ours = {name: float(fit.value_at(3600.0)[i]) for i, name in enumerate(names) if fit.valid[i]}
    assert set(ours) == set(theirs) == set(names) - {"lonely"}  # one point: no line, no answer
    for name in ours:
        assert ours[name] == pytest.approx(theirs[name], rel=1e-9, abs=1e-12), name
    latest = np.array([data[n][1][-1] for n in names])
    crossing_at, _ = trend_crossing(fit, np.full(len(names), at), latest, Line(0.9, False, 3600.0))
    assert {n for i, n in enumerate(names) if np.isfinite(crossing_at[i])} == set(warned) == {"steady", "gappy", "edge"}
