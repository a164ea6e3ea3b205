"""Shared settings and a case tally for the hostile-input property tests (tests/test_fuzz_*.py).

Every property calls `tally(target)` once per generated case, so a run can say how many
cases each target saw. The default run uses each test's own `max_examples` (kept small so
the suite stays fast) with a fixed seed; `ALERTD_FUZZ_EXAMPLES=N` raises every target to N
random cases (bench/fuzz.py does, and prints the tally). At the end of a session the tally
is printed and, with `ALERTD_FUZZ_REPORT=FILE`, written to FILE as JSON.
"""

from __future__ import annotations

import json
import os
from collections import Counter

from hypothesis import HealthCheck, settings

CASES: Counter = Counter()
_BIG = int(os.environ.get("ALERTD_FUZZ_EXAMPLES", "0") or 0)


def fuzz_settings(examples: int):
    """Hypothesis settings: `examples` cases, fixed seed (or ALERTD_FUZZ_EXAMPLES, random)."""
    return settings(max_examples=_BIG or examples, deadline=None, derandomize=not _BIG,
                    database=None, suppress_health_check=list(HealthCheck))


def tally(target: str, n: int = 1) -> None:
    """Count `n` cases for `target`."""
    CASES[target] += n


def report(terminalreporter) -> None:
    """Print the tally (called from conftest's pytest_terminal_summary) and save it if asked."""
    if not CASES:
        return
    terminalreporter.write_line(f"hostile-input cases: {sum(CASES.values())} in total")
    for target, n in sorted(CASES.items()):
        terminalreporter.write_line(f"  {target:<28} {n}")
    path = os.environ.get("ALERTD_FUZZ_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(dict(sorted(CASES.items())), f, indent=1)
