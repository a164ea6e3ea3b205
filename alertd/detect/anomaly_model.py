"""Fitting and applying a PyOD model on alertd's features: the `pyod` detector's engine room.

`fit_anomaly_model(spec, data)` learns, from a `TrainingSet`, each series' normalisation,
one PyOD model per rule (`scope="rule"`, on pooled scale-free features) or per series, and
a `Calibrator` per model from the model's scores of its own training points. The result is
a plain picklable `AnomalyModel`; `raw_scores(model, ...)` scores feature rows with as few
model calls as the model kind allows (see `alertd.detect.pyod_models`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .calibration import Calibrator
from .features import FEATURES, SHORT, SeriesNorm, fit_norm, point_features, window_matrix
from .pyod_models import MODELS, ROWWISE, STREAM, build_model

MODEL_FORMAT = 2  # bump when AnomalyModel changes shape: stored models of older formats are refit


@dataclass(frozen=True)
class ModelSpec:
    """What to fit: the PyOD model and the feature recipe (from the detector's params)."""

    model: str
    model_params: dict
    features: tuple[str, ...]
    lags: int
    window: int
    seasonality: str
    utc_offset: float
    scope: str  # "rule" or "series"
    min_points: int  # a series needs this many training points to be covered
    max_rows: int  # cap on pooled training rows (rule scope)
    threshold: float


@dataclass
class AnomalyModel:
    """A fitted model: normalisation per series, PyOD model(s) and their calibrators."""

    spec: ModelSpec
    norm: SeriesNorm
    models: list  # one (rule scope) or one per series of `norm`
    calibrators: list[Calibrator]
    band: np.ndarray  # per model: |residual| (rscale units) at the threshold quantile
    fitted_at: float
    fit_seconds: float
    train_rows: int
    excluded: int = 0
    feature_spread: np.ndarray | None = None  # per model and feature: typical |value| in training
    format: int = MODEL_FORMAT
    index: dict = field(default_factory=dict)

    def __post_init__(self):
        self.index = self.norm.index()

    def model_of(self, norm_rows: np.ndarray) -> np.ndarray:
        """Which model scores each series (all 0 in rule scope)."""
        return norm_rows if self.spec.scope == "series" else np.zeros_like(norm_rows)


def feature_matrix(spec: ModelSpec, values: np.ndarray, times: np.ndarray, norm: SeriesNorm,
                   idx: np.ndarray) -> np.ndarray:
    """The model's input rows from window matrices: the chosen features, then the lags."""
    full = point_features(values, times, norm, idx)
    cols = [full[:, FEATURES.index(f)] for f in spec.features]
    if spec.lags:
        k = spec.lags
        expected = norm.expected(times[:, -k - 1:-1], idx)
        with np.errstate(invalid="ignore"):
            lagged = (values[:, -k - 1:-1] - expected) / norm.rscale[idx][:, None]
        lagged = np.round(np.nan_to_num(lagged, nan=0.0, posinf=1e6, neginf=-1e6), 3)
        cols.extend(lagged.T)
    return np.column_stack(cols) if cols else np.zeros((len(values), 0))


def residual_windows(values: np.ndarray, times: np.ndarray, norm: SeriesNorm,
                     idx: np.ndarray) -> np.ndarray:
    """Window matrices in residual units: (value - seasonal expectation) / rscale."""
    with np.errstate(invalid="ignore"):
        return (values - norm.expected(times, idx)) / norm.rscale[idx][:, None]


def _series_rows(spec: ModelSpec, norm: SeriesNorm, i: int, ts: np.ndarray, values: np.ndarray,
                 most: int | None = None):
    """Training rows of series i: features of its points with a full short window (at most
    `most` of them, evenly spread, the newest always included)."""
    start = min(SHORT + spec.lags, len(values))
    rows = np.arange(start, len(values))
    if most is not None and len(rows) > most:
        rows = rows[np.unique(np.linspace(0, len(rows) - 1, most).round().astype(np.int64))]
    v, t = window_matrix(ts, values, rows, spec.window)
    idx = np.full(len(v), i, dtype=np.int64)
    feats = feature_matrix(spec, v, t, norm, idx)
    rw = residual_windows(v, t, norm, idx)
    return feats, rw, t, rw[:, -1]


def _fit_one(spec: ModelSpec, X: np.ndarray, windows: np.ndarray | None):
    """Fit one PyOD model on rows X; returns (model, training raw scores)."""
    info = MODELS[spec.model]
    model = build_model(spec.model, spec.model_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if info.kind == STREAM:
            series = windows[:, -1]
            model.fit(series)
            train = stream_scores(model, windows)
        else:
            model.fit(X[:, :1] if info.univariate else X)
            train = np.asarray(model.decision_scores_, dtype=float)
    return model, train


def stream_scores(model, windows: np.ndarray) -> np.ndarray:
    """Score of the last point of each window (a stream model sees only the past)."""
    out = np.empty(len(windows))
    for j, w in enumerate(windows):
        w = w[np.isfinite(w)]
        out[j] = model.decision_function(w)[-1] if len(w) >= 3 else 0.0
    return out


def fit_anomaly_model(spec: ModelSpec, data, now: float) -> AnomalyModel | None:
    """Fit on a TrainingSet; None when no series has `spec.min_points` usable points."""
    started = time.perf_counter()
    keep = [i for i in range(len(data.keys))
            if np.isfinite(data.values[i]).sum() >= spec.min_points]
    if not keep:
        return None
    keys = [data.keys[i] for i in keep]
    hist = [(np.asarray(data.ts[i], dtype=float), np.asarray(data.values[i], dtype=float)) for i in keep]
    norm = fit_norm(keys, hist, seasonality=spec.seasonality, utc_offset=spec.utc_offset)
    # rule scope: no series needs more rows than its share of max_rows (10k series of 3000
    # points would otherwise build 30M feature rows to keep 20k of them)
    most = max(spec.max_rows // len(hist), 1) if spec.scope == "rule" else None
    rows = [_series_rows(spec, norm, i, ts, v, most) for i, (ts, v) in enumerate(hist)]
    models, calibrators, bands, spreads, total = [], [], [], [], 0
    groups = [list(range(len(rows)))] if spec.scope == "rule" else [[i] for i in range(len(rows))]
    for group in groups:
        X = np.concatenate([rows[i][0] for i in group])
        resid = np.concatenate([rows[i][3] for i in group])
        streams = np.concatenate([rows[i][1] for i in group]) if MODELS[spec.model].kind == STREAM else None
        finite = np.isfinite(resid)
        X, resid = X[finite], resid[finite]
        if streams is not None:
            streams = streams[finite]
        if len(X) > spec.max_rows:  # keep an even spread (the newest row always)
            pick = np.unique(np.linspace(0, len(X) - 1, spec.max_rows).round().astype(np.int64))
            X, resid = X[pick], resid[pick]
            streams = streams[pick] if streams is not None else None
        model, train = _fit_one(spec, X, streams)
        models.append(model)
        calibrators.append(Calibrator.fit(train))
        bands.append(float(np.quantile(np.abs(resid), spec.threshold)) if len(resid) else np.nan)
        spreads.append(np.maximum(np.median(np.abs(X), axis=0), 1e-3) if len(X) else np.ones(X.shape[1]))
        total += len(X)
    return AnomalyModel(spec, norm, models, calibrators, np.asarray(bands), now,
                        time.perf_counter() - started, total, int(getattr(data, "excluded", 0)),
                        np.asarray(spreads))


WHY = {  # feature -> (when high, when low): what made a point stand out, for the explanation
    "level": ("an unusually high level", "an unusually low level"),
    "residual": ("far above the usual level", "far below the usual level"),
    "change": ("a sudden rise from the previous point", "a sudden drop from the previous point"),
    "deviation": ("a jump up from the recent points", "a jump down from the recent points"),
    "shift": ("the last points are high as a group", "the last points are low as a group"),
    "volatility": ("unusually jumpy", "unusually calm"),
}


def why(am: AnomalyModel, X: np.ndarray, which: np.ndarray) -> list[str]:
    """For each row, the feature furthest from its typical size, as a short phrase."""
    if am.feature_spread is None or not len(X):
        return [""] * len(X)
    ratio = np.abs(X) / am.feature_spread[which]
    top = np.argmax(ratio, axis=1)
    names = list(am.spec.features) + [f"lag{k + 1}" for k in range(am.spec.lags)]
    out = []
    for row, col in zip(X, top):
        name = names[col]
        if name in WHY:
            out.append(WHY[name][0 if row[col] >= 0 else 1])
        else:
            out.append(f"the point {name[3:]} back was {'high' if row[col] >= 0 else 'low'}")
    return out


def raw_scores(am: AnomalyModel, X: np.ndarray, windows: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Raw scores of feature rows X, row j by model `which[j]`, in as few calls as allowed."""
    info = MODELS[am.spec.model]
    out = np.empty(len(X))
    if info.univariate:
        X = X[:, :1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in np.unique(which):
            sel = np.flatnonzero(which == m)
            model = am.models[m]
            if info.kind == STREAM:
                out[sel] = stream_scores(model, windows[sel])
            elif info.kind == ROWWISE:  # each row alone: its score must not depend on the others
                out[sel] = [model.decision_function(X[j:j + 1])[0] for j in sel]
            else:
                out[sel] = model.decision_function(X[sel])
    return out


def calibrated(am: AnomalyModel, raw: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Calibrated scores in [0, 1] (each row by the calibrator of its model)."""
    if len(am.calibrators) == 1:
        return am.calibrators[0](raw)
    out = np.empty(len(raw))
    for m in np.unique(which):
        sel = which == m
        out[sel] = am.calibrators[m](raw[sel])
    return out
