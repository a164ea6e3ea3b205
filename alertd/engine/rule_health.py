"""Whether each rule is judging anything: its state, and the state of each of its series.

Prometheus shows a rule's health and last evaluation, Grafana a state per rule and per series
(Normal, Pending, Alerting, NoData, Error). alertd's states, worst first:

    error       the detector raised or hung at its last call, or the rule's source fails
    firing      some series has a firing incident
    pending     some series is anomalous, waiting for `for`
    nodata      no series yet, or none came in the last polls
    warming_up  every series is still short of `min_history` points (or the model is not
                fitted yet): nothing is judged
    normal      judging, nothing wrong

A series is firing, pending, error (its rule's detector fails), nodata (missing from the last
poll, or its last point unusable), warming_up (n of `min_history` points) or normal. The
same `RuleHealth` feeds `/api/v1/rules`, `/metrics` (`alertd_rule_state{rule,state}`,
`alertd_rule_last_evaluation_timestamp_seconds`, `alertd_rule_warmup_points`), the pages and
the header badge. `RuleHealthViews` is mixed into the Engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..model import Status
from .rule_runtime import RuleView, SeriesView

NODATA_POLLS = 2  # a series missing from this many polls in a row (that brought the rule data) has no data
RULE_STATES = ("normal", "pending", "firing", "warming_up", "nodata", "error")
SERIES_STATES = RULE_STATES


@dataclass
class RuleHealth:
    """One rule as `/api/v1/rules` and the pages show it."""

    name: str
    state: str
    reason: str  # one sentence: why this state
    source: str
    detector: str
    severity: str
    series: int
    series_states: dict[str, int]  # series per state
    warmup_points: int  # points of the least advanced series (capped at the need)
    warmup_needed: int  # min_history
    last_evaluation: float | None  # daemon clock of the last scored batch
    last_data_ts: float | None  # data time of the newest point scored
    last_error: str | None
    last_error_at: float | None
    open_incidents: dict[str, int]  # {"pending": n, "firing": n}
    training: dict = field(default_factory=dict)  # fitted_at, fits, failures, last_result, ...
    model: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SeriesHealth:
    """One series of a rule: its state, points, last value and incident."""

    key: str
    labels: dict
    fingerprint: str
    state: str
    points: int
    last_ts: float | None
    last_value: float | None
    incident_id: int | None
    missed: int  # polls in a row (that brought the rule data) without a point of this series


CODES = {name: i for i, name in enumerate(SERIES_STATES)}


def _series_codes(rt, incidents: list, failing: bool) -> np.ndarray:
    """The state of every series of `rt` as codes into SERIES_STATES (`incidents`: the rule's
    open ones). Vectorised: 10,000 series cost a few numpy operations, not a Python loop."""
    n = len(rt.windows.keys)
    status = rt.last_status[:n] if len(rt.last_status) >= n else np.full(n, -1, dtype=np.int8)
    need = max(getattr(rt.detector, "min_history", 0), 1)
    codes = np.zeros(n, dtype=np.int8)
    codes[(status == Status.WARMING_UP) | ((status < 0) & (rt.windows.seen[:n] < need))] = CODES["warming_up"]
    codes[(status == Status.SKIPPED) | (rt.polls_missed() >= NODATA_POLLS)] = CODES["nodata"]
    if failing:
        codes[:] = CODES["error"]
    for incident in incidents:
        row = rt.row_of_fp.get(incident.fingerprint)
        if row is not None and row < n and incident.state in CODES:
            codes[row] = CODES[incident.state]
    return codes


def rule_health(rt, incidents: list, source_health, now: float) -> RuleHealth:
    """The health of one rule runtime (see the module docstring); `incidents`: its open ones."""
    rule, win = rt.rule, rt.windows
    n = len(win.keys)
    error = rt.last_error
    source_error = None
    if source_health is not None and source_health.consecutive_errors:
        source_error = (f'the source "{rule.source}" failed its last {source_health.consecutive_errors} '
                        f"poll{'s' if source_health.consecutive_errors != 1 else ''}: {source_health.last_error}")
    bins = np.bincount(_series_codes(rt, incidents, error is not None), minlength=len(SERIES_STATES))
    counts = {name: int(bins[i]) for i, name in enumerate(SERIES_STATES)}
    need = max(getattr(rt.detector, "min_history", 0), 1)
    points = int(min(win.seen[:n].min(), need)) if n else 0
    training = dict(rt.training)
    unfitted = getattr(rt.detector, "trainable", False) and not training.get("fitted_at")
    opened = {"pending": counts["pending"], "firing": counts["firing"]}
    if error is not None:
        state, reason = "error", f"the detector failed: {error}"
    elif source_error is not None:
        state, reason = "error", source_error
    elif opened["firing"]:
        state, reason = "firing", f"{opened['firing']} of {n} series firing"
    elif opened["pending"]:
        state, reason = "pending", f"{opened['pending']} of {n} series anomalous, waiting for `for`"
    elif not n:
        state, reason = "nodata", f"no series matching {rule.series} has come from {rule.source} yet"
    elif counts["nodata"] == n:
        state, reason = "nodata", "no series came in the last polls"
    elif counts["warming_up"] == n or unfitted:
        state = "warming_up"
        if unfitted and points >= need:
            why = training.get("last_error") or training.get("last_result") or "no fit has run yet"
            reason = f"the model is not fitted yet ({why})"
        else:
            reason = f"{n} series warming up: {points} of {need} points before the first verdict"
    else:
        warming = counts["warming_up"]
        state = "normal"
        reason = f"judging {n - warming} series" + (f"; {warming} still warming up" if warming else "")
    return RuleHealth(
        rule.name, state, reason, rule.source, rule.detector.type, rule.severity, n, counts, points, need,
        rt.last_evaluated_at, rt.last_data_ts, error or source_error,
        rt.last_error_at if error else (source_health.last_error_at if source_error else None),
        opened, training, rt.detector.model_info())


def series_health(rt, incidents: list, codes: np.ndarray, rows) -> list[SeriesHealth]:
    """The given rows of `rt` as SeriesHealth (`codes`: `_series_codes` of the rule)."""
    win = rt.windows
    by_fp = {i.fingerprint: i for i in incidents}
    missed = rt.polls_missed()
    out = []
    for row in rows:
        fp = rt.fingerprints[row]
        incident = by_fp.get(fp)
        last = float(win.values[row, -1])
        out.append(SeriesHealth(win.keys[row], dict(win.labels[row]), fp, SERIES_STATES[int(codes[row])],
                                int(win.seen[row]), float(win.last_ts[row]) if np.isfinite(win.last_ts[row]) else None,
                                last if np.isfinite(last) else None,
                                incident.id if incident is not None else None, int(missed[row])))
    return out


_ORDER = np.array([5, 2, 1, 4, 3, 0], dtype=np.int8)  # by code: error, firing, pending, nodata, warming, normal


class RuleHealthViews:
    """The Engine's read side for pages, the API and /metrics (mixed into `Engine`)."""

    def _open_by_rule(self) -> dict[str, list]:
        out: dict[str, list] = {}
        for incident in list(self.tracker.open.values()):
            out.setdefault(incident.rule, []).append(incident)
        return out

    def rule_health(self) -> list[RuleHealth]:
        """Every rule's health, in config order."""
        now, by_rule = self.clock.now(), self._open_by_rule()
        return [rule_health(rt, by_rule.get(rt.rule.name, []), self.source_health.get(rt.rule.source), now)
                for rt in self.runtimes()]

    def _runtime_named(self, name: str):
        return next((rt for rts in self.rules_by_source.values() for rt in rts if rt.rule.name == name), None)

    def rule_series(self, name: str, *, state: str | None = None, offset: int = 0, limit: int = 50):
        """(RuleHealth, matching series count, a page of SeriesHealth) of one rule, the worst
        states first; None for an unknown rule."""
        rt = self._runtime_named(name)
        if rt is None:
            return None
        incidents = self._open_by_rule().get(name, [])
        health = rule_health(rt, incidents, self.source_health.get(rt.rule.source), self.clock.now())
        codes = _series_codes(rt, incidents, rt.last_error is not None)
        rows = np.arange(len(codes)) if not state else np.flatnonzero(codes == CODES.get(state, -1))
        rows = rows[np.argsort(_ORDER[codes[rows]], kind="stable")]
        return health, len(rows), series_health(rt, incidents, codes, rows[offset:offset + limit].tolist())

    def forecast(self, rule: str, key: str | None = None, limit: int = 100) -> list[dict] | None:
        """What the forecasting detector of `rule` expects its series (or series `key`) to do
        next (`Detector.forecast`), for pages and the API; None when no running rule has that name."""
        rt = self._runtime_named(rule)
        if rt is None:
            return None
        out = []
        for k in ([key] if key is not None else rt.windows.keys):
            view = rt.detector.forecast(k)
            if view is not None:
                out.append(view)
                if len(out) >= limit:
                    break
        return out

    def series_of(self, rule: str, fingerprint: str):
        """(series key, labels) of the rule's series with this incident fingerprint, or None."""
        rt = self._runtime_named(rule)
        row = None if rt is None else rt.row_of_fp.get(fingerprint)
        if row is None:
            return None
        return rt.windows.keys[row], dict(rt.windows.labels[row])

    def rule_views(self, per_rule: int = 6) -> list[RuleView]:
        """Every rule with up to `per_rule` of its series, those with open incidents first."""
        views = []
        for rt in self.runtimes():
            keys = list(rt.windows.keys)
            rows = rt.windows.rows
            is_open = {k: self.tracker.is_open(rt.fingerprints[rows[k]]) for k in keys}
            keys.sort(key=lambda k: not is_open[k])
            series = [SeriesView(k, rt.windows.labels[rows[k]], rt.fingerprints[rows[k]], is_open[k],
                                 self.detections.of(rt.rule.name, k)) for k in keys[:per_rule]]
            views.append(RuleView(rt.rule, series, len(keys)))
        return views

    def rule_states(self) -> dict[str, dict]:
        """Per rule: series, how many are warming up, the last tick's verdicts, the model."""
        return {rt.rule.name: rt.state() for rts in self.rules_by_source.values() for rt in rts}
