"""The daemon's Prometheus metrics, in a registry of its own (one per daemon or test).

Counters and histograms are updated where things happen; a few gauges that describe the
current state (open incidents by state and severity, when each source last succeeded) are
computed when /metrics is scraped, from the object given to `Metrics.watch`.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily

from . import __version__


class Metrics:
    """Counters and gauges that /metrics exposes; every stage gets the same instance."""

    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.source_polls = Counter("alertd_source_polls_total", "Polls per source", ["source"], registry=r)
        self.source_samples = Counter("alertd_source_samples_total", "Samples collected per source",
                                      ["source"], registry=r)
        self.source_errors = Counter("alertd_source_errors_total", "Failed polls per source and reason",
                                     ["source", "reason"], registry=r)
        self.samples_skipped = Counter("alertd_samples_skipped_total",
                                       "Samples dropped before detection, by reason",
                                       ["source", "reason"], registry=r)
        self.detector_errors = Counter("alertd_detector_errors_total", "Detector calls that raised",
                                       ["rule"], registry=r)
        self.detector_seconds = Histogram("alertd_detector_seconds", "Time to score one rule's batch",
                                          ["rule"], registry=r,
                                          buckets=(.0005, .001, .005, .01, .05, .1, .5, 1, 5))
        self.incident_transitions = Counter("alertd_incident_transitions_total",
                                            "Incident state changes", ["rule", "severity", "to"],
                                            registry=r)
        self.notifications_sent = Counter("alertd_notifications_sent_total", "Delivered notifications",
                                          ["receiver", "notifier"], registry=r)
        self.notifications_failed = Counter("alertd_notifications_failed_total",
                                            "Failed delivery attempts", ["receiver", "notifier", "reason"],
                                            registry=r)
        self.outbox_depth = Gauge("alertd_outbox_pending", "Notifications waiting in the outbox", registry=r)
        self.tick_seconds = Histogram("alertd_tick_seconds", "Time of one tick (store, detect, alert)",
                                      ["source"], registry=r,
                                      buckets=(.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 10))
        self.logfile_lines = Counter("alertd_logfile_lines_total",
                                     "Log lines read by logfile sources, by outcome "
                                     "(matched, unmatched, undecodable)",
                                     ["source", "outcome"], registry=r)
        self.logfile_reopens = Counter("alertd_logfile_reopens_total",
                                       "Log files followed across rotation or truncation",
                                       ["source", "kind"], registry=r)
        self.push_requests = Counter("alertd_push_requests_total",
                                     "Requests to push sources, by HTTP status code",
                                     ["source", "code"], registry=r)
        self.push_samples = Counter("alertd_push_samples_total",
                                    "Samples accepted by push sources", ["source"], registry=r)
        self.push_refused = Counter("alertd_push_samples_refused_total",
                                    "Samples refused by push sources, by reason (max_series, future_timestamp)",
                                    ["source", "reason"], registry=r)
        self.connections_shed = Counter("alertd_http_connections_shed_total",
                                        "Slow or idle connections closed to make room for a new one, by "
                                        "server (api, or the push source's name)", ["server"], registry=r)
        self.last_tick = Gauge("alertd_last_tick_timestamp_seconds", "When the last tick ended",
                               registry=r)
        # Incident lifecycle, routing and delivery (issue 4).
        self.incidents_suppressed = Counter("alertd_incidents_suppressed_total",
                                            "Firing incidents not notified, by reason", ["reason"],
                                            registry=r)
        self.delivery_attempts = Counter("alertd_delivery_attempts_total",
                                         "Delivery attempts by receiver and outcome",
                                         ["receiver", "outcome"], registry=r)
        self.notifications_folded = Counter("alertd_notifications_folded_total",
                                            "Notices folded into a digest by a rate limit",
                                            ["receiver"], registry=r)
        self.notifications_superseded = Counter("alertd_notifications_superseded_total",
                                                "Notices folded into a newer notice of their group for "
                                                "a receiver that keeps state (Alertmanager)",
                                                ["receiver"], registry=r)
        self.receivers_failing = Gauge("alertd_receivers_failing",
                                       "Receiver integrations with an open receiver-failing incident",
                                       registry=r)
        self.model_fits = Counter("alertd_model_fits_total", "Detector model fits by result "
                                  "(ok, error, skipped)", ["rule", "result"], registry=r)
        self.tick_lag = Histogram("alertd_tick_lag_seconds",
                                  "How late a poll started after its scheduled time", ["source"],
                                  registry=r, buckets=(.005, .01, .05, .1, .5, 1, 5, 15, 60))
        self.polls_skipped = Counter("alertd_source_polls_skipped_total",
                                     "Scheduled polls that did not run: the previous one was "
                                     "still running, or the daemon was too late (missed)",
                                     ["source", "reason"], registry=r)
        self.reloads = Counter("alertd_config_reloads_total", "Config reloads (SIGHUP) by result",
                               ["result"], registry=r)
        self.reload_ok = Gauge("alertd_config_last_reload_successful",
                               "1 if the last config load or reload succeeded, else 0", registry=r)
        self.reload_ok_at = Gauge("alertd_config_last_reload_success_timestamp_seconds",
                                  "When the config was last loaded successfully", registry=r)
        # The store's retention and the daemon's health (issue 16).
        self.samples_pruned = Counter("alertd_samples_pruned_total",
                                      "Samples deleted because they were older than retention", registry=r)
        self.samples_sealed = Counter("alertd_samples_sealed_total",
                                      "Samples moved from the store's head into compressed chunks", registry=r)
        self.history_pruned = Counter("alertd_history_pruned_total",
                                      "Rows deleted because they were older than history_retention, by kind "
                                      "(incidents, notices, delivery_attempts, silences, notifier_state)",
                                      ["kind"], registry=r)
        self.series_dropped = Counter("alertd_series_dropped_total",
                                      "Series dropped because no poll had them for longer than retention",
                                      registry=r)
        self.memory_released = Counter("alertd_memory_released_bytes_total",
                                       "Freed memory handed back to the system by the daemon:memory job "
                                       "(glibc's malloc_trim)", registry=r)
        self.garbage_collected = Counter("alertd_garbage_collected_objects_total",
                                         "Unreachable objects (reference cycles) the daemon:memory job's "
                                         "garbage collections found", registry=r)
        self.jobs = Counter("alertd_scheduler_jobs_total", "Runs of the scheduler's jobs (polls, prune, "
                            "housekeeping) by job and outcome (ok, error)", ["job", "outcome"], registry=r)
        self.healthy = Gauge("alertd_healthy", "1 while /healthz says ok (the daemon makes progress), else 0",
                             registry=r)
        self.last_commit = Gauge("alertd_store_last_commit_timestamp_seconds",
                                 "When a write to the store last committed", registry=r)
        Gauge("alertd_build_info", "alertd's version (the value is always 1)", ["version"],
              registry=r).labels(__version__).set(1)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self._state = _StateCollector()
        r.register(self._state)

    def watch(self, engine) -> None:
        """Report open incidents and source freshness of `engine` (the current one) on scrape."""
        self._state.engine = engine


class _StateCollector:
    """Gauges computed at scrape time from the engine: incidents, source last success."""

    def __init__(self):
        self.engine = None

    def describe(self):
        return []

    def collect(self):
        engine = self.engine
        if engine is None:
            return
        incidents = GaugeMetricFamily("alertd_incidents", "Open incidents by state and severity",
                                      labels=["state", "severity"])
        counts = {(state, rule.severity): 0 for rule in engine.config.rules
                  for state in ("pending", "firing")}
        for incident in list(engine.tracker.open.values()):
            key = (incident.state, incident.severity)
            counts[key] = counts.get(key, 0) + 1
        for (state, severity), n in sorted(counts.items()):
            incidents.add_metric([state, severity], n)
        yield incidents
        last_ok = GaugeMetricFamily("alertd_source_last_success_timestamp_seconds",
                                    "When each source last returned usable samples", labels=["source"])
        failing = GaugeMetricFamily("alertd_source_consecutive_errors",
                                    "Failed polls in a row per source (0 when the last one worked)",
                                    labels=["source"])
        for name, health in sorted(engine.source_health.items()):
            if name not in engine.config.sources:
                continue
            if health.last_ok is not None:
                last_ok.add_metric([name], health.last_ok)
            failing.add_metric([name], health.consecutive_errors)
        yield last_ok
        yield failing
        config = engine.config
        owned = GaugeMetricFamily("alertd_rules_owned", "Rules this instance runs, by its shard "
                                  '("" when not sharded)', labels=["shard"])
        owned.add_metric([str(config.shard or "")], len(config.rules))
        yield owned
        yield GaugeMetricFamily("alertd_config_rules", "Rules in the config file (all shards)",
                                value=len(config.all_rules or config.rules))
        yield from _rule_families(engine.rule_health())


RULE_STATES = ("normal", "pending", "firing", "warming_up", "nodata", "error")


def _rule_families(healths):
    """Per rule: its state (1 for the current one), last evaluation, warm-up, series by state
    (alertd/engine/rule_health.py)."""
    state = GaugeMetricFamily("alertd_rule_state", "1 for the rule's current state (normal, pending, "
                              "firing, warming_up, nodata, error), 0 for the others", labels=["rule", "state"])
    last = GaugeMetricFamily("alertd_rule_last_evaluation_timestamp_seconds",
                             "When the rule's detector last scored a batch", labels=["rule"])
    points = GaugeMetricFamily("alertd_rule_warmup_points", "Points of the rule's least advanced series, "
                               "up to the min_history it needs", labels=["rule"])
    needed = GaugeMetricFamily("alertd_rule_warmup_points_required", "Points a series needs before its "
                               "first verdict (min_history)", labels=["rule"])
    series = GaugeMetricFamily("alertd_rule_series", "The rule's series by state", labels=["rule", "state"])
    for h in healths:
        for name in RULE_STATES:
            state.add_metric([h.name, name], 1.0 if h.state == name else 0.0)
            series.add_metric([h.name, name], h.series_states.get(name, 0))
        if h.last_evaluation is not None:
            last.add_metric([h.name], h.last_evaluation)
        points.add_metric([h.name], h.warmup_points)
        needed.add_metric([h.name], h.warmup_needed)
    yield from (state, last, points, needed, series)
