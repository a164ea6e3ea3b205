"""Run the hostile-input properties (tests/test_fuzz_*.py) with many more cases and print
how many ran per target.

    .venv/bin/python bench/fuzz.py              # 1000 random cases per property
    .venv/bin/python bench/fuzz.py --examples 200 --json counts.json

The default test run (`make test`) runs the same properties with a fixed seed and a few
dozen to a few hundred cases each; this script raises every property to `--examples`
random cases (ALERTD_FUZZ_EXAMPLES) and prints the tally that tests/fuzzing.py keeps: per
target, how many cases ended which way (a config valid or refused with located errors, a
poll with samples or a SourceError, a push answered with which HTTP status, ...). Exit code
is pytest's: non-zero when any property found a case that breaks it (pytest prints it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["tests/test_fuzz_config.py", "tests/test_fuzz_samples.py", "tests/test_fuzz_sources.py",
           "tests/test_fuzz_api.py"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="random cases per property (default 1000)")
    parser.add_argument("--json", help="also write the counts to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "counts.json"
        env = {**os.environ, "ALERTD_FUZZ_EXAMPLES": str(args.examples), "ALERTD_FUZZ_REPORT": str(report),
               "PYTHONPATH": str(ROOT)}
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=0",
                                *TARGETS],
                               cwd=ROOT, env=env)
        seconds = time.monotonic() - started
        counts = json.loads(report.read_text()) if report.exists() else {}
    print(f"\n{sum(counts.values())} hostile-input cases in {seconds:.0f}s "
          f"({args.examples} random examples per property), by target and outcome:")
    for target, n in counts.items():
        print(f"  {target:<30} {n:>8}")
    if args.json:
        Path(args.json).write_text(json.dumps(counts, indent=1) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
