"""No data and missing series: what a rule's series do when their points stop coming.

- A failed or empty poll (`Engine.source_failed`), or a poll with no series a rule selects,
  applies the rule's `no_data` policy to every series the rule knows (Grafana's semantics):
  `alerting` counts each as anomalous ("no data: <reason>", cause "no_data", so `for`,
  silences and routes apply as usual), `ok` counts each as normal (open incidents resolve
  after `clear_for` / `keep_firing_for`), `keep_state` (the default) changes nothing. A rule
  that never saw a series gets one label-less incident under `alerting`, resolved when data
  comes back.
- A tracked series that is absent from `MISSING_POLLS` successful polls in a row is resolved
  ("series_missing", after `keep_firing_for`), as Prometheus resolves an alert whose series
  is gone, whatever `no_data` says; not for an `absent` rule, whose incidents are about that
  very silence (alertd/engine/absence.py resolves them).

Times are data time: the last data timestamp of the rule plus the daemon time since it.
"""

from __future__ import annotations

import math

import numpy as np

from ..model import Status, Verdict, fingerprint

MISSING_POLLS = 2


def data_now(rt, now: float) -> float:
    """The rule's data time now: its last data timestamp plus the daemon time since."""
    if rt.last_data_ts is None:
        return now
    return rt.last_data_ts + max(0.0, now - rt.last_data_at)


def _verdict(rt, key: str, labels, ts: float, status: Status, reason: str) -> Verdict:
    nan = math.nan
    return Verdict(rt.rule.name, key, labels, ts, nan, status, nan, nan, nan, nan, reason)


def apply_no_data(rt, stage, reason: str, now: float) -> None:
    """Apply the rule's `no_data` policy to all its known series."""
    policy = rt.rule.no_data
    if policy == "keep_state":
        return
    ts = data_now(rt, now)
    win = rt.windows
    status = Status.ANOMALOUS if policy == "alerting" else Status.OK
    text = f"no data: {reason}" if policy == "alerting" else f"no data ({reason}); counted as normal"
    if not win.keys:
        if policy == "alerting" or stage.tracker.is_tracked(rt.nodata_fp):
            stage.observe(rt.rule, _verdict(rt, rt.rule.name, (), ts, status, text), rt.nodata_fp, "no_data")
        return
    for row, key in enumerate(win.keys):
        if status == Status.OK and not win.active[row]:
            continue  # a normal verdict changes nothing for an untracked series
        verdict = _verdict(rt, key, win.labels[row], ts, status, text)
        win.active[row] = stage.observe(rt.rule, verdict, rt.fingerprints[row], "no_data")


def data_is_back(rt, stage, ts: float) -> None:
    """Data arrived: a label-less no-data incident of the rule counts a normal point (unless
    a real series without labels has that fingerprint: its own points decide then)."""
    if not rt.has_unlabelled and stage.tracker.is_tracked(rt.nodata_fp):
        stage.observe(rt.rule, _verdict(rt, rt.rule.name, (), ts, Status.OK, "data is back"),
                      rt.nodata_fp, "anomaly")


def resolve_missing(rt, stage, present: np.ndarray, ts: float) -> None:
    """Count polls a tracked series was absent from; resolve it after MISSING_POLLS."""
    if rt.detector.checks_absence:  # (a missing series is what an absent rule reports)
        return
    win = rt.windows
    n = len(win.keys)
    tracked = np.flatnonzero(win.active[:n])
    seen = set(present.tolist())
    for row in list(rt.missed):
        if row in seen:
            del rt.missed[row]
    for row in tracked.tolist():
        if row in seen:
            continue
        count = rt.missed.get(row, 0) + 1
        if count < MISSING_POLLS:
            rt.missed[row] = count
            continue
        rt.missed.pop(row, None)
        win.active[row] = stage.vanish(rt.rule, rt.fingerprints[row], ts)


def nodata_fingerprint(rule_name: str) -> str:
    return fingerprint(rule_name, ())
