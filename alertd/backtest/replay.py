"""Replay a series through a rule exactly as the daemon runs it, and score the result.

`replay(rule, registry, ts, values)` feeds the points one tick at a time through a real
`Engine` (in-memory store, alert tracker, router) with a simulated clock that follows the
data, and a `Trainer` that fits inline whenever the daemon's trainer would submit a fit: the
same code path as `alertd run`, causal by construction, and deterministic (the clock stands
still while a model is fitted, as if fits were instant). Every row gets a verdict: the
detector's status and calibrated score, or SKIPPED when the engine dropped the point (not a
number, repeated or out-of-order timestamp).

A row is a *detection* when an anomaly starts there (ANOMALOUS after a normal verdict): what
would page someone. `nab_scores` gives those rows their score and every other row 0, the
`anomaly_score` column NAB scores.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..clock import FakeClock
from ..config.load import Config, DetectorConfig, RuleConfig, SourceConfig
from ..config.routing import RouteConfig
from ..config.schema import parse_params
from ..config.types import FlapSettings
from ..detect.surprise_run import events, quiet_rows
from ..engine.tick import Engine
from ..engine.training import Trainer
from ..matchers import Selector
from ..metrics import Metrics
from ..model import Sample, Status, Verdict, make_labels, series_key
from ..store import Store

SOURCE = "backtest"
MAX_FORECASTS = 200  # forecasts kept for a plot (where warnings or anomalies start)


@dataclass
class Replay:
    """Per-row results of a replay (arrays of the input's length)."""

    ts: np.ndarray
    values: np.ndarray
    score: np.ndarray
    status: np.ndarray  # int8 Status; SKIPPED for rows the engine dropped
    threshold: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    reasons: list[str]  # the explanation of anomalous rows ("" elsewhere)
    incidents: list  # the incident transitions the rule would have caused (with for/clear_for)
    fits: int
    seconds: float
    cooldown: int = 0  # points: a start this close to the previous detection is the same event
    quiet: int | None = None  # rows: detections are score events (see `onsets`)
    # Forecast rules: when each row's warning expected the line to be crossed (NaN: no warning),
    # and the detector's forecast (Detector.forecast) at the rows where a warning or an
    # anomaly started, and after the last row: [(row, view)] for plots.
    crossing_at: np.ndarray | None = None
    forecasts: list = dataclasses.field(default_factory=list)

    @property
    def onsets(self) -> np.ndarray:
        """Detections: rows where an anomaly starts (ANOMALOUS after a normal verdict), at
        least `cooldown` rows after the previous detection. For a detector with a cooldown in
        time (`surprise`): rows where the score reaches the threshold after `quiet` rows below
        it (what its backtests and cross-validation score)."""
        if self.quiet is not None:
            judged = (self.status == Status.OK) | (self.status == Status.ANOMALOUS)
            thr = self.threshold[np.isfinite(self.threshold)]
            if not len(thr):
                return np.zeros(len(self.status), dtype=bool)
            return events(np.where(judged, np.nan_to_num(self.score), 0.0), float(np.median(thr)), self.quiet)
        anomalous = self.status == Status.ANOMALOUS
        judged = (self.status == Status.OK) | anomalous
        out = np.zeros(len(anomalous), dtype=bool)
        last_state, last_onset = False, -np.inf
        for i in np.flatnonzero(judged):  # the previous *judged* row decides
            if anomalous[i] and not last_state and i - last_onset >= self.cooldown:
                out[i], last_onset = True, i
            last_state = anomalous[i]
        return out

    def nab_scores(self) -> np.ndarray:
        """The NAB `anomaly_score` column: the score where an anomaly starts, else 0."""
        return np.where(self.onsets, np.nan_to_num(self.score), 0.0)


def default_rule(registry, *, threshold: float | None = None) -> RuleConfig:
    """The rule backtests use without `--rule`: the built-in default detector (`surprise`)
    with its defaults; every verdict counts at once (no `for`, no `clear_for`, no flap
    hold), as NAB scores each row."""
    cls = registry.get("detector", "surprise")
    params = parse_params(cls.Params, {} if threshold is None else {"threshold": threshold})
    return RuleConfig("default_anomaly", SOURCE, Selector("value"), DetectorConfig("surprise", params),
                      0.0, 0.0, "warning", {}, {}, flapping=FlapSettings(enabled=False))


def with_threshold(rule: RuleConfig, threshold: float) -> RuleConfig:
    """The rule with its detector's `threshold` replaced (ValueError if it has none)."""
    params = rule.detector.params
    if not any(f.name == "threshold" for f in dataclasses.fields(params)):
        raise ValueError(f'the detector of rule "{rule.name}" ({rule.detector.type}) has no threshold to set')
    params = dataclasses.replace(params, threshold=float(threshold))
    check = getattr(params, "check", None)
    if callable(check):
        check()
    return dataclasses.replace(rule, detector=DetectorConfig(rule.detector.type, params))


def _series_of(rule: RuleConfig) -> tuple[str, tuple]:
    """A metric name and labels the rule's selector matches (equality matchers only)."""
    name = rule.series.name or "value"
    labels = make_labels({m.name: m.value for m in rule.series.matchers if m.op == "="})
    return name, labels


def replay(rule: RuleConfig, registry, ts, values, *, progress=None, log=None) -> Replay:
    """Replay (ts, values) through `rule` as the daemon would; see the module docstring."""
    started = time.perf_counter()
    ts, values = np.asarray(ts, dtype=float), np.asarray(values, dtype=float)
    n = len(ts)
    name, labels = _series_of(rule)
    rule = dataclasses.replace(rule, source=SOURCE, series=Selector(name, ()))
    config = Config("<backtest>", ":memory:", (), 0.0,
                    {SOURCE: SourceConfig(SOURCE, "backtest", 60.0, None, 0.0, 30.0, False, None)},
                    (rule,), RouteConfig("none", (), False, ()), {})
    clock = FakeClock(float(ts[0]) if n else 0.0)
    log = log or _quiet_log()
    store = Store(":memory:")
    engine = Engine(config, registry, store, clock, Metrics(), log, integrations={})
    engine.scorer.timeout = None  # a replay waits for every score anyway: no thread hop per row
    trainer = Trainer(engine, store, clock, log, inline=True)
    trainer.start()
    out = {k: np.full(n, np.nan) for k in ("score", "threshold", "lower", "upper")}
    status = np.full(n, Status.SKIPPED, dtype=np.int8)
    reasons = [""] * n
    crossing = np.full(n, np.nan)
    forecasts: list = []
    current = {"row": -1, "last": Status.OK}

    def record(rt, batch, scores):
        i = current["row"]
        status[i] = scores.status[0]
        for k in out:
            out[k][i] = getattr(scores, k)[0]
        if scores.crossing_at is not None:
            crossing[i] = scores.crossing_at[0]
        if scores.status[0] == Status.ANOMALOUS:
            reasons[i] = Verdict.from_scores(rule.name, batch, scores, 0, name).reason
            if current["last"] != Status.ANOMALOUS and len(forecasts) < MAX_FORECASTS:
                view = rt.detector.forecast(batch.keys[0])
                if view is not None:
                    forecasts.append((i, view))
        if scores.status[0] in (Status.OK, Status.ANOMALOUS):
            current["last"] = scores.status[0]

    engine.observers.append(record)
    transitions = []
    step = max(n // 200, 1)
    for i in range(n):
        current["row"] = i
        if np.isfinite(ts[i]):
            clock.set(max(clock.now(), ts[i]))
        result = engine.ingest(SOURCE, [Sample(name, labels, float(ts[i]), float(values[i]))])
        transitions.extend(result.transitions)
        trainer.poll()
        if progress is not None and (i % step == 0 or i == n - 1):
            progress(i + 1, n)
    fits = sum(st.fits for st in trainer.rules)
    det = engine.rules_by_source[SOURCE][0].detector
    final = det.forecast(series_key(name, labels)) if n else None
    if final is not None:
        forecasts.append((n - 1, final))
    store.close()
    quiet = quiet_rows(ts, det.cooldown_rows, det.cooldown_seconds) if hasattr(det, "cooldown_seconds") else None
    return Replay(ts, values, out["score"], status, out["threshold"], out["lower"], out["upper"],
                  reasons, transitions, fits, time.perf_counter() - started,
                  int(getattr(det, "cooldown", 0) or 0), quiet,
                  crossing if np.isfinite(crossing).any() or _forecasts(rule) else None, forecasts)


def _forecasts(rule: RuleConfig) -> bool:
    """Whether the rule warns ahead (its detector has a will_cross line)."""
    return getattr(rule.detector.params, "will_cross", None) is not None


def _quiet_log():
    """A logger that drops everything (a replay would otherwise log every warm-up and fit)."""
    return _Null()


class _Null:
    """A structlog-shaped logger that discards events."""

    def __getattr__(self, name):
        return lambda *a, **k: None

    def bind(self, **kw):
        return self


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal)."""

    def __init__(self, label: str, stream=None, enabled: bool | None = None, unit: str = "rows"):
        self.label, self.stream, self.unit = label, stream or sys.stderr, unit
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        frac = done / max(total, 1)
        bar = "#" * int(30 * frac)
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{self.label} [{bar:<30}] {done}/{total} {self.unit}, {rate:,.0f} {self.unit}/s{end}")
        self.stream.flush()


# -- quality over labelled windows -------------------------------------------------------------
def window_metrics(onsets: np.ndarray, windows) -> dict:
    """Precision, recall and F1 over labelled windows (row ranges, inclusive).

    Recall: windows with at least one detection; precision: detections inside a window.
    """
    det = np.flatnonzero(onsets)
    inside = np.zeros(len(det), dtype=bool)
    found = 0
    for left, right in windows:
        hit = (det >= left) & (det <= right)
        inside |= hit
        found += bool(hit.any())
    precision = float(inside.mean()) if len(det) else (1.0 if not windows else 0.0)
    recall = found / len(windows) if windows else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"detections": int(len(det)), "windows": len(windows), "windows_found": found,
            "precision": precision, "recall": recall, "f1": f1}
