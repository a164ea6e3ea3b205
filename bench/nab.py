"""Benchmark: detection quality of the default anomaly detector on a NAB-layout corpus.

    .venv/bin/python bench/nab.py                       # ../shared/data/nab-dev, default detector
    .venv/bin/python bench/nab.py --jobs 2 --threshold 0.999
    .venv/bin/python bench/nab.py -c alertd.yaml --rule orders_anomaly

The same as `alertd backtest --nab DIR --results OUT`: every file is replayed through the
daemon's engine and trainer (causal, simulated clock, fits when the daemon would fit), the
per-row results are written (to a temporary folder unless --results), and the corpus is
scored with NAB's rules for the three profiles, at the detector's threshold and at the best
threshold on this data. The data is read where it lies; nothing is copied into the repo.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alertd.cli.entry import main as alertd  # noqa: E402


def default_data() -> str:
    """$ALERTD_NAB_DATA, else ../shared/data/nab-dev beside the checkout (or beside its parent,
    for a git worktree one level deeper)."""
    if os.environ.get("ALERTD_NAB_DATA"):
        return os.environ["ALERTD_NAB_DATA"]
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data" / "nab-dev" / "data").is_dir():
            return str(base / "shared" / "data" / "nab-dev")
    return str(ROOT.parent / "shared" / "data" / "nab-dev")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=default_data(), help="a NAB-layout folder (default: "
                        "../shared/data/nab-dev next to the checkout, or $ALERTD_NAB_DATA)")
    parser.add_argument("--results", help="keep the per-file results here (default: a temporary folder)")
    parser.add_argument("-c", "--config", default=str(ROOT / "alertd.yaml"))
    parser.add_argument("--rule", help="a rule of the config (default: the built-in default detector)")
    parser.add_argument("--threshold", type=float)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; data: {args.data}")
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["backtest", "--nab", args.data, "--results", args.results or tmp, "--jobs", str(args.jobs),
                "-c", args.config]
        argv += ["--rule", args.rule] if args.rule else []
        argv += ["--threshold", str(args.threshold)] if args.threshold is not None else []
        return alertd(argv)


if __name__ == "__main__":
    sys.exit(main())
