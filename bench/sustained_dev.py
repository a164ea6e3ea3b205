"""The `surprise` sustained-shift view on the demo's own incident-free history (not the labelled
week it was chosen on): false pages of `orders_anomaly`'s settings, and how many injected
regional drops they page for within 10 minutes.

    .venv/bin/python bench/sustained_dev.py                     # the configurations in docs/detectors.md
    .venv/bin/python bench/sustained_dev.py 'sus_weight=1.0,sus_k=1.25'

The history: the 16.8 days of shop time that tests/test_end_to_end.py back-fills before its
quiet day (the demo config's shop_sim, seed 42, 2-minute steps, no incidents), orders per
minute of eu, us and apac. Judged from the 8th day on (the hour-of-week view is live then):
26 series-days. The rule is emulated on the core (`alertd.detect.surprise`, one point at a
time, as the plugin scores): a point is anomalous when its score reaches 0.06 and its value
is outside the expected range on the side of the deviation, or it was anomalous and the value
is still outside; a page when that lasts 8 minutes (`for: 8m`). Drops: a copy of each series
with a drop of 30-70% for 15-60 minutes every 9.3-10.3 hours (seeded), counts scaled down;
found when a page comes at most 15 minutes after its end, fast when within 10 minutes of its
start. Deterministic; about a minute of CPU per configuration.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alertd.base import PluginContext  # noqa: E402
from alertd.clock import FakeClock  # noqa: E402
from alertd.config.load import load_config  # noqa: E402
from alertd.detect.surprise import Core, SurpriseState  # noqa: E402
from alertd.plugins import load_registry  # noqa: E402

NOW = 1_750_000_000.0  # the clock of tests/test_end_to_end.py
SPAN = 10080 * 2 * 1.2 * 60  # its back-fill: train_points x every x 1.2, at 60x speed
STEP, THR, FOR = 120.0, 0.06, 480.0
CONFIGS = ("", "sus_weight=1.0", "sus_weight=1.0,sus_k=1.25", "sus_weight=0.8")


def history() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    text = (ROOT / "alertd.yaml").read_text().replace("    seed: 42\n", "    seed: 42\n    incidents: []\n", 1)
    cfg = Path("/tmp") / f"alertd-sustained-dev-{id(text)}.yaml"
    cfg.write_text(text.replace("plugin_dirs: [plugins]", f"plugin_dirs: [{ROOT / 'plugins'}]"))
    try:
        registry = load_registry([ROOT / "plugins"], entrypoints=False)
        config = load_config(cfg, registry, environ={})
    finally:
        cfg.unlink()
    clock = FakeClock(NOW)
    src = registry.get("source", "shop_sim")(config.sources["shop"].params, PluginContext("shop", clock.now, None))
    ts = np.arange(np.ceil((NOW - SPAN) / STEP), np.floor(NOW / STEP)) * STEP
    out: dict[str, list[float]] = {"eu": [], "us": [], "apac": []}
    for t in ts:
        for s in src.samples_at(t):
            region = dict(s.labels).get("region")
            if s.name == "orders_per_minute" and region in out:
                out[region].append(s.value)
    return {r: (ts, np.array(v)) for r, v in out.items()}


def pages(ts, v, core) -> list[float]:
    state = SurpriseState(1, core)
    prev, start, fired, out = False, 0.0, False, []
    for i in range(len(ts)):
        r = state.update(v[i:i + 1], ts[i:i + 1], threshold=THR)
        outside = (v[i] < r.low[0] and r.side[0] < 0) or (v[i] > r.high[0] and r.side[0] > 0)
        anomalous = bool(outside and (r.score[0] >= THR or prev) and not r.warming_up[0])
        if anomalous and not prev:
            start, fired = ts[i], False
        if anomalous and not fired and ts[i] - start >= FOR:
            fired = True
            out.append(ts[i])
        prev = anomalous
    return out


def drops(ts, seed) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    t, out = ts[0] + 8 * 86400 + rng.uniform(0, 3600), []
    while t < ts[-1] - 3 * 3600:
        a = ts[np.searchsorted(ts, t)]
        out.append((a, a + 60 * rng.choice([15, 20, 30, 45, 60]), rng.uniform(0.3, 0.7)))
        t += 9.3 * 3600 + rng.uniform(0, 3600)
    return out


def judge(series, kwargs: dict) -> tuple[int, int, int, int]:
    core = Core(short_max_pts=6, **kwargs)  # orders_anomaly: short_points 6
    false = fast = found = n = 0
    for k, (ts, v) in enumerate(series.values()):
        false += sum(t >= ts[0] + 8 * 86400 for t in pages(ts, v, core))
        windows, dropped = drops(ts, 100 + k), v.copy()
        for a, b, depth in windows:
            inside = (ts >= a) & (ts < b)
            dropped[inside] = np.round(dropped[inside] * (1 - depth))
        paged = pages(ts, dropped, core)
        for a, b, _ in windows:
            hits = [t for t in paged if a <= t <= b + 900]
            n += 1
            found += bool(hits)
            fast += bool(hits) and hits[0] - a <= 600
    return false, fast, found, n


def main(argv: list[str]) -> None:
    series = history()
    days = sum((ts[-1] - ts[0]) / 86400 - 8 for ts, _ in series.values())
    print(f"demo history: {len(series)} series, judged over {days:.1f} series-days (from the 8th day)")
    for arg in argv or CONFIGS:
        kwargs = eval(f"dict({arg})")  # Core fields, e.g. sus_weight=1.0,sus_k=1.25
        false, fast, found, n = judge(series, kwargs)
        print(f"{arg or 'sustained off':28s} false pages {false:3d}   drops paged within 10 min {fast}/{n}, "
              f"at all {found}/{n}")


if __name__ == "__main__":
    main(sys.argv[1:])
