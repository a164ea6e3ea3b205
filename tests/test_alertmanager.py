"""The alertmanager notifier against a real Alertmanager (Debian's prometheus-alertmanager).

The module starts one Alertmanager on a free loopback port with a temporary config and
storage, clustering off, and waits for /-/ready by bounded polling. Each test pushes alerts
through the notifier and reads them back from Alertmanager's own API.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from datetime import datetime

import httpx
import pytest
from processes import serve
from servers import free_port

from alertd.base import PermanentError, PluginContext, RetryableError
from alertd.config.schema import parse_params
from alertd.default_plugins.notifiers.alertmanager import AlertmanagerNotifier
from alertd.render.renderer import sample_incident, sample_notification

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory):
    if not shutil.which(BINARY):
        pytest.fail("prometheus-alertmanager is not installed; run `sh scripts/system-deps.sh` "
                    "(make test does) or apt-get install prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("alertmanager")
    (tmp / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    argv = [BINARY, f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]
    url = f"http://127.0.0.1:{port}"
    with serve(argv, f"{url}/-/ready", tmp / "alertmanager.log", name="alertmanager"):
        yield url


def notifier(url, **params):
    p = parse_params(AlertmanagerNotifier.Params, {"url": url, **params})
    return AlertmanagerNotifier(p, PluginContext("am", time.time))


def push(n, *notices):
    async def go():
        try:
            return [await n.send(x) for x in notices]
        finally:
            await n.close()
    return asyncio.run(go())


def alerts_in(url, **labels):
    flt = [f'{k}="{v}"' for k, v in labels.items()]
    response = httpx.get(f"{url}/api/v2/alerts", params={"filter": flt}, timeout=5)
    response.raise_for_status()
    return response.json()


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_firing_incident_becomes_an_active_alert(alertmanager):
    now = time.time()
    n = sample_notification("firing", now=now)
    assert push(notifier(alertmanager, external_url="https://alertd.example.com"), n) == [
        "200 accepted 1 alert"]
    (alert,) = alerts_in(alertmanager, alertname="payment_success_drop", provider="adyen")
    assert alert["labels"] == {"alertname": "payment_success_drop", "provider": "adyen",
                               "region": "eu", "severity": "critical"}
    assert alert["annotations"]["summary"] == "Payment success 0.31 at adyen"
    assert alert["annotations"]["description"].startswith("payment_success_ratio 0.31, expected >= 0.9")
    assert alert["annotations"]["runbook_url"] == "https://runbooks.example.com/payments/provider-down"
    assert alert["generatorURL"] == "https://grafana.example.com/d/payments?var-provider=adyen"
    assert alert["status"]["state"] == "active"
    assert abs(ts(alert["startsAt"]) - (now - 300)) < 1
    assert abs(ts(alert["endsAt"]) - (now + 86400)) < 1


def test_a_resolve_ends_the_alert(alertmanager):
    now = time.time()
    incident = dataclasses.replace(sample_incident(1, t0=now), fingerprint="resolve0001")
    firing = dataclasses.replace(sample_notification("firing", now=now), incidents=(incident,))
    push(notifier(alertmanager), firing)
    assert len(alerts_in(alertmanager, provider="stripe")) == 1
    gone = dataclasses.replace(incident, state="resolved", resolved_at=now - 5)
    push(notifier(alertmanager), dataclasses.replace(firing, kind="resolved", incidents=(gone,)))
    assert alerts_in(alertmanager, provider="stripe") == []  # resolved alerts are not listed


def test_a_group_pushes_every_incident_and_rules_without_summary_get_one(alertmanager):
    now = time.time()
    incidents = tuple(dataclasses.replace(sample_incident(i, t0=now), rule="grouped_rule",
                                          annotations={}) for i in range(3))
    n = dataclasses.replace(sample_notification("firing", now=now), incidents=incidents)
    assert push(notifier(alertmanager), n) == ["200 accepted 3 alerts"]
    got = alerts_in(alertmanager, alertname="grouped_rule")
    assert sorted(a["labels"]["provider"] for a in got) == ["adyen", "paypal", "stripe"]
    summaries = {a["labels"]["provider"]: a["annotations"]["summary"] for a in got}
    assert summaries["adyen"] == "grouped_rule provider=adyen region=eu: 0.31 (expected >= 0.9)"


def test_a_wrong_path_is_permanent_and_a_dead_alertmanager_retryable(alertmanager):
    with pytest.raises(PermanentError, match=r"alertmanager 127.0.0.1:\d+ answered 404"):
        push(notifier(alertmanager + "/nothing/here"), sample_notification("firing", now=time.time()))
    with pytest.raises(RetryableError, match="unreachable"):
        push(notifier(f"http://127.0.0.1:{free_port()}"), sample_notification("firing", now=time.time()))
