"""The `all` and `any` detectors: combine other detectors on the same series.

    detector:
      type: all                      # "payment success is anomalous AND below 0.97"
      detectors:
        - {type: pyod}
        - {type: threshold, below: 0.97}

`all` is ANOMALOUS when every part is; `any` when at least one is. Each part is validated like
a rule's detector and keeps its own state; the combination gets the history window the
greediest part wants, trains the parts that train (one fit returns one model per part), and
reports the score, range and explanation of the part that decided. Scores are mapped so each
part's own threshold becomes 0.5, the combination's threshold.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any as AnyValue

import numpy as np

from alertd import hookimpl
from alertd.base import Detector, TrainingPlan, TrainingSet
from alertd.model import Batch, Scores, Status


def _relative(score: np.ndarray, threshold: np.ndarray) -> np.ndarray:
    """Map scores so that each part's threshold becomes 0.5 (monotone, stays in [0, 1])."""
    with np.errstate(invalid="ignore", divide="ignore"):
        below = 0.5 * score / threshold
        above = 0.5 + 0.5 * (score - threshold) / (1.0 - threshold)
    return np.clip(np.where(score < threshold, below, np.where(threshold >= 1, 1.0, above)), 0.0, 1.0)


class _Combine(Detector):
    """Shared machinery of `all` and `any`."""

    require_all = True

    @dataclass(frozen=True)
    class Params:
        """`detectors`: the parts, each a mapping with a `type` and its params."""

        detectors: list[AnyValue] = field(default_factory=list, metadata={"detectors": True})

        def check(self) -> None:
            if len(self.detectors) < 2:
                raise ValueError("list at least two detectors to combine under detectors")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.parts = [spec.cls(spec.params, context) for spec in params.detectors]
        self.window = max(p.window for p in self.parts)
        self.min_history = min(p.min_history for p in self.parts)
        self.trainable = any(p.trainable for p in self.parts)
        self.checks_absence = any(p.checks_absence for p in self.parts)

    @property
    def fit_wanted(self) -> bool:
        return any(p.fit_wanted for p in self.parts)

    @fit_wanted.setter
    def fit_wanted(self, value: bool) -> None:  # the base class sets it; the parts own it
        pass

    def forget_series(self, keys: list[str]) -> None:
        for part in self.parts:
            part.forget_series(keys)

    # -- training: delegated to the parts that train ------------------------------------------
    def training_plan(self) -> TrainingPlan | None:
        plans = [p.training_plan() for p in self.parts if p.trainable]
        if not plans:
            return None
        every = [x.every for x in plans if x.every is not None]
        every_points = [x.every_points for x in plans if x.every_points is not None]
        spans = [x.span for x in plans]
        least = [x.min_span for x in plans if x.min_span is not None]
        return TrainingPlan(points=max(x.points for x in plans), every=min(every) if every else None,
                            every_points=min(every_points) if every_points else None,
                            span=None if None in spans else max(spans), min_span=max(least) if least else None)

    def fit(self, data: TrainingSet):
        return [p.fit(data) if p.trainable else None for p in self.parts]

    def install(self, model) -> None:
        for part, m in zip(self.parts, model or ()):
            if part.trainable and m is not None:
                part.install(m)

    def model_info(self) -> dict:
        return {f"{i}:{p.type_name}": p.model_info() for i, p in enumerate(self.parts) if p.trainable}

    def model_version(self) -> str:
        text = self.type_name + ":" + ",".join(p.model_version() for p in self.parts)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # -- scoring ---------------------------------------------------------------------------------
    def _part_batch(self, part: Detector, batch: Batch) -> Batch:
        w = part.window
        if w >= batch.history.shape[1]:
            return batch
        return dataclasses.replace(batch, history=batch.history[:, batch.history.shape[1] - w:],
                                   history_ts=batch.history_ts[:, batch.history_ts.shape[1] - w:])

    def score(self, batch: Batch) -> Scores:
        return self._combine([p.score(self._part_batch(p, batch)) for p in self.parts], len(batch))

    def score_absent(self, batch: Batch, now: float) -> Scores:
        results = [p.score_absent(self._part_batch(p, batch), now) if p.checks_absence
                   else Scores.empty(len(batch)) for p in self.parts]
        return self._combine(results, len(batch))

    def _combine(self, results: list[Scores], n: int) -> Scores:
        status = np.stack([np.asarray(r.status) for r in results])  # (parts, n)
        rel = np.stack([_relative(np.asarray(r.score, float), np.asarray(r.threshold, float))
                        for r in results])
        anomalous = status == Status.ANOMALOUS
        ok = status == Status.OK
        if self.require_all:
            hit = anomalous.all(axis=0)
            normal = ok.any(axis=0)
            decider = np.argmin(np.where(np.isnan(rel), np.inf, rel), axis=0)  # the least anomalous
        else:
            hit = anomalous.any(axis=0)
            normal = ok.any(axis=0) & ~hit
            decider = np.argmax(np.where(np.isnan(rel), -np.inf, rel), axis=0)  # the most anomalous
        out = np.where(hit, Status.ANOMALOUS, np.where(normal, Status.OK, Status.WARMING_UP)).astype(np.int8)
        skipped = (status == Status.SKIPPED).any(axis=0) & ~hit & ~normal
        out[skipped] = Status.SKIPPED
        cols = np.arange(n)
        score = rel[decider, cols]
        judged = (out == Status.OK) | (out == Status.ANOMALOUS)
        lower = np.stack([np.asarray(r.lower, float) for r in results])[decider, cols]
        upper = np.stack([np.asarray(r.upper, float) for r in results])[decider, cols]
        context = [(results[d].context[i] if results[d].context else "") for i, d in enumerate(decider)]
        return Scores(status=out, score=np.where(judged, score, np.nan), threshold=np.full(n, 0.5),
                      lower=lower, upper=upper, context=context)


class All(_Combine):
    """ANOMALOUS when every part is (e.g. anomalous by a model AND below a floor)."""

    type_name = "all"
    require_all = True


class Any(_Combine):
    """ANOMALOUS when at least one part is."""

    type_name = "any"
    require_all = False


@hookimpl
def register_detectors(register):
    register(All)
    register(Any)
