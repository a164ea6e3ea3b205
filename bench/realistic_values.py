"""Realistic sample values for the store benchmarks (issue 20): the exact values of nab-dev's
series and of the shop simulator's, cycled over the benchmark's series.

`series_values(n, points)` gives an (n, points) array: series i takes the values of source
series i % (number of source series), from an offset of its own (so series that share a source
series do not carry the same numbers at the same instant), wrapping around at the end.
nab-dev is read at run time from `--nab` (default: the shared data set, or data/nab-dev in
the repository); the shop simulator is the built-in `shop_sim` source (seed 42, 60 s
step, the `week` scenario with its incidents), evaluated for a week of slots.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

NAB_CANDIDATES = [Path(os.environ.get("ALERTD_NAB_DEV", "/nonexistent")),
                  Path(__file__).resolve().parent.parent / "data" / "nab-dev",
                  Path("/work/shared/data/nab-dev")]


def nab_dir(given: str | None = None) -> Path:
    for path in ([Path(given)] if given else NAB_CANDIDATES):
        if (path / "data").is_dir():
            return path
    raise SystemExit("nab-dev not found: pass --nab DIR (the folder with data/*/*.csv)")


def nab_series(root: Path) -> list[tuple[str, np.ndarray]]:
    """Every nab-dev series' values, exactly as the CSV writes them (float(text))."""
    out = []
    for path in sorted((root / "data").glob("*/*.csv")):
        with path.open() as f:
            rows = list(csv.DictReader(f))
        out.append((f"nab:{path.stem}", np.array([float(r["value"]) for r in rows])))
    return out


def shop_series(points: int = 7 * 1440) -> list[tuple[str, np.ndarray]]:
    """The shop simulator's series over `points` slots of its 60 s step (a week)."""
    from alertd.base import PluginContext
    from alertd.clock import FakeClock
    from alertd.config.schema import parse_params
    from alertd.default_plugins.sources.shop_sim import ShopSim

    clock = FakeClock(1_750_000_000.0)
    sim = ShopSim(parse_params(ShopSim.Params, {"scenario": "week", "start": "2025-06-02T00:00:00Z"}),
                  PluginContext("shop", clock.now))
    first = int(sim.sim_start // sim.step)
    cols = sim.values(np.arange(first, first + points))
    return [(f"shop:{key}", np.asarray(col, dtype=float)) for (_, _, key, _), col in zip(sim.series, cols)]


def sources(nab: str | None = None) -> list[tuple[str, np.ndarray]]:
    return nab_series(nab_dir(nab)) + shop_series()


def series_values(n: int, points: int, nab: str | None = None, seed: int = 1) -> np.ndarray:
    """(n, points) values: series i cycles through source series i % len(sources)."""
    src = sources(nab)
    rng = np.random.default_rng(seed)
    out = np.empty((n, points))
    for i in range(n):
        values = src[i % len(src)][1]
        start = int(rng.integers(len(values)))
        idx = (start + np.arange(points)) % len(values)
        out[i] = values[idx]
    return out


def random_values(n: int, points: int, seed: int = 1) -> np.ndarray:
    """Full-precision random floats around 100 (the old benchmark's values)."""
    return 100 + np.random.default_rng(seed).normal(0, 5, (n, points))
