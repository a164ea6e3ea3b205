"""Silence: judging series that sent nothing, for detectors with `checks_absence` (`absent`).

The engine calls `judge` for each such rule after every poll of its source (also failed or
empty ones) and every 10 seconds, so a source that stops answering altogether is noticed
too. Every known series of the rule gets a verdict from `Detector.score_absent`, timed with
the daemon clock; series known from the store (from before a restart) are included, so a
series that died while the daemon was down is noticed as well.
"""

from __future__ import annotations

import numpy as np

from ..model import Status, Verdict, fingerprint, make_labels


def judge(engine, rt, now: float) -> None:
    """Score the rule's series for silence and feed the verdicts to the alert stage."""
    if not rt.windows.keys:
        seed_known(engine, rt)
    n = len(rt.windows.keys)
    if not n:
        return
    rows = np.arange(n)
    batch = rt.windows.batch(rows, np.full(n, now), np.full(n, np.nan))
    try:
        scores = rt.detector.score_absent(batch, now)
    except Exception as exc:  # a detector bug must not stop the daemon
        engine.metrics.detector_errors.labels(rt.rule.name).inc()
        engine.log.error("detector_failed", rule=rt.rule.name, error=f"{type(exc).__name__}: {exc}")
        return
    status = np.asarray(scores.status)
    judged = (status == Status.OK) | (status == Status.ANOMALOUS)
    rt.windows.was_anomalous[rows[judged]] = status[judged] == Status.ANOMALOUS
    metric = rt.rule.series.name or ""
    for i in np.flatnonzero((status == Status.ANOMALOUS) | rt.windows.active[rows]):
        verdict = Verdict.from_scores(rt.rule.name, batch, scores, int(i),
                                      metric or batch.keys[i].split("{")[0])
        rt.windows.active[i] = engine.alerting.observe(rt.rule, verdict, rt.fingerprints[i])


def seed_known(engine, rt) -> None:
    """Add the series of this rule that the store knows (once per rule)."""
    if getattr(rt, "_seeded_known", False):
        return
    rt._seeded_known = True
    for row in engine.store.samples.series():
        if row["source"] != rt.rule.source or not rt.rule.series.matches(row["name"], row["labels"]):
            continue
        if row["key"] in rt.windows.rows:
            continue
        labels = make_labels(row["labels"])
        rt.windows.add(row["key"], labels)
        rt.fingerprints.append(fingerprint(rt.rule.name, labels))
        rt.windows.active[rt.windows.rows[row["key"]]] = engine.tracker.is_tracked(rt.fingerprints[-1])
