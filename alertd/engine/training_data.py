"""A fit's training data: the latest points of each series of a rule, read from the store,
minus the points inside the rule's firing incidents (an outage must not become the new
normal). Read by the trainer's thread, or by the fit worker process on a connection of its
own (alertd/engine/fit_process.py).

Incidents of one or two points are not left out: they are blips (a rule without `for`
fires on every one), and learning them teaches a bursty series what its bursts look like.
"""

from __future__ import annotations

import numpy as np

from ..base import TrainingSet
from ..model import fingerprint

MAX_EXCLUDED = 0.5  # more than this share of a series inside incidents: learn from it anyway
MIN_INCIDENT_POINTS = 3  # shorter incidents are blips: learning them teaches a bursty series its bursts


def training_set(samples, incidents, rule: str, keys: list[str], labels: list, points: int,
                 now: float, span: float | None = None, source: str | None = None,
                 only: frozenset[str] | None = None) -> TrainingSet:
    """The latest `points` points of each series of `source` (within `span` of its latest
    point), minus those inside firing incidents. `only` (a plan's `history_keys`): just these
    series, each of them in the set even without points (a catch-up must learn that there is
    nothing to replay)."""
    if only is not None:
        pairs = [(k, lab) for k, lab in zip(keys, labels) if k in only]
        keys, labels = [k for k, _ in pairs], [lab for _, lab in pairs]
    recent = samples.recent(keys, points, source=source)
    if span is not None:
        recent = {k: (ts[ts >= ts[-1] - span], v[ts >= ts[-1] - span])
                  for k, (ts, v, *_) in recent.items() if len(ts)}
    starts = [recent[k][0][0] for k in keys if k in recent and len(recent[k][0])]
    spans = incidents.firing_spans(rule, since=min(starts) if starts else None)
    out_keys, out_labels, out_ts, out_values, excluded = [], [], [], [], 0
    empty = np.zeros(0)
    for key, lab in zip(keys, labels):
        if key not in recent:
            if only is not None:
                out_keys.append(key)
                out_labels.append(lab)
                out_ts.append(empty)
                out_values.append(empty)
            continue
        ts, values = recent[key][0], recent[key][1]
        drop = np.zeros(len(ts), dtype=bool)
        for start, end in spans.get(fingerprint(rule, lab), ()):
            inside = (ts >= start) & (ts < end)
            if inside.sum() >= MIN_INCIDENT_POINTS:
                drop |= inside
        if drop.any() and drop.mean() <= MAX_EXCLUDED:
            ts, values = ts[~drop], values[~drop]
            excluded += int(drop.sum())
        out_keys.append(key)
        out_labels.append(lab)
        out_ts.append(ts)
        out_values.append(values)
    return TrainingSet(out_keys, out_labels, out_ts, out_values, now, excluded)
