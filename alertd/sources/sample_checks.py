"""Which samples of a poll can be stored: the engine's gate against unusable values.

`clean_samples(samples)` keeps Samples whose value and timestamp are real, finite numbers
(timestamps within the years 1-9999, which notices can show) and returns the rest grouped by
reason, for `alertd_samples_skipped_total{source, reason}`: `not_a_sample`, `not_a_number`
(strings, None, booleans), `too_large` (an integer beyond a float's range), `not_finite`
(NaN, infinities), `bad_timestamp` and, given `not_after`, `future_timestamp`: a point more
than a few minutes (`FUTURE_TOLERANCE`) ahead of the daemon's clock. One point stamped in the
year 2100 would otherwise make every later point of its series `out_of_order`. Kept values
and timestamps become floats, so the store holds one type (SQLite cannot bind integers of
2**63 and more).
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from ..base import FUTURE_TOLERANCE  # noqa: F401 - the default tolerance, named here for sources
from ..model import Sample

# Data times a notice can show (datetime's years 1 to 9999); outside them a sample is refused.
TS_MIN, TS_MAX = -62135596800.0, 253402300799.0

_INT_LIMIT = 2 ** 63  # SQLite stores larger Python ints only as floats: the slow path converts


def _all_good(samples: list, not_after: float) -> bool:
    """Fast path: every item a Sample with a finite int/float value and a timestamp in range."""
    if set(map(type, samples)) - {Sample}:
        return False
    if not samples:
        return True
    _, _, stamps, values = zip(*samples)  # samples are named tuples: columns in one C pass
    types = set(map(type, values)) | set(map(type, stamps))
    if types - {float, int}:
        return False
    if int in types and max(abs(x) for x in values + stamps if type(x) is int) >= _INT_LIMIT:
        return False
    ts = np.asarray(stamps, dtype=float)
    return bool(np.isfinite(np.asarray(values, dtype=float)).all()
                and ((ts >= TS_MIN) & (ts <= min(TS_MAX, not_after))).all())


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _why_unusable(s, not_after: float) -> tuple[str, object] | None:
    """Why a sample cannot be stored (a reason of `alertd_samples_skipped_total`) and the
    culprit (the sample, its value or its timestamp), or None when it is fine."""
    if not isinstance(s, Sample):
        return "not_a_sample", s
    for culprit in (s.value, s.ts):
        if not _number(culprit):
            return "not_a_number", culprit
        try:
            number = float(culprit)
        except OverflowError:  # an int beyond a float's range
            return "too_large", culprit
        if not math.isfinite(number):
            return "not_finite", culprit
    if not TS_MIN <= s.ts <= TS_MAX:
        return "bad_timestamp", s.ts
    if s.ts > not_after:
        return "future_timestamp", s
    return None


def clean_samples(samples, not_after: float | None = None) -> tuple[list[Sample], dict[str, list]]:
    """(usable samples, {reason: culprits}) of one poll; see the module docstring. With
    `not_after` (the daemon's clock plus FUTURE_TOLERANCE), later points are refused."""
    samples = list(samples or ())
    not_after = TS_MAX if not_after is None else not_after
    if _all_good(samples, not_after):
        return samples, {}
    good, bad = [], defaultdict(list)
    for s in samples:
        why = _why_unusable(s, not_after)
        if why is None:
            if type(s.value) is not float or type(s.ts) is not float:
                s = Sample(s.name, s.labels, float(s.ts), float(s.value))
            good.append(s)
        else:
            bad[why[0]].append(why[1])
    return good, bad
