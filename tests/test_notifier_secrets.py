"""No secret reaches a log line: delivery errors through the dispatcher, with real logging."""

from __future__ import annotations

import asyncio
import io

import structlog
from servers import RecordingHTTPServer

from alertd.base import PluginContext
from alertd.config.load import load_config
from alertd.delivery.worker import OutboxWorker
from alertd.log import add_secrets, configure, get_logger
from alertd.metrics import Metrics
from alertd.render.renderer import sample_notification
from alertd.store import Store

HOOK_PATH = "/hooks/T0001/s3cr3t-hook-path"
TOKEN = "xoxb-9999-s3cr3t-bot-token"
KEY = "R0UT1NGs3cr3tKEY0123456789abcdef"


def test_failed_deliveries_log_no_secret(write_config, registry, clock, tmp_path):
    def echo(request):  # services that echo what they got: the path, the token, the routing key
        # The dispatcher sends to the three at once, so answer by path, not by arrival order.
        if request.path.startswith("/hooks/"):
            return 500, {}, f"upstream error for {HOOK_PATH}"
        if request.path.startswith("/api"):
            return (401, {"Content-Type": "application/json"},
                    f'{{"ok": false, "error": "invalid_auth", "token": "{TOKEN}", "seen": "{HOOK_PATH}"}}')
        return 400, {}, f"invalid routing key {KEY}"

    with RecordingHTTPServer(handler=echo) as server:
        path = write_config(f"""
            receivers:
              oncall:
                - {{type: webhook, url: "{server.url}{HOOK_PATH}", hmac_secret: hmac-s3cr3t}}
                - {{type: slack, token: "{TOKEN}", channel: "#alerts", api_url: "{server.url}/api"}}
                - {{type: pagerduty, routing_key: "{KEY}", url: "{server.url}/v2/enqueue"}}
            """)
        config = load_config(path, registry, environ={})
        buffer = io.StringIO()
        configure("info", json_lines=True, stream=buffer)
        try:
            add_secrets(config.secrets)
            store = Store(tmp_path / "s.db")
            context = PluginContext("oncall", clock.now, get_logger(), store=store)
            notifiers = {("oncall", i): registry.get("notifier", nc.type)(nc.params, context)
                         for i, nc in enumerate(config.receivers["oncall"])}
            store.outbox.enqueue(sample_notification("firing"),
                                 [(0, "webhook"), (1, "slack"), (2, "pagerduty")], clock.now())
            dispatcher = OutboxWorker(store, notifiers, clock, Metrics(), get_logger())
            assert asyncio.run(dispatcher.run_once()) == 0
            store.close()
        finally:
            structlog.reset_defaults()
    logged = buffer.getvalue()
    assert logged.count('"notification_retry"') == 1 and logged.count('"notification_failed"') == 2
    assert "answered 500: upstream error for ***" in logged
    for secret in (HOOK_PATH, TOKEN, KEY, "hmac-s3cr3t"):
        assert secret not in logged
