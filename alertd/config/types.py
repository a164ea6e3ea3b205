"""The validated config: frozen objects built by `alertd.config.load_config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..matchers import Selector
from .http import HttpConfig
from .routing import InhibitRule, ReceiverSettings, RouteConfig
from .shards import Shard
from .time_intervals import TimeIntervalSpec


@dataclass(frozen=True)
class FlapSettings:
    """A rule's `flapping:` settings; `flapping: false` turns detection off.

    `interval` is not a key: the loader sets it to the data time between two polls of the
    rule's source (its `every`, or what the source's `data_interval` says), so that
    evaluations missed while alertd was down (or its source failed) count as unchanged
    ones, not as if the changes before and after the gap were neighbours.
    """

    enabled: bool = True
    window: int = 21
    low: float = 10.0
    high: float = 20.0
    interval: float | None = field(default=None, metadata={"derived": True})

    def check(self):
        if not 3 <= self.window <= 60:
            raise ValueError("flapping.window must be between 3 and 60 evaluations")
        if not 0 < self.low < self.high <= 100:
            raise ValueError(f"flapping needs 0 < low < high <= 100 (percent); got low {self.low:g} "
                             f"and high {self.high:g}")


@dataclass(frozen=True)
class PostedAlertsConfig:
    """`posted_alerts:` how alerts posted to the Alertmanager API (Prometheus, amtool) are
    kept: `resolve_timeout` ends an alert posted without `endsAt` this long after its last
    post (Alertmanager's `global.resolve_timeout`); `flapping` as a rule's."""

    resolve_timeout: float = 300.0
    flapping: FlapSettings = FlapSettings()


@dataclass(frozen=True)
class SourceConfig:
    """A named source: its plugin type, schedule and validated plugin params."""

    name: str
    type: str
    every: float | None
    cron: str | None
    jitter: float
    timeout: float
    backfill: bool
    params: Any


@dataclass(frozen=True)
class DetectorConfig:
    """A detector type and its validated params (`cls`: the plugin class, for nested ones)."""

    type: str
    params: Any
    cls: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RuleConfig:
    """A rule: which series of which source, scored by which detector, and alert timing.

    `keep_firing_for` keeps a firing incident open this long after its last anomalous point;
    `no_data` says what a failed or empty poll means for the rule's series; `flapping` holds
    back fire/resolve churn (see alertd/incidents/flapping.py).
    """

    name: str
    source: str
    series: Selector
    detector: DetectorConfig
    for_: float
    clear_for: float
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    keep_firing_for: float = 0.0
    no_data: str = "keep_state"
    flapping: FlapSettings = FlapSettings()


@dataclass(frozen=True)
class NotifierConfig:
    """One integration of a receiver; `enabled` is False when its `if_env` is unset."""

    type: str
    params: Any
    enabled: bool = True
    send_resolved: bool = True


@dataclass(frozen=True)
class Config:
    """The whole validated config. `secrets` are values never to be printed or logged."""

    path: str
    store: str
    plugin_dirs: tuple[str, ...]
    retention: float
    sources: dict[str, SourceConfig]
    rules: tuple[RuleConfig, ...]
    routes: RouteConfig
    receivers: dict[str, tuple[NotifierConfig, ...]]
    secrets: frozenset[str] = frozenset()
    receiver_settings: dict[str, ReceiverSettings] = field(default_factory=dict)
    inhibit_rules: tuple[InhibitRule, ...] = ()
    time_intervals: dict[str, tuple[TimeIntervalSpec, ...]] = field(default_factory=dict)
    http: HttpConfig = HttpConfig()
    shutdown_timeout: float = 10.0
    shard: Shard | None = None  # this instance's shard (alertd/config/shards.py); None runs everything
    all_rules: tuple[str, ...] = ()  # with a shard applied: every rule name of the file
    detector_timeout: float = 10.0  # a score call past this is abandoned (alertd/engine/scoring.py)
    posted_alerts: PostedAlertsConfig = PostedAlertsConfig()
    warnings: tuple[str, ...] = ()  # "file:line: key: sentence": valid, but worth changing
    retention_given: bool = True  # False: chosen from what the rules read (alertd/config/history.py)
    history_retention: float = 30 * 86400.0  # resolved incidents, sent notices, expired silences (store/history_retention.py)

    def delivery(self, receiver: str) -> ReceiverSettings:
        """The delivery settings of a receiver (defaults when it has none)."""
        return self.receiver_settings.get(receiver) or ReceiverSettings()

    @property
    def base_dir(self) -> Path:
        return Path(self.path).resolve().parent

    def store_path(self) -> Path:
        path = Path(self.store)
        return path if path.is_absolute() else self.base_dir / path
