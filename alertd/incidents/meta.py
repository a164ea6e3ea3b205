"""Meta-incidents: alertd's own problems (a config reload that failed, ...) as incidents.

A meta-incident goes through the same alert state machine, store, router and outbox as any
rule's incident, so silences, routes and receivers apply to it. Its rule name starts with
`alertd_` (for example `alertd_config_reload_failed`), it fires at once (no `for`) and it is
resolved by the daemon when the problem is gone. Times are the daemon clock's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config.types import FlapSettings
from ..model import Status, Verdict, make_labels

CONFIG_RELOAD_FAILED = "alertd_config_reload_failed"


@dataclass(frozen=True)
class MetaRule:
    """The rule-like description of a meta-incident, as the alert tracker reads rules."""

    name: str
    severity: str = "warning"
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    for_: float = 0.0
    clear_for: float = 0.0
    keep_firing_for: float = 0.0
    no_data: str = "keep_state"
    flapping: FlapSettings = FlapSettings(enabled=False)


def meta_verdict(rule: MetaRule, labels: dict[str, str], active: bool, now: float, reason: str) -> Verdict:
    """A verdict that opens (active) or resolves the meta-incident of `rule` and `labels`."""
    return Verdict(rule.name, rule.name, make_labels(labels), now, 1.0 if active else 0.0,
                   Status.ANOMALOUS if active else Status.OK, 1.0 if active else 0.0, 0.5,
                   math.nan, math.nan, reason)
