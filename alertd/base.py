"""Base classes for the three plugin kinds: Source, Detector and Notifier.

Each plugin class sets `type_name` (what users write as `type:`) and a frozen dataclass
`Params` declaring its parameters with type hints and defaults; the config loader validates
user YAML against `Params` with the same errors as the core keys (unknown key with the
nearest valid one, wrong type, bad duration). Optionally `Params.check(self)` raises
`ValueError("one sentence")` for rules that span fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, ClassVar

import numpy as np

from .model import Batch, Notification, Sample, Scores


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
    """

    #: True where a poll with nothing is normal (samples exist only when events happen:
    #: pushes, matching log lines); the daemon then does not count it as a failed poll.
    empty_ok: ClassVar[bool] = False

    async def collect(self) -> list[Sample]:
        """Return the samples of one poll. Timestamps are epoch seconds."""
        raise NotImplementedError

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

    async def close(self) -> None:
        """Release connections, files or servers."""


class Detector(Plugin):
    """Scores the current point of every series of a rule, causally and in one batch.

    `window` is how many earlier points `score` wants in `Batch.history`; `min_history` is
    how many points a series needs before it gets a verdict (warm-up). `score` must only
    look at the batch (and state learned from earlier batches), never at later points.
    """

    window: int = 0
    min_history: int = 0

    def score(self, batch: Batch) -> Scores:
        """Return `Scores` for every series of `batch` (status, score in [0,1], range)."""
        raise NotImplementedError

    def warming_up(self, batch: Batch) -> np.ndarray:
        """Boolean mask of series that have not yet seen `min_history` points."""
        return batch.seen < max(self.min_history, 1)


class Notifier(Plugin):
    """Delivers a notification to one integration.

    Override `send`. Raise `RetryableError` for failures worth retrying (connection refused,
    timeouts, 5xx, 429 with an optional `retry_after`), `PermanentError` for ones that will
    never succeed (4xx, bad address). Never put a secret into an exception message or log.
    """

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
