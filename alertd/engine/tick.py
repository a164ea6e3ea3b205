"""The tick: samples -> store -> detectors -> alert states -> outbox.

`Engine.ingest(source, samples)` is everything one poll causes: unusable samples are dropped
(counted, logged with the source name), the rest are stored, every rule of that source
scores its series in batched detector calls, the alert stage turns the explained verdicts
into incident changes and puts state changes into alert groups (alertd/engine/alert_stage.py).
A big poll runs in slices, each committed on its own, so that a notice need not wait for the
last series of the poll (alertd/engine/slices.py; `Engine.tick` for the daemon, which lets
the event loop send between slices). Flushing groups into the outbox is the group timer's work
(alertd/routing/timer.py), delivering them the outbox worker's (alertd/delivery/). `Engine.source_failed` applies the rules' `no_data`
policies (alertd/engine/missing_data.py).

A reload goes through `Engine.apply_config`: unchanged rules keep their runtime (history
windows, detector instance, fitted model); the alert stage is rebuilt for the new routes,
restoring incidents, flap history, groups and their timers from the store. Meta-incidents
about alertd itself (`alertd.incidents.meta`) take the same path as a rule's.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..base import PluginContext
from ..incidents.actions import IncidentActions
from ..incidents.meta import MetaRule, meta_verdict
from ..model import Sample, fingerprint, make_labels
from ..sources.sample_checks import clean_samples
from . import absence, forget
from . import missing_data as nodata
from .alert_stage import AlertStage
from .detections import Detections
from .rule_health import RuleHealthViews
from .rule_runtime import RuleRuntime, SourceHealth, TickResult
from .scoring import Scorer
from .slices import PollTick


class Engine(RuleHealthViews):
    """Runs ticks for every source against the rules that read it (its read side for pages,
    the API and /metrics: `alertd.engine.rule_health`)."""

    def __init__(self, config, registry, store, clock, metrics, log, integrations=None):
        self.config, self.store, self.clock, self.metrics, self.log = config, store, clock, metrics, log
        self.registry = registry
        self.rules_by_source: dict[str, list[RuleRuntime]] = defaultdict(list)
        for rule in config.rules:
            self.rules_by_source[rule.source].append(self._runtime(rule))
        self.integrations = integrations
        self.alerting = self._alert_stage(config)
        self.source_health: dict[str, SourceHealth] = {name: SourceHealth() for name in config.sources}
        self.observers: list = []  # callables (rule runtime, batch, scores): replays record verdicts
        self.detections = Detections()
        self.scorer = Scorer(config.detector_timeout)  # score calls with a time limit
        self._last_keys: dict[str, list] = defaultdict(list)  # per source, see _keys
        self.detector_errors: dict[str, str] = {}  # rule -> error of its detector's last score

    def _runtime(self, rule) -> RuleRuntime:
        cls = self.registry.get("detector", rule.detector.type)
        ctx = PluginContext(name=rule.name, now=self.clock.now, log=self.log.bind(rule=rule.name),
                            store=self.store)
        return RuleRuntime(rule, cls(rule.detector.params, ctx))

    def _alert_stage(self, config) -> AlertStage:
        integrations = None
        if self.integrations is not None:  # {receiver: [(index, notifier type)]}: override the config's
            integrations = {name: [(i, t, True) for i, t in items] for name, items in self.integrations.items()}
        return AlertStage(config, self.store, self.clock, self.metrics, self.log, integrations)

    def runtimes(self) -> list[RuleRuntime]:
        """Every rule's runtime, in config order."""
        order = {rule.name: i for i, rule in enumerate(self.config.rules)}
        return sorted((rt for rts in self.rules_by_source.values() for rt in rts),
                      key=lambda rt: order.get(rt.rule.name, len(order)))

    # -- reload ------------------------------------------------------------------------------
    def apply_config(self, config, registry=None) -> dict[str, list[str]]:
        """Switch to `config`, keeping what did not change (a SIGHUP reload).

        A rule whose `RuleConfig` equals the running one keeps its runtime: its windows and
        detector instance (with any fitted model). A changed rule gets a new runtime seeded
        from the store; its open incidents stay open (same fingerprints). The alert stage is
        rebuilt from the store with the new routes, so groups and their timers carry over.
        A removed rule's open incidents are resolved, and the resolve is notified. Everything
        new is built before anything changes. Returns rule names by fate: added, changed,
        removed, kept.
        """
        registry = registry or self.registry
        old = {rt.rule.name: rt for rt in self.runtimes()}
        fate: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "kept": []}
        by_source: dict[str, list[RuleRuntime]] = defaultdict(list)
        previous_registry, self.registry = self.registry, registry
        try:
            for rule in config.rules:
                rt = old.pop(rule.name, None)
                if rt is not None and rt.rule == rule:
                    fate["kept"].append(rule.name)
                else:
                    fate["changed" if rt is not None else "added"].append(rule.name)
                    rt = self._runtime(rule)
                by_source[rule.source].append(rt)
            stage = self._alert_stage(config)
        except BaseException:
            self.registry = previous_registry
            raise
        for name in fate["changed"]:
            self.detections.forget(name)
        self.rules_by_source, self.alerting, self.config = by_source, stage, config
        self.scorer.timeout = config.detector_timeout
        self.source_health = {name: self.source_health.get(name) or SourceHealth() for name in config.sources}
        fate["removed"] = list(old)
        for name in old:
            self.detections.forget(name)
        if old:
            self.close_rule_incidents(list(old), "the rule was removed from the config")
        return fate

    def close_rule_incidents(self, rule_names, reason: str) -> TickResult:
        """Resolve the open incidents of rules that no longer exist (as `incidents resolve` does).

        All of them before one flush: flushed one rule at a time, the groups of the later
        rules would have their timers moved on by the first flush and wait group_interval.
        """
        result = TickResult()
        actions = IncidentActions(self.store, self.clock)
        names = {rule_names} if isinstance(rule_names, str) else set(rule_names)
        for incident in [i for i in self.tracker.open.values() if i.rule in names and i.cause != "posted"]:
            if incident.id is not None:
                actions.resolve(incident.id, by="alertd", comment=reason)
        with self.store.atomic():
            self.alerting.sync()
        result.regrouped = True  # resolved by hand: their groups tell the receivers at the next flush
        return result

    def close_orphans(self) -> TickResult:
        """At start: resolve open incidents of rules this instance no longer runs.

        After resharding (or a rule removed while alertd was stopped) the store can hold open
        incidents of rules that now belong to another instance. A reload resolves them already
        (`apply_config`); a start does the same, so they neither stay open nor repeat from
        here. The resolve is notified; the new owner opens its own incident when the anomaly
        is still there. Meta-incidents (`alertd_...`) and posted alerts are not a rule's: kept.
        """
        running = {rule.name for rule in self.config.rules}
        orphans = sorted({i.rule for i in self.tracker.open.values() if i.rule not in running
                          and not i.rule.startswith("alertd_") and i.cause != "posted"})
        if not orphans:
            return TickResult()
        reason = ("the rule belongs to another shard" if self.config.shard is not None
                  else "the rule is no longer in the config")
        self.log.info("rule_incidents_closed", rules=orphans, reason=reason)
        return self.close_rule_incidents(orphans, reason)

    def meta_incident(self, rule: MetaRule, labels: dict[str, str], active: bool, reason: str) -> TickResult:
        """Open (active) or resolve a meta-incident about alertd itself; see `alertd.incidents.meta`."""
        result = TickResult()
        fp = fingerprint(rule.name, make_labels(labels))
        if not active and not self.tracker.is_open(fp):
            return result
        verdict = meta_verdict(rule, labels, active, self.clock.now(), reason)

        def observe():
            incident = self.tracker.open.get(fp)
            if incident is not None and not active:
                incident.reason = reason  # say why it ended, not why it began
            self.alerting.observe(rule, verdict, fp)
        return self.alert_round(observe)

    def alert_round(self, work) -> TickResult:
        """One store transaction on the alert stage (sync, `work()`, commit), then the
        notices that are due. A failure puts the stage back to what the store holds."""
        result = TickResult()
        try:
            with self.store.atomic():
                self.alerting.sync()
                work()
                result.transitions = self.alerting.commit()
        except BaseException:
            self.alerting.reset()
            raise
        return result

    @property
    def tracker(self):
        """The alert state machine (open incidents by fingerprint)."""
        return self.alerting.tracker

    @property
    def router(self):
        return self.alerting.router

    # -- cleaning ---------------------------------------------------------------------------
    def _clean(self, source: str, samples) -> tuple[list[Sample], int]:
        good, bad = clean_samples(samples, self._not_after(source))
        for reason, items in bad.items():
            self.metrics.samples_skipped.labels(source, reason).inc(len(items))
            self.log.warning("samples_skipped", source=source, count=len(items), reason=reason,
                             excerpt=repr(items[0])[:80])
        return good, sum(len(v) for v in bad.values())

    def _not_after(self, source: str) -> float | None:
        """The latest timestamp a point of `source` may carry: the clock plus the source
        class's `future_tolerance` (None: a simulator or replay with a clock of its own)."""
        sc = self.config.sources.get(source)
        cls = self.registry.get("source", sc.type) if sc is not None else None
        tolerance = getattr(cls, "future_tolerance", None)
        return None if tolerance is None else self.clock.now() + tolerance

    # -- the tick ---------------------------------------------------------------------------
    def source_failed(self, source: str, reason: str) -> TickResult:
        """Record a failed or empty poll and apply the `no_data` policy of the source's rules."""
        now = self.clock.now()
        health = self.source_health.setdefault(source, SourceHealth())
        health.last_error, health.last_error_at = reason, now
        health.consecutive_errors += 1
        runtimes = [rt for rt in self.rules_by_source.get(source, []) if rt.rule.no_data != "keep_state"]
        if not runtimes:
            return TickResult()
        return self.alert_round(lambda: [nodata.apply_no_data(rt, self.alerting, reason, now) for rt in runtimes])

    def ingest(self, source: str, samples, *, alerts: bool = True, consumed=None) -> TickResult:
        """Store and evaluate the samples of one poll (or, with alerts=False, of a back-fill),
        all at once: the tick's slices (alertd/engine/slices.py) follow each other without a
        pause. `consumed()` runs inside the transaction that stores the samples."""
        tick = self.tick(source, samples, alerts=alerts, consumed=consumed)
        for _ in tick.steps():
            pass
        return tick.result

    def tick(self, source: str, samples, *, alerts: bool = True, consumed=None, off_loop: bool = False) -> PollTick:
        """The tick of one poll, to be run by `PollTick.steps()` (the daemon lets the event
        loop send each slice's notices between slices and, with `off_loop`, run while the
        history of new series is read: alertd/engine/seeding.py)."""
        return PollTick(self, source, samples, alerts=alerts, consumed=consumed, off_loop=off_loop)

    def _report_warmup(self, rt: RuleRuntime, rows: np.ndarray, status: np.ndarray) -> None:
        """Log when a rule's series enter or leave warm-up (no verdicts until min_history)."""
        before, after = rt.note_statuses(rows, status)
        if after and not before:
            self.log.info("rule_warming_up", rule=rt.rule.name, series=after,
                          min_history=getattr(rt.detector, "min_history", 0))
        elif before and not after:
            self.log.info("rule_warmed_up", rule=rt.rule.name, series=len(rt.windows.keys))

    def drop_silent(self, before: float) -> dict:
        """Forget series not polled since `before` (see alertd.engine.forget)."""
        return forget.drop_silent(self, before)

    # -- absence ----------------------------------------------------------------------------
    def check_absent(self, source: str | None = None) -> TickResult:
        """Let detectors that watch for silence (`absent`) judge their series: see absence.py."""
        runtimes = [rt for name, rts in self.rules_by_source.items() if source in (None, name)
                    for rt in rts if rt.detector.checks_absence]
        if not runtimes:
            return TickResult()
        now = self.clock.now()
        forget_before = now - self.config.retention  # silent longer than that: forgotten (absence.py)
        return self.alert_round(lambda: [absence.judge(rt, self.alerting, self.store, self.metrics, self.log, now,
                                                       forget_before) for rt in runtimes])
