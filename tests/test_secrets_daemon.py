"""No secret in any log line or API answer: the real daemon (a subprocess, JSON log lines)
runs a config full of secrets, through a firing incident whose deliveries fail at services
that echo what they got (the path, the query, the token, the routing key, the body), a
source whose API refuses it and echoes its credentials, and API calls with and without the
token. Then every log line and every API answer (status page, /metrics, JSON API) is
grepped for every configured secret.
"""

from __future__ import annotations

import json

import httpx
import pytest
from aiosmtpd.smtp import AuthResult
from daemon_process import DaemonProcess
from servers import RecordingHTTPServer, RecordingSMTPServer

from alertd.cli import entry as cli

API_TOKEN = "api-token-s3cr3t-0123456789"
SLACK_PATH = "/hooks/T000/B000/SLACKHOOKs3cr3t"
WEBHOOK_PATH = "/hooks/WEBHOOKs3cr3tPATH"
SECRETS = {
    "api token": API_TOKEN,
    "slack webhook path": SLACK_PATH,
    "webhook path": WEBHOOK_PATH,
    "webhook query token": "WEBHOOKQs3cr3t",
    "webhook hmac": "HMACs3cr3t",
    "webhook authorization": "WEBHOOKAUTHs3cr3t",
    "pagerduty key": "PDKEYs3cr3t0123456789abcdef01234",
    "smtp password": "SMTPs3cr3tPASS",
    "slack bot token": "xoxb-SLACKBOTs3cr3t",
    "push token": "PUSHs3cr3tTOKEN",
    "source bearer": "PSPBEARERs3cr3t",
    "source url password": "PSPPASSs3cr3t",
    "source url api key": "PSPKEYs3cr3t",
}
CONFIG = """\
store: {store}
plugin_dirs: []
http: {{listen: "127.0.0.1:0", token: "${{ALERTD_API_TOKEN}}"}}
sources:
  events: {{type: push, every: 1s, port: 0, token: PUSHs3cr3tTOKEN}}
  psp:
    type: http_json
    every: 1s
    url: "http://scraper:PSPPASSs3cr3t@127.0.0.1:{web_port}/status?api_key=PSPKEYs3cr3t"
    bearer_token: PSPBEARERs3cr3t
    metrics: [{{name: psp_up, value: up}}]
rules:
  - name: orders_low
    source: events
    series: orders
    detector: {{type: threshold, below: 10}}
    severity: critical
    annotations: {{summary: "orders at {{{{ value }}}}"}}
receivers:
  oncall:
    - {{type: slack, webhook_url: "${{SLACK_WEBHOOK_URL}}"}}
    - type: webhook
      url: "{web}{webhook_path}?token=WEBHOOKQs3cr3t"
      hmac_secret: HMACs3cr3t
      authorization: "Bearer WEBHOOKAUTHs3cr3t"
    - {{type: pagerduty, routing_key: PDKEYs3cr3t0123456789abcdef01234, url: "{web}/v2/enqueue"}}
    - {{type: email, host: 127.0.0.1, port: {smtp_port}, sender: alertd@shop.example, to: [oncall@shop.example],
       username: alertd, password: SMTPs3cr3tPASS}}
    - {{type: slack, token: xoxb-SLACKBOTs3cr3t, channel: "#alerts", api_url: "{web}/api"}}
    - {{type: webhook, url: "{web}/good"}}
routes: {{receiver: oncall, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
"""


def echo(request):
    """Services that answer with what they were sent: the classic way secrets leak."""
    seen = f"{request.path} {request.headers.get('authorization', '')} {request.body.decode(errors='replace')}"
    if request.path == "/good":
        return 200, {}, "ok"
    if request.path.startswith("/hooks/"):
        return 500, {}, f"upstream error for {seen}"
    if request.path.startswith("/api/"):
        return 200, {"Content-Type": "application/json"}, json.dumps({"ok": False, "error": "invalid_auth",
                                                                      "seen": seen})
    if request.path.startswith("/status"):
        return 401, {}, f"who are you? {seen}"
    return 400, {}, f"invalid request {seen}"


def refuse_everyone(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=False, handled=False)


def wait_until(daemon: DaemonProcess, what: str, check, timeout: float = 30.0) -> None:
    """Block until `check(events)` holds for the daemon's log events (bounded)."""
    with daemon._cond:
        if not daemon._cond.wait_for(lambda: check(daemon.events) or daemon.proc.poll() is not None, timeout) \
                or not check(daemon.events):
            raise AssertionError(f"{what}: not within {timeout}s; log:\n" + "\n".join(daemon.lines[-30:]))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_no_secret_in_any_log_line_or_api_answer(tmp_path, capsys, monkeypatch):
    answers: dict[str, str] = {}
    with RecordingHTTPServer(handler=echo) as web, \
            RecordingSMTPServer(authenticator=refuse_everyone, auth_required=True, auth_require_tls=False) as smtp:
        path = tmp_path / "alertd.yaml"
        path.write_text(CONFIG.format(store=tmp_path / "alertd.db", web=web.url, web_port=web.port,
                                      webhook_path=WEBHOOK_PATH, smtp_port=smtp.port))
        env = {"ALERTD_API_TOKEN": API_TOKEN, "SLACK_WEBHOOK_URL": web.url + SLACK_PATH}

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert cli.main(["validate", "-v", "-c", str(path)]) == 0
        with DaemonProcess(path, env) as daemon:
            daemon.wait_event("daemon_ready", timeout=30)
            api = f"http://127.0.0.1:{daemon.http_port()}"
            push = "http://" + daemon.wait_event("push_listening")["address"]
            wait_until(daemon, "the source failed", lambda ev: any(
                e["event"] == "source_failed" and e.get("source") == "psp" for e in ev))
            pushed = httpx.post(f"{push}/push", content="orders 3\n",
                                headers={"Authorization": "Bearer PUSHs3cr3tTOKEN"})
            assert pushed.status_code == 202
            answers["push refused"] = httpx.post(f"{push}/push", content="orders 3\n").text

            def delivered(events):
                ids = {e.get("outbox_id") for e in events if e["event"] in (
                    "notification_sent", "notification_failed", "notification_retry", "notification_error")}
                return len(ids - {None}) >= 6

            wait_until(daemon, "six first delivery attempts", delivered)
            with httpx.Client(base_url=api, timeout=10) as client:
                incident = client.get("/api/v1/incidents?state=all").json()
                answers["incidents"] = json.dumps(incident)
                ident = incident["incidents"][0]["id"]
                for url in ("/", "/healthz", "/readyz", "/metrics", "/api/v1/status",
                            f"/api/v1/incidents/{ident}", "/api/v1/silences?all=1"):
                    answers[url] = client.get(url).text
                refused = [client.post(f"/api/v1/incidents/{ident}/ack"),
                           client.post(f"/api/v1/incidents/{ident}/ack", headers={"Authorization": "Bearer nope"})]
                assert [r.status_code for r in refused] == [401, 401]
                answers["refused"] = " ".join(r.text + str(r.headers) for r in refused)
                good = {"Authorization": f"Bearer {API_TOKEN}"}
                acked = client.post(f"/api/v1/incidents/{ident}/ack", headers=good, json={"by": "alice"})
                silenced = client.post("/api/v1/silences", headers=good, json={
                    "matchers": ['rule="orders_low"'], "duration": "1h", "comment": "testing"})
                assert (acked.status_code, silenced.status_code) == (200, 201), (acked.text, silenced.text)
                answers["writes"] = acked.text + silenced.text
                answers["after"] = client.get(f"/api/v1/incidents/{ident}").text + client.get("/").text
            assert daemon.stop() == 0
            logged = "\n".join(daemon.lines)
    shown = capsys.readouterr()
    everything = {"daemon log": logged, "validate output": shown.out + shown.err, **answers}
    leaks = [f"{secret_name} in {where}" for secret_name, secret in SECRETS.items()
             for where, text in everything.items() if secret in text]
    assert leaks == []
    # the run did what it should: the services were reached and said what they saw
    assert "answered 500: upstream error for ***" in logged
    assert all(e in logged for e in ('"notification_sent"', '"notification_failed"', '"notification_retry"',
                                     '"source_failed"', '"api_unauthorized"', '"incident_fired"'))
    assert any(SLACK_PATH in r.path for r in web.requests) and any("PSPKEYs3cr3t" in r.path for r in web.requests)
