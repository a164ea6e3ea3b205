"""The `pyod` detector: any PyOD model on seasonal, scale-free features, calibrated to [0, 1].

Per series, each point becomes a few features (see `alertd.detect.features`: the residual from the
same slot of past days or weeks, the change since the last point, the short-term shift,
...), scored by a PyOD model fitted beside the hot path on stored history (the daemon's
trainer calls `fit`, then `install`). Raw scores are calibrated against the model's scores
of its own training points, so `threshold: 0.999` means "about one normal point in a
thousand scores this high" for every model.

A series gets verdicts once it has `min_history` points and a model covers it; until then it
is WARMING_UP. Every point at or above the threshold is ANOMALOUS, so incidents (with the
rule's `for`/`clear_for`) and training see the whole anomaly. `cooldown` is about
*detections*, the points where an anomaly starts (what a backtest and NAB count): a start
within `cooldown` points of the previous one is the same event, not a new detection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from alertd import hookimpl
from alertd.base import Detector, TrainingPlan, TrainingSet
from alertd.config.schema import Duration, ParamError
from alertd.detect.anomaly_model import (
    MODEL_FORMAT,
    AnomalyModel,
    ModelSpec,
    calibrated,
    feature_matrix,
    fit_anomaly_model,
    raw_scores,
    residual_windows,
    why,
)
from alertd.detect.features import FEATURES, SHORT
from alertd.detect.pyod_models import MODELS, STREAM, check_model
from alertd.detect.seasons import slot_text, utc_offset
from alertd.detect.series_memory import ModelRows
from alertd.model import Batch, Scores, Status


class PyODDetector(Detector):
    """Any PyOD model on seasonal, scale-free features, calibrated to [0, 1] (docs/detectors.md)."""

    type_name = "pyod"
    trainable = True
    model_format = MODEL_FORMAT

    @dataclass(frozen=True)
    class Params:
        """The model, its features, the calibrated threshold and the training schedule."""

        model: str = "KNN"
        model_params: dict[str, Any] = field(default_factory=lambda: {"n_neighbors": 10, "method": "mean"})
        features: list[str] = ("residual", "change", "shift")
        lags: int = 0
        window: int = 12
        seasonality: Literal["auto", "daily", "weekly", "none"] = "auto"
        timezone: str = "UTC"
        direction: Literal["both", "up", "down"] = "both"
        threshold: float = 0.999
        cooldown: int = 100
        min_history: int = 150
        model_scope: Literal["rule", "series"] = "rule"
        train_points: int = 3000
        max_train_rows: int = 20000
        retrain: Duration | None = None
        retrain_points: int | None = 300

        def check(self) -> None:
            try:
                check_model(self.model, self.model_params)
            except ValueError as exc:
                raise ParamError("model_params" if "parameter" in str(exc) else "model", str(exc)) from None
            for name in self.features:
                if name not in FEATURES:
                    raise ParamError("features", f'unknown feature "{name}"; valid features are {", ".join(FEATURES)}')
            if not self.features and not self.lags:
                raise ParamError("features", "features is empty and lags is 0; give the model something to look at")
            if MODELS[self.model].univariate and len(self.features) + self.lags != 1:
                raise ParamError("features", f"{self.model} takes exactly one feature; list one and set lags to 0")
            if not 0.5 <= self.threshold < 1:
                raise ParamError("threshold", "the threshold is a calibrated score between 0.5 and 1 "
                                 f"(e.g. 0.999), got {self.threshold:g}")
            for key in ("lags", "cooldown"):
                if getattr(self, key) < 0:
                    raise ParamError(key, f"{key} must not be negative")
            if self.window < SHORT + self.lags:
                raise ParamError("window", f"window must be at least {SHORT + self.lags} points "
                                 f"({SHORT} for the short-term features plus lags), got {self.window}")
            if self.min_history < 20:
                raise ParamError("min_history", f"min_history must be at least 20 points to fit a model, "
                                 f"got {self.min_history}")
            if self.train_points < self.min_history:
                raise ParamError("train_points", f"train_points ({self.train_points}) must be at least "
                                 f"min_history ({self.min_history})")
            if self.retrain is None and self.retrain_points is None:
                raise ParamError("retrain", "set retrain (a duration) or retrain_points (a count), "
                                 "or the model never learns")
            if self.retrain is not None and self.retrain <= 0:
                raise ParamError("retrain", "retrain must be a duration above 0s")
            if self.retrain_points is not None and self.retrain_points < 1:
                raise ParamError("retrain_points", f"retrain_points must be at least 1, got {self.retrain_points}")
            if self.max_train_rows < 100:
                raise ParamError("max_train_rows", f"max_train_rows must be at least 100, got {self.max_train_rows}")
            try:
                utc_offset(self.timezone, 0.0)
            except Exception:
                raise ParamError("timezone", f'unknown timezone "{self.timezone}"; use a name like UTC or '
                                 "Europe/Berlin") from None

    def __init__(self, params, context):
        super().__init__(params, context)
        self.window = params.window
        self.min_history = params.min_history
        self.model: AnomalyModel | None = None
        self.cooldown = params.cooldown  # detections: see the module docstring
        self._stream = MODELS[params.model].kind == STREAM
        self._slot_texts: dict = {}
        self._model_rows = ModelRows()

    # -- training -----------------------------------------------------------------------------
    def training_plan(self) -> TrainingPlan:
        p = self.params
        return TrainingPlan(points=p.train_points, every=p.retrain, every_points=p.retrain_points)

    def spec(self, now: float) -> ModelSpec:
        p = self.params
        return ModelSpec(p.model, dict(p.model_params), tuple(p.features), p.lags, p.window, p.seasonality,
                         utc_offset(p.timezone, now), p.model_scope, p.min_history, p.max_train_rows,
                         p.threshold)

    def fit(self, data: TrainingSet) -> AnomalyModel | None:
        return fit_anomaly_model(self.spec(data.now), data, data.now)

    def install(self, model: AnomalyModel | None) -> None:
        if model is not None:
            self.model = model  # one reference swap: a tick sees the old or the new model
            self.fit_wanted = False

    def model_info(self) -> dict:
        m = self.model
        if m is None:
            return {}
        return {"model": m.spec.model, "scope": m.spec.scope, "series": len(m.norm.keys),
                "train_rows": m.train_rows, "fitted_at": m.fitted_at, "fit_seconds": round(m.fit_seconds, 3),
                "excluded_points": m.excluded,
                "seasonal_series": int((m.norm.period > 0).sum())}

    # -- scoring ------------------------------------------------------------------------------
    def score(self, batch: Batch) -> Scores:
        p, n = self.params, len(batch)
        values = np.asarray(batch.values, dtype=float)
        status = np.full(n, Status.WARMING_UP, dtype=np.int8)
        score, lower, upper = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        context: list[str] = [""] * n
        am = self.model
        ready = ~self.warming_up(batch)
        if am is not None:
            norm_rows = self._model_rows.of(am, batch.keys)
        else:
            norm_rows = np.full(n, -1, dtype=np.int64)
        covered = norm_rows >= 0
        if (ready & ~covered).any():
            self.fit_wanted = True  # a series is ready but no model covers it yet
        finite = np.isfinite(values)
        status[ready & covered & ~finite] = Status.SKIPPED
        judge = np.flatnonzero(ready & covered & finite)
        if len(judge):
            self._judge(am, batch, judge, norm_rows[judge], status, score, lower, upper, context)
        return Scores(status=status, score=score, threshold=np.full(n, p.threshold), lower=lower,
                      upper=upper, context=context)

    def _judge(self, am, batch, rows, idx, status, score, lower, upper, context) -> None:
        p = self.params
        w = p.window
        hist = np.asarray(batch.history, dtype=float).reshape(len(batch), -1)[rows, -w:]
        hist_ts = np.asarray(batch.history_ts, dtype=float).reshape(len(batch), -1)[rows, -w:]
        values = np.concatenate([hist, np.asarray(batch.values, dtype=float)[rows, None]], axis=1)
        times = np.concatenate([hist_ts, np.asarray(batch.ts, dtype=float)[rows, None]], axis=1)
        X = feature_matrix(am.spec, values, times, am.norm, idx)
        windows = residual_windows(values, times, am.norm, idx) if self._stream else None
        which = am.model_of(idx)
        s = calibrated(am, raw_scores(am, X, windows, which), which)
        expected = am.norm.expected(times[:, -1:], idx)[:, 0]
        resid = values[:, -1] - expected
        band = am.band[which] * am.norm.rscale[idx]
        lo, hi = expected - band, expected + band
        hit = s >= p.threshold
        if p.direction == "up":
            hit &= resid > 0
            lo = np.full(len(rows), np.nan)
        elif p.direction == "down":
            hit &= resid < 0
            hi = np.full(len(rows), np.nan)
        status[rows] = np.where(hit, Status.ANOMALOUS, Status.OK)
        score[rows], lower[rows], upper[rows] = s, lo, hi
        periods = am.norm.period[idx]
        seasonal = np.flatnonzero(periods > 0)  # series without a rhythm get no "for 14:00"
        minutes = (np.asarray(batch.ts, dtype=float)[rows[seasonal]] + am.norm.utc_offset) // 60
        cache = self._slot_texts
        for r, per, minute in zip(rows[seasonal].tolist(), periods[seasonal].tolist(), minutes.tolist()):
            text = cache.get((per, minute))
            if text is None:
                text = cache[(per, minute)] = slot_text(per, minute * 60.0)
            context[r] = text
        if len(cache) > 10_000:
            cache.clear()
        flagged = np.flatnonzero(hit)
        if len(flagged):  # say what stood out: the value may lie inside the range (a shift)
            for j, phrase in zip(flagged, why(am, X[flagged], which[flagged])):
                r = rows[j]
                context[r] = f"{context[r]}: {phrase}" if context[r] else f"({phrase})"


@hookimpl
def register_detectors(register):
    register(PyODDetector)
