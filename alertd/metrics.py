"""The daemon's Prometheus metrics, in a registry of its own (one per daemon or test)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
        self.receivers_failing = Gauge("alertd_receivers_failing",
                                       "Receiver integrations with an open receiver-failing incident",
                                       registry=r)
        self.model_fits = Counter("alertd_model_fits_total", "Detector model fits by result "
                                  "(ok, error, skipped)", ["rule", "result"], registry=r)
