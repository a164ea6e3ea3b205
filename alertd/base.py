"""Base classes for the three plugin kinds: Source, Detector and Notifier.

Each plugin class sets `type_name` (what users write as `type:`) and a frozen dataclass
`Params` declaring its parameters with type hints and defaults; the config loader validates
user YAML against `Params` with the same errors as the core keys (unknown key with the
nearest valid one, wrong type, bad duration). Optionally `Params.check(self)` raises
`ValueError("one sentence")` for rules that span fields.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, ClassVar

import numpy as np

from ._compat import loads
from .model import Batch, Labels, Notification, Sample, Scores
from .model_blob import Pieces, dump_pieces

FUTURE_TOLERANCE = 300.0  # seconds a sample may be ahead of the clock (hosts' clocks drift)


@dataclass(frozen=True)
class NoParams:
    """Params of a plugin that takes none."""


@dataclass(frozen=True)
class PluginContext:
    """What the daemon hands a plugin instance besides its params.

    `name` is the instance's name in the config (source name, rule name or receiver name);
    `now` is the clock (epoch seconds) that tests and backtests control; `http` is the
    shared `httpx.AsyncClient` (None outside the daemon); `store` is the Store (or None);
    `log` is a bound structlog logger; `run_blocking` runs a function in a worker thread.
    For sources, `timeout` is the source's `timeout` (the budget of one poll, seconds),
    `interval` its `every` (None for cron schedules), and `metrics` the daemon's
    `alertd.metrics.Metrics` (None outside the daemon).
    """

    name: str
    now: Callable[[], float]
    log: object = None
    http: object = None
    store: object = None
    run_blocking: Callable[..., Awaitable] | None = None
    timeout: float | None = None
    interval: float | None = None
    metrics: object = None


class Plugin:
    """Common shape of plugin classes."""

    type_name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams

    def __init__(self, params, context: PluginContext):
        self.params = params
        self.context = context


class Source(Plugin):
    """Collects samples from somewhere, once per scheduled poll.

    Override `collect`. Raise `SourceError` (or any exception) when the other end misbehaves;
    the engine logs it with the source name, counts it and marks the source's series as
    no-data, and the daemon goes on.

    A source that consumes something (a read position, a queue of pushed samples) must not
    consume it in `collect`: the tick that stores the samples can still fail (store full,
    locked, out of descriptors) and roll back. `commit` persists progress inside the tick's
    transaction; `committed` runs once that transaction has committed, and is where memory
    moves on. Without it, the next `collect` hands out the same data again, with what came since.
    """

    #: True where a poll with nothing is normal (samples exist only when events happen:
    #: pushes, matching log lines); the daemon then does not count it as a failed poll.
    empty_ok: ClassVar[bool] = False
    #: How many seconds a sample may be stamped ahead of the daemon's clock; later points are
    #: refused (`future_timestamp`). None for a source with a clock of its own (a simulator,
    #: a replay at speed), whose timestamps run ahead by design.
    future_tolerance: ClassVar[float | None] = FUTURE_TOLERANCE

    async def collect(self) -> list[Sample]:
        """Return the samples of one poll. Timestamps are epoch seconds."""
        raise NotImplementedError

    @classmethod
    def data_interval(cls, params, every: float | None) -> float | None:
        """Seconds of data time between two points of a series polled every `every` seconds
        (None: unknown, e.g. a cron schedule). The config checks detector settings against
        it (an early warning's horizon must be longer); a source whose data runs on a clock
        of its own (a fast simulator, a replay) says so here."""
        return every

    async def start(self) -> None:
        """Open servers or files before the first poll; raise `SourceError` if impossible.

        The daemon calls it once after building the source; a source that cannot start
        (a port already taken) stops the daemon's start with that one sentence.
        """

    async def backfill(self, start: float, end: float) -> list[Sample]:
        """Optionally return history in [start, end) to warm detectors up.

        Called on first start and again when rules are added (once per rule). `start`/`end` are daemon-clock epoch seconds (`context.now()`); a source with a clock
        of its own (a simulator, a replay) maps them onto it. Samples must be in time order
        per series and older than what the next `collect()` returns.
        """
        return []

    def commit(self) -> None:
        """Persist progress (read positions) once the last poll's samples are stored.

        The daemon calls it inside the transaction that stores the samples of the last
        `collect()`, so a crash either keeps both or neither: a restart neither re-reads
        nor skips. It is also called after a poll that returned nothing.
        """

    def committed(self) -> None:
        """Forget what the last `collect()` handed over: its tick has committed.

        Called after the transaction in which `commit()` ran, never when it rolled back; a
        source moves its in-memory position or empties its queue here, so a failed tick
        loses nothing (the next `collect()` returns the same data again).
        """

    async def close(self) -> None:
        """Release connections, files or servers."""


@dataclass(frozen=True)
class TrainingPlan:
    """How a trainable detector wants to be fitted.

    `points`: up to this many latest points per series are read from the store;
    `every`: refit after this many seconds of the daemon clock (None: not by time);
    `every_points`: refit once a series has this many new points (None: not by count);
    `span`: only points within this many seconds (data time) of a series' latest point;
    `min_span`: the least history (seconds of data time) a fit can work with at all (a weekly
    baseline needs two weeks, say); None: `min_history` points are enough;
    `history_keys`: a catch-up of these series alone (None: every series of the rule). The fit
    reads only their history (each of them is in the training set, with no points when the
    store has none) and returns a model of them alone, which `install` must merge into the
    model in use. The trainer does not save such a partial model; it fits again at once while
    the plan names other series, then once with `history_keys` None, whose model it saves.
    A detector whose state is its model (`surprise`) replays a large back-log this way in
    slices of series, so memory follows the slice, not the rule.

    The daemon back-fills what the plan reads (`span`, or `points` at the source's interval)
    and keeps that much in the store: `retention` is chosen to cover it when not set, and
    `alertd validate` says what to change when a set one is too short (alertd/config/history.py).
    """

    points: int
    every: float | None = None
    every_points: int | None = None
    span: float | None = None
    min_span: float | None = None
    history_keys: frozenset[str] | None = None


@dataclass(frozen=True)
class RuleSetting:
    """What a rule's detector params are checked against besides themselves: the seconds of
    data time between two points of its source (None: unknown) and how long the store keeps
    samples (the config's `retention`)."""

    interval: float | None
    retention: float


@dataclass(frozen=True)
class TrainingSet:
    """History for `Detector.fit`: per series, its points oldest first, with the points that
    fell inside firing incidents of the rule already left out (an outage must not become
    the new normal). `now` is the daemon clock when the fit started."""

    keys: list[str]
    labels: list[Labels]
    ts: list[np.ndarray]
    values: list[np.ndarray]
    now: float = 0.0
    excluded: int = 0  # points left out because they fell inside firing incidents

    def __len__(self) -> int:
        return len(self.keys)


class Detector(Plugin):
    """Scores the current point of every series of a rule, causally and in one batch.

    `window` is how many earlier points `score` wants in `Batch.history`; `min_history` is
    how many points a series needs before it gets a verdict (warm-up). `score` must only
    look at the batch (and state learned from earlier batches), never at later points.

    Trainable detectors (`trainable = True`) learn a model from stored history beside the
    hot path: the daemon's trainer calls `fit(TrainingSet)` in a worker thread on the
    schedule of `training_plan()` (and whenever `fit_wanted` is set), then `install(model)`
    on the event loop, which swaps the model in atomically. Models are persisted with
    `dump_model`/`load_model` under `model_version()`, so a restart reuses them; a changed
    version (other params) forces a refit.

    A detector whose fit is heavy sets `fit_in_process = True`: the trainer then runs the fit
    in the fit worker process (alertd/detect/fit_worker.py), where the training data is read
    from the store and `fit` called on a copy of the detector built from the same params (its
    context has the rule's `name` and a `now` of the fit's start, nothing else); only the
    model comes back, through the process pool's pipe. So `fit` must depend on nothing but
    `params` and the data, and the model must pickle. Where the store is in memory (tests,
    replays) the fit runs in the trainer's thread as usual.
    """

    window: int = 0
    min_history: int = 0
    trainable: ClassVar[bool] = False
    fit_in_process: ClassVar[bool] = False  # fit in the worker process, which reads the history itself
    fit_wanted: bool = False  # set by `score` when a series is ready but not covered by a model
    checks_absence: ClassVar[bool] = False  # `absent` wants calls for series that sent nothing
    # a big poll is scored in slices (urgent series first; alertd/engine/slices.py); a detector
    # that compares the series of one call with each other wants the whole poll in one call
    whole_poll: ClassVar[bool] = False

    def score(self, batch: Batch) -> Scores:
        """Return `Scores` for every series of `batch` (status, score in [0,1], range)."""
        raise NotImplementedError

    @classmethod
    def check_setting(cls, params, setting: RuleSetting) -> list[tuple[str, str]]:
        """Problems of `params` in the rule's setting, as (key, one sentence) pairs: the key
        is a dotted path in the detector's mapping ("will_cross.within"), where the config
        error is reported. A horizon shorter than the source's interval, say. None found: []."""
        return []

    def forecast(self, key: str) -> dict | None:
        """What the detector expects series `key` to do next, for pages, the API and plots:
        {"model", "ts", "mean", "lower", "upper", "line", "below", "crossing_at", ...} as
        plain lists and numbers; None for detectors that do not forecast."""
        return None

    def warming_up(self, batch: Batch) -> np.ndarray:
        """Boolean mask of series that have not yet seen `min_history` points."""
        return batch.seen < max(self.min_history, 1)

    # -- training (optional) -----------------------------------------------------------------
    def training_plan(self) -> TrainingPlan | None:
        """How much history to fit on and how often; None for detectors that learn nothing."""
        return None

    def fit(self, data: TrainingSet) -> Any:
        """Fit a model on `data` and return it. Runs in a worker thread: must not change
        `self` (the detector keeps scoring with its current model meanwhile)."""
        raise NotImplementedError

    def install(self, model: Any) -> None:
        """Start using `model` (returned by `fit` or `load_model`). Called on the event loop."""
        raise NotImplementedError

    def model_info(self) -> dict:
        """What the current model is (for logs and the status page); {} when untrained."""
        return {}

    def snapshot(self) -> Any:
        """The model the live state is, for a detector that learns at every point (its state
        is its model): the daemon saves it when it stops, so a restart resumes where it
        stopped, not at the last scheduled save; and a plan of `points=0` has the trainer
        save it on schedule without reading the store. Called on the event loop or in the
        trainer's thread (guard the state as `fit` does). None (the default): nothing beyond
        the last fit to save."""
        return None

    def model_version(self) -> str:
        """Identifies the detector's type and params: a stored model of another version is
        not reused. Override (and bump) when the model format changes."""
        text = f"{self.type_name}:{getattr(self, 'model_format', 1)}:{self.params!r}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def dump_model(self, model: Any) -> bytes:
        """Serialise a fitted model for the store (pickle by default).

        A detector that keeps both this and `load_model` as they are has its model stored in
        pieces instead (`stored_form`): its numpy arrays go into the store without a copy, so
        a model must not change once `fit` has returned it (state learnt while scoring lives
        in the detector, as `surprise`'s does). Overriding either hook stores these bytes."""
        return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)

    def load_model(self, blob: bytes) -> Any:
        """Deserialise a model written by `dump_model` (the store is the daemon's own file);
        classes pickled under an alertd module path of an older release are found at their
        new home (alertd/_compat.py), so an upgrade keeps every fitted model. Also reads a
        model stored in pieces (alertd/model_blob.py; `blob` is then a bytearray whose memory
        the model's arrays share)."""
        return loads(blob)

    def forget_series(self, keys: list[str]) -> None:
        """The daemon dropped these series (silent for longer than `retention`): forget any
        per-series state kept for them, so memory follows the series that exist. Optional."""

    # -- absence (optional) ------------------------------------------------------------------
    def score_absent(self, batch: Batch, now: float) -> Scores:
        """Judge series that sent nothing in a poll (`checks_absence` detectors only).

        `batch.values` are NaN, `batch.ts` is `now` (daemon clock) and `batch.history_ts`
        holds the last points that did arrive.
        """
        return Scores.empty(len(batch))


def stored_form(detector: Detector, model: Any) -> bytes | Pieces:
    """What the trainer stores for `model`: pickled in pieces (out-of-band buffers: a model's
    arrays are not copied; alertd/model_blob.py) when the detector keeps the default
    `dump_model` and `load_model`, else the bytes of its own `dump_model`, as given."""
    cls = type(detector)
    if cls.dump_model is Detector.dump_model and cls.load_model is Detector.load_model:
        return dump_pieces(model)
    return detector.dump_model(model)


class Notifier(Plugin):
    """Delivers a notification to one integration.

    Override `send`. Raise `RetryableError` for failures worth retrying (connection refused,
    timeouts, 5xx, 429 with an optional `retry_after`), `PermanentError` for ones that will
    never succeed (4xx, bad address). Never put a secret into an exception message or log.

    Set `sends_state = True` when the receiver keeps the state of alerts rather than a
    stream of messages (Alertmanager): then notices of one group that are due together
    (retries after an outage) are sent as one, holding each alert's latest state, so an
    old notice never sets an alert back.
    """

    sends_state: bool = False
    # the longest wait between retries (None: the daemon's, 5 minutes); a receiver that takes
    # the same notice any number of times can be retried sooner, so it catches up soon after
    # an outage
    max_retry_delay: float | None = None

    async def send(self, notification: Notification) -> str:
        """Send; return a short description of the receiver's answer (e.g. "200 ok")."""
        raise NotImplementedError

    def preview(self, notification: Notification) -> str:
        """What `send` would deliver, as text (`alertd notify-test` prints it); optional."""
        return ""

    async def close(self) -> None:
        """Release connections."""


class SourceError(Exception):
    """A source could not produce samples; the message says what and shows an excerpt.

    `reason` is a short snake_case word for the `alertd_source_errors_total{reason}`
    counter: "connect", "timeout", "http_status", "bad_payload", "too_large", ...
    """

    def __init__(self, message: str, reason: str = "error"):
        super().__init__(message)
        self.reason = reason


class DeliveryError(Exception):
    """A notification was not delivered."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RetryableError(DeliveryError):
    """Worth retrying later (network error, 5xx, 429)."""


class PermanentError(DeliveryError):
    """Will never succeed as configured (4xx other than 429, rejected address)."""

    retryable = False
