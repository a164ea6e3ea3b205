"""A real Prometheus (Debian's `prometheus`) sends its alerts to alertd as to an Alertmanager.

Prometheus scrapes a small metrics endpoint the test controls, evaluates a rule file every
second, and posts its alerts to alertd through `alerting.alertmanagers` (API v2, alertd's
token as `authorization`). alertd turns the alert into an incident and notifies a webhook
(Alertmanager's format); when the metric drops, Prometheus posts the resolved alert and the
resolve is notified. The waits are bounded polls of real processes, not timers of alertd.
"""

from __future__ import annotations

import shutil
import time

import pytest
import yaml
from daemon_process import DaemonProcess
from processes import serve
from servers import RecordingHTTPServer, free_port

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
TOKEN = "prometheus-token-0123456789ab"


def wait_for(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout:g}s")


def test_prometheus_alerts_are_notified_and_resolved(tmp_path):
    if not shutil.which(PROMETHEUS):
        pytest.fail("prometheus is not installed; run `sh scripts/system-deps.sh` (make test does)")
    value = {"v": 1}
    metrics = RecordingHTTPServer(handler=lambda r: (200, {"Content-Type": "text/plain"},
                                                     f"# TYPE shop_checkout_errors gauge\nshop_checkout_errors {value['v']}\n"))
    hook = RecordingHTTPServer()
    with metrics, hook:
        config = {"plugin_dirs": [], "store": str(tmp_path / "alertd.db"),
                  "http": {"listen": "127.0.0.1:0", "token": TOKEN},
                  "posted_alerts": {"resolve_timeout": "5m"},
                  "receivers": {"oncall": [{"type": "webhook", "url": f"{hook.url}/hook", "format": "alertmanager"}]},
                  "routes": {"receiver": "oncall", "group_by": ["alertname"], "group_wait": "1s",
                             "group_interval": "1s", "repeat_interval": "1h"}}
        (tmp_path / "alertd.yaml").write_text(yaml.safe_dump(config))
        with DaemonProcess(tmp_path / "alertd.yaml") as daemon:
            port = daemon.http_port()
            daemon.wait_event("daemon_ready", timeout=30)
            rules = {"groups": [{"name": "shop", "interval": "1s", "rules": [
                {"alert": "CheckoutErrors", "expr": "shop_checkout_errors > 0", "for": "0s",
                 "labels": {"severity": "critical"},
                 "annotations": {"summary": "checkout errors: {{ $value }}"}}]}]}
            prom = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(tmp_path / "rules.yml")],
                    "scrape_configs": [{"job_name": "shop", "metrics_path": "/metrics",
                                        "static_configs": [{"targets": [metrics.url.removeprefix("http://")]}]}],
                    "alerting": {"alertmanagers": [{"api_version": "v2", "authorization": {"credentials": TOKEN},
                                                    "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}}
            (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom))
            web = free_port()
            argv = [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web}"]
            with serve(argv, f"http://127.0.0.1:{web}/-/ready", tmp_path / "prometheus.log", name="prometheus"):
                firing = wait_for(lambda: [r.json() for r in hook.requests if r.json()["status"] == "firing"],
                                  "firing notice from alertd")[0]
                (alert,) = firing["alerts"]
                assert alert["labels"] == {"alertname": "CheckoutErrors", "severity": "critical", "job": "shop",
                                           "instance": metrics.url.removeprefix("http://")}
                assert alert["annotations"] == {"summary": "checkout errors: 1"}
                assert alert["generatorURL"].startswith("http://") and "graph?g0.expr=" in alert["generatorURL"]
                assert firing["groupLabels"] == {"alertname": "CheckoutErrors"}
                assert firing["groupKey"] == '{}:{alertname="CheckoutErrors"}'
                daemon.wait_event("alerts_posted", accepted=1)
                value["v"] = 0  # the errors stop: Prometheus posts the alert resolved
                resolved = wait_for(lambda: [r.json() for r in hook.requests if r.json()["status"] == "resolved"],
                                    "resolved notice from alertd")[0]
                assert resolved["alerts"][0]["labels"] == alert["labels"]
                assert resolved["alerts"][0]["endsAt"] != "0001-01-01T00:00:00Z"
            assert daemon.stop() == 0
