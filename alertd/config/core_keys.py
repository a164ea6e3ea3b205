"""The sections of `alertd.yaml` as users write them: the core keys of each, with their
defaults (plugin keys are checked apart, against each plugin's `Params`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .schema import Duration


@dataclass(frozen=True)
class SourceCore:
    type: str
    every: Duration | None = None
    cron: str | None = None
    jitter: Duration = Duration(0)
    timeout: Duration = Duration(30)
    backfill: bool = True


@dataclass(frozen=True)
class DetectorCore:
    type: str


@dataclass(frozen=True)
class NotifierCore:
    type: str
    if_env: str | None = None
    send_resolved: bool = True


@dataclass(frozen=True)
class RuleCore:
    name: str
    source: str
    series: str
    detector: Any
    for_: Duration = field(default=Duration(0), metadata={"key": "for"})
    clear_for: Duration = Duration(0)
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    keep_firing_for: Duration = Duration(0)
    no_data: Literal["alerting", "ok", "keep_state"] = "keep_state"
    flapping: Any = None


@dataclass(frozen=True)
class TopCore:
    store: str = "alertd.db"
    plugin_dirs: list[str] = ("plugins",)
    retention: Duration | None = None  # None: what the rules read, at least 7d (config/history.py)
    history_retention: Duration = Duration(30 * 86400)  # resolved incidents, sent notices (store/history_retention.py)
    shutdown_timeout: Duration = Duration(10)
    detector_timeout: Duration = Duration(10)
    shard: Any = None
    http: Any = None
    sources: dict[str, Any] = field(default_factory=dict)
    rules: list[Any] = field(default_factory=list)
    routes: Any = None
    receivers: dict[str, Any] = field(default_factory=dict)
    inhibit_rules: list[Any] = field(default_factory=list)
    time_intervals: list[Any] = field(default_factory=list)
    posted_alerts: Any = None


@dataclass(frozen=True)
class PostedAlertsCore:
    resolve_timeout: Duration = Duration(300)
    flapping: Any = None
