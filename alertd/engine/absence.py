"""Absence: judging series that sent nothing, for detectors with `checks_absence` (`absent`).

The engine calls `judge` for each such rule after every poll of its source (also failed or
empty ones) and every 10 seconds, so a source that stops answering altogether is noticed
too. Every known series of the rule gets a verdict from `Detector.score_absent`, timed with
the daemon clock; series known from the store (from before a restart) are included, so a
series that died while the daemon was down is noticed as well.
"""

from __future__ import annotations

import numpy as np

from ..model import Status, Verdict, make_labels


def judge(rt, stage, store, metrics, log, now: float, forget_before: float = -np.inf) -> None:
    """Score the rule's series for silence and feed the verdicts to the alert stage.

    A series silent since before `forget_before` (now - `retention`) is no longer watched: its
    incident resolves as "forgotten" and the prune job drops it like any series gone for that
    long. Without that, every pod that went away for good would fire for ever, and its row,
    alert state and group would stay in memory (a churning source grows without bound)."""
    if not rt.windows.keys:
        seed_known(rt, store, stage.tracker.is_tracked, now)
    n = len(rt.windows.keys)
    if not n:
        return
    win = rt.windows
    old = np.flatnonzero(win.polled[:n] < forget_before)
    for row in old[win.active[old]].tolist():
        win.active[row] = stage.vanish(rt.rule, rt.fingerprints[row], now, "forgotten")
    rows = np.flatnonzero(win.polled[:n] >= forget_before)
    if not len(rows):
        return
    batch = win.batch(rows, np.full(len(rows), now), np.full(len(rows), np.nan))
    try:
        scores = rt.detector.score_absent(batch, now)
    except Exception as exc:  # a detector bug must not stop the daemon
        metrics.detector_errors.labels(rt.rule.name).inc()
        log.error("detector_failed", rule=rt.rule.name, error=f"{type(exc).__name__}: {exc}")
        return
    status = np.asarray(scores.status)
    judged = (status == Status.OK) | (status == Status.ANOMALOUS)
    win.was_anomalous[rows[judged]] = status[judged] == Status.ANOMALOUS
    metric = rt.rule.series.name or ""
    for i in np.flatnonzero((status == Status.ANOMALOUS) | win.active[rows]).tolist():
        row = int(rows[i])
        verdict = Verdict.from_scores(rt.rule.name, batch, scores, i, metric or batch.keys[i].split("{")[0])
        win.active[row] = stage.observe(rt.rule, verdict, rt.fingerprints[row])


def seed_known(rt, store, is_tracked, now: float | None = None) -> None:
    """Add the series of this rule that the store knows (once per rule)."""
    if rt.known_seeded:
        return
    rt.known_seeded = True
    for row in store.samples.series():
        if row["source"] != rt.rule.source or not rt.rule.series.matches(row["name"], row["labels"]):
            continue
        if row["key"] in rt.windows.rows:
            continue
        rt.add_series(row["key"], make_labels(row["labels"]), is_tracked, now)
