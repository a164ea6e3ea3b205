"""The `surprise` detector (the default anomaly detector): how surprising is this point, given
the series' recent level, its time of day and its hour of the week?

The score is computed by `alertd.detect.surprise` (causal, one batched update per tick for
all series of a rule, learning as it goes; docs/detectors.md). A point is ANOMALOUS when its
score reaches `threshold` and its value lies outside the expected range on the side the rule
watches; once anomalous, it stays so while the value is outside the range, so an incident
resolves once the values are back inside it for `clear_for`.

State: per series a row of scalars and profile slots. It learns from every scored point; a
series that arrives with stored history (a back-fill, a new rule) first has that history
replayed by a fit beside the hot path (WARMING_UP until then), at most `REPLAY_POINTS` points
of history at a time (a start with a long back-log of many series replays them slice by slice,
so memory follows the slice); the state is saved with the rule's model every `retrain`, so a
restart resumes from the last save.
"""

from __future__ import annotations

import itertools
import math
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

import numpy as np

from alertd import hookimpl
from alertd.base import Detector, TrainingPlan, TrainingSet
from alertd.config.schema import Duration, ParamError
from alertd.detect.surprise import FIELDS, FORMAT, Core, SurpriseState
from alertd.model import Batch, Scores, Status

REPLAY_POINTS = 5_000_000  # points of history one catch-up fit reads (about 200 MiB while it runs: bench/catch_up.py)
DEFAULT_THRESHOLD = 0.1814  # the median of the nine folds' thresholds (docs/detectors.md, "Cross-validated")
BASIS = ("from the recent level", "for {hm} UTC", "for {dow} {hm} UTC")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class SavedState:
    """The persisted state: per series key, its row of scalars and profile slots."""

    keys: list[str]
    st: np.ndarray
    profile: np.ndarray
    fields: tuple = FIELDS
    format: int = FORMAT
    fitted_at: float = 0.0
    replayed: int = 0  # series whose stored history this fit replayed
    caught_up: tuple = ()  # series this fit read the history of (some had none: nothing to replay)


class Surprise(Detector):
    """Seasonal surprise: level, time of day and hour of week must all find a point unusual."""

    type_name = "surprise"
    trainable = True
    model_format = FORMAT

    @dataclass(frozen=True)
    class Params:
        """`threshold` on the calibrated score; `direction`; the metric's domain `min`/`max`
        (default: learned); `cooldown` between two detections of a backtest; `short`: the
        halflife of the short mean of surprise, at most `short_points` points; `min_history`
        points before the first verdict; `train_points` of stored history replayed for a new
        series; `retrain`: how often the state is saved; `sustained`: the weight of the
        sustained-shift view (a one-sided CUSUM of the time-of-day error, `sustained_k`
        spreads allowed a point; 0: off)."""

        threshold: float = DEFAULT_THRESHOLD
        direction: Literal["both", "up", "down"] = "both"
        min: float | None = None
        max: float | None = None
        cooldown: Duration = Duration(7200)
        short: Duration = Duration(3600)
        short_points: int = 12
        min_history: int = 6
        train_points: int = 10080
        retrain: Duration = Duration(6 * 3600)
        sustained: float = 0.0
        sustained_k: float = 1.0

        def check(self) -> None:
            if not 0 < self.threshold < 1:
                raise ParamError("threshold", f"threshold is a score between 0 and 1 (default {DEFAULT_THRESHOLD}), "
                                 f"got {self.threshold:g}")
            if self.min is not None and self.max is not None and self.min >= self.max:
                raise ParamError("min", f"min ({self.min:g}) must be below max ({self.max:g})")
            if self.min_history < 1:
                raise ParamError("min_history", f"min_history must be at least 1 point, got {self.min_history}")
            if self.train_points < self.min_history:
                raise ParamError("train_points", f"train_points ({self.train_points}) must be at least "
                                 f"min_history ({self.min_history})")
            if self.short <= 0 or self.short_points < 1:
                raise ParamError("short", "short must be a duration above 0s and short_points at least 1")
            if not 0 <= self.sustained <= 10 or not 0 < self.sustained_k <= 3:
                raise ParamError("sustained", f"sustained is a weight from 0 (off) to 10 and sustained_k an "
                                 f"allowance above 0 and at most 3 spreads, got {self.sustained:g} and "
                                 f"{self.sustained_k:g}")
            if self.retrain <= 0 or self.cooldown < 0:
                raise ParamError("retrain", "retrain must be a duration above 0s and cooldown not negative")

    def __init__(self, params, context):
        super().__init__(params, context)
        p = params
        self.core = core_of(p)
        self.state = SurpriseState(0, self.core)
        self.index: dict[str, int] = {}
        self.free: list[int] = []  # rows of forgotten series, reused by new ones
        self.pending: dict[str, None] = {}  # series whose stored history awaits a replay, in arrival order
        self.catch_up = True  # the next fit replays history (a start, new series)
        self.lock = threading.Lock()  # score and the fit's snapshot never overlap
        self.window = 0
        self.min_history = p.min_history
        self.bounds = (math.nan if p.min is None else float(p.min), math.nan if p.max is None else float(p.max))
        self.cooldown_rows, self.cooldown_seconds = 2, float(p.cooldown)  # detections: max of the two
        self._rows_of: tuple = (None, None)
        self._texts: dict = {}

    # -- state -----------------------------------------------------------------------------------
    def _rows(self, keys: list[str], seen: np.ndarray) -> np.ndarray:
        cached_keys, rows = self._rows_of
        if cached_keys is not None and (keys is cached_keys or keys == cached_keys):
            return rows
        new = [(k, s) for k, s in zip(keys, seen.tolist()) if k not in self.index]
        for k, s in new:
            self._add(k)
            if s > 1:  # it comes with stored history: replay it first
                self.pending[k] = None
                self.catch_up = True
        if new:
            self._grow()
        rows = np.fromiter((self.index[k] for k in keys), dtype=np.int64, count=len(keys))
        self._rows_of = (list(keys), rows)
        return rows

    def _add(self, key: str) -> None:
        """A row for a new series: a forgotten series' row (already reset), or the next one
        (the caller grows the state once for all it added: `_grow`)."""
        self.index[key] = self.free.pop() if self.free else len(self.index)  # (no free row: all in use)

    def _grow(self) -> None:
        self.state.grow(len(self.index) + len(self.free))

    def forget_series(self, keys: list[str]) -> None:
        """Series the daemon dropped: their rows are reset and reused by the next new series,
        so the state follows the series that exist (pods come and go)."""
        with self.lock:
            rows = [self.index.pop(k) for k in keys if k in self.index]
            for k in keys:
                self.pending.pop(k, None)
            if rows:
                self.state.reset(np.asarray(rows, dtype=np.int64))
                self.free.extend(rows)
                self._rows_of = (None, None)

    def training_plan(self) -> TrainingPlan:
        # Only a catch-up reads history, a slice of the waiting series at a time; a save reads
        # nothing (the state is the model).
        p = self.params
        if self.pending:
            with self.lock:
                slice_ = frozenset(itertools.islice(self.pending, max(1, REPLAY_POINTS // p.train_points)))
            if slice_:
                return TrainingPlan(points=p.train_points, every=p.retrain, history_keys=slice_)
        # no points: the trainer saves `snapshot()` without reading the store (a read of one
        # point of 100,000 series was 66 MB on top of the save's peak)
        return TrainingPlan(points=p.train_points if self.catch_up else 0, every=p.retrain)

    def fit(self, data: TrainingSet) -> SavedState:
        """Replay the history of series that need it (time order, as the daemon would have
        scored it), and snapshot the others' live state (under the lock)."""
        keys, st, prof = self._copy(data.keys)
        known = set(keys)
        caught_up = tuple(k for k in data.keys if k not in known)
        todo = [i for i, k in enumerate(data.keys) if k not in known and len(data.ts[i])]
        if todo:
            fresh = SurpriseState(len(todo), self.core)
            T = _stack([data.ts[i] for i in todo])
            V = _stack([data.values[i] for i in todo])
            for j in range(T.shape[1]):
                fresh.update(V[:, j], T[:, j])
            keys += [data.keys[i] for i in todo]
            st, prof = np.concatenate([st, fresh.st]), np.concatenate([prof, fresh.profile])
        return SavedState(keys, st, prof, fitted_at=data.now, replayed=len(todo), caught_up=caught_up)

    def _copy(self, keys) -> tuple[list[str], np.ndarray, np.ndarray]:
        """The live state of those of `keys` that are not awaiting a replay (under the lock)."""
        with self.lock:
            known = {k: self.index[k] for k in keys if k in self.index and k not in self.pending}
            rows = np.fromiter(known.values(), dtype=np.int64, count=len(known))
            return list(known), self.state.st[rows], self.state.profile[rows]  # (fancy indexing copies)

    def snapshot(self) -> SavedState | None:
        """The live state of every series, saved when the daemon stops."""
        if not self.index:
            return None
        keys, st, prof = self._copy(list(self.index))
        return SavedState(keys, st, prof, fitted_at=self.context.now())

    def install(self, model: SavedState | None) -> None:
        if model is None:
            return
        if tuple(model.fields) != FIELDS or model.format != FORMAT or model.profile.shape[1] != self.state.width:
            return  # another layout: the series warm up again
        with self.lock:
            for k in model.keys:
                if k not in self.index:
                    self._add(k)
            self._grow()
            n_col, count = FIELDS.index("n"), len(model.keys)
            rows = np.fromiter((self.index[k] for k in model.keys), dtype=np.int64, count=count)
            take = self.state.st[rows, n_col] < model.st[:, n_col]  # (vectorised: 100,000 series at a start)
            if self.pending:
                take |= np.fromiter((k in self.pending for k in model.keys), dtype=bool, count=count)
                for k in (*model.keys, *getattr(model, "caught_up", ())):  # (older saves: no caught_up)
                    self.pending.pop(k, None)
            self.state.st[rows[take]] = model.st[take]
            self.state.profile[rows[take]] = model.profile[take]
            self.catch_up = bool(self.pending)
            self._rows_of = (None, None)
            self.fit_wanted = False
        self._saved = model.fitted_at

    def model_info(self) -> dict:
        return {"series": len(self.index), "state_bytes_per_series": self.state.bytes_per_series(),
                "fitted_at": getattr(self, "_saved", 0.0), "awaiting_history": len(self.pending)}

    # -- scoring -----------------------------------------------------------------------------------
    def score(self, batch: Batch) -> Scores:
        p, n = self.params, len(batch)
        values = np.asarray(batch.values, dtype=float)
        ts = np.asarray(batch.ts, dtype=float)
        with self.lock:
            rows = self._rows(batch.keys, np.asarray(batch.seen))
            step = self.state.update(values, ts, rows, threshold=p.threshold, bounds=self.bounds)
        waiting = np.zeros(n, dtype=bool)
        if self.pending:
            waiting = np.fromiter((k in self.pending for k in batch.keys), dtype=bool, count=n)
            self.fit_wanted = True
        finite = np.isfinite(values)
        lo, hi = step.low, step.high
        with np.errstate(invalid="ignore"):  # outside the range on the side of the deviation
            outside = ((values < lo) & (step.side < 0)) | ((values > hi) & (step.side > 0))
        anomalous = outside & ((step.score >= p.threshold) | np.asarray(batch.was_anomalous, dtype=bool))
        status = np.where(anomalous, Status.ANOMALOUS, Status.OK).astype(np.int8)
        warm = step.warming_up | waiting
        status[warm] = Status.WARMING_UP
        status[~finite] = Status.SKIPPED
        judged = (status == Status.OK) | (status == Status.ANOMALOUS)
        # texts only where a verdict is shown: anomalous points and series that just were
        explain = judged & (anomalous | np.asarray(batch.was_anomalous, dtype=bool))
        context = self._context(ts, step.basis, step.side, values, lo, hi, explain)
        return Scores(status=status, score=np.where(judged, step.score, np.nan), threshold=np.full(n, p.threshold),
                      lower=np.where(judged & (p.direction != "up"), lo, np.nan),
                      upper=np.where(judged & (p.direction != "down"), hi, np.nan), context=context)

    def _context(self, ts, basis, side, values, lo, hi, judged) -> list[str]:
        """What the point was compared with ("for 14:00 UTC") and, outside the range, the side."""
        out = [""] * len(ts)
        cache = self._texts
        if len(cache) > 10_000:
            cache.clear()
        for i in np.flatnonzero(judged).tolist():
            b = int(basis[i])
            minute = int(ts[i] // 60) if b > 0 else 0
            text = cache.get((b, minute))
            if text is None:
                moment = datetime.fromtimestamp(minute * 60, timezone.utc)
                text = cache[(b, minute)] = BASIS[max(b, 0)].format(hm=f"{moment:%H:%M}", dow=_DAYS[moment.weekday()])
            if values[i] < lo[i]:
                text += ": below the expected range"
            elif values[i] > hi[i]:
                text += ": above the expected range"
            out[i] = text
        return out


def core_of(p) -> Core:
    """The core settings of the plugin's params."""
    return Core(direction=p.direction, min_points=p.min_history, short_sec=float(p.short),
                short_max_pts=float(p.short_points), sus_weight=float(p.sustained), sus_k=float(p.sustained_k))


def _stack(arrays: list[np.ndarray]) -> np.ndarray:
    """Rows of unequal length, NaN-padded on the right (a NaN leaves its series alone)."""
    out = np.full((len(arrays), max(len(a) for a in arrays)), np.nan)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out


@hookimpl
def register_detectors(register):
    register(Surprise)
