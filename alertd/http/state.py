"""What the HTTP app sees of the running daemon: a small read model and a few callables.

The daemon builds an `AppState` (uvicorn's `ServerState` is the model) and hands it to the
app; handlers read it per request, so a reload's new config applies to the next request.
The app never holds the daemon itself: it reads through these fields and acts through the
same services as the CLI (incident actions, silences), then calls `changed()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from .server import HttpError


@dataclass(frozen=True)
class AppState:
    """The running daemon as the HTTP app may see it."""

    config: Callable[[], Any]  # the running config
    store: Callable[[], Any]  # the open Store, None while starting or stopping
    clock: Any
    log: Any
    metrics: Any
    health: Callable[[], list[str]]  # why the daemon is unhealthy (empty: healthy)
    readiness: Callable[[], dict[str, bool]]
    status: Callable[[], dict]  # the document of /api/v1/status
    draining: Callable[[], bool]
    rules: Callable[..., list]  # rules(per_rule): each rule with some series (Engine.rule_views)
    changed: Callable[[], None]  # an action changed incidents or silences: look at groups now
    reload: Callable[[], Awaitable]  # reload the config as SIGHUP does; its ReloadOutcome
    # alerts posted to the Alertmanager API (alertd.engine.intake.PostedAlert), in batches
    post_alerts: Callable[[list], Awaitable[int]] | None = None
    # The pages' read side of the engine (alertd/engine/rule_health.py); empty while starting.
    rule_health: Callable[[], list] = lambda: []  # every rule's RuleHealth
    # rule_series(name, state=, offset=, limit=): (RuleHealth, count, [SeriesHealth]) or None
    rule_series: Callable[..., Any] = lambda name, **kw: None
    series_of: Callable[[str, str], Any] = lambda rule, fp: None  # (key, labels) of an incident's series
    # chart_marks(rule, key): (detections [(ts, value)], expected band [(ts, low, high)])
    chart_marks: Callable[[str, str], tuple] = lambda rule, key: ((), ())
    # forecast(rule, key=None, limit=100): what a forecasting rule expects its series (or one)
    # to do next, as Detector.forecast views; None for a rule that is not running
    forecast: Callable[..., list | None] = lambda rule, key=None, limit=100: None

    def open_store(self):
        """The store, or a 503 while alertd is starting or stopping."""
        store = self.store()
        if store is None:
            raise HttpError(503, "the store is not open (alertd is starting or stopping)")
        return store
