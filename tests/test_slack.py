"""The slack notifier against local servers that answer like Slack and check Block Kit."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from fake_services import SlackAPI, SlackWebhook
from servers import RecordingHTTPServer

from alertd.base import PermanentError, PluginContext, RetryableError
from alertd.clock import FakeClock
from alertd.config.schema import ConfigError, parse_params
from alertd.default_plugins.notifiers.slack import SlackNotifier
from alertd.delivery.worker import OutboxWorker
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.render.renderer import SAMPLE_T0, sample_incident, sample_notification
from alertd.store import Store

TOKEN = "xoxb-1234-5678-s3cr3tt0k3n"
HOOK_PATH = "/services/T0001/B0001/s3cr3tHook"


def notifier(store=None, **params) -> SlackNotifier:
    p = parse_params(SlackNotifier.Params, {"timezone": "UTC", **params})
    return SlackNotifier(p, PluginContext("oncall", lambda: SAMPLE_T0, store=store))


async def send_all(n, *notices):
    try:
        return [await n.send(x) for x in notices]
    finally:
        await n.close()


def run(n, *notices):
    return asyncio.run(send_all(n, *notices))


@pytest.fixture
def slack_api():
    api = SlackAPI(TOKEN, channels=("#alerts", "#payments"))
    with RecordingHTTPServer(handler=api) as server:
        server.api = api
        yield server


@pytest.fixture
def slack_hook():
    hook = SlackWebhook()
    with RecordingHTTPServer(handler=hook) as server:
        server.hook = hook
        yield server


# -- incoming webhook -----------------------------------------------------------------------
def test_webhook_messages_are_valid_block_kit(slack_hook):
    n = notifier(webhook_url=slack_hook.url + HOOK_PATH)
    answers = run(n, sample_notification("firing"), sample_notification("resolved"),
                  sample_notification("firing", group=True))
    assert answers == ["200 ok"] * 3 and slack_hook.hook.errors == []
    firing, resolved, group = [r.json() for r in slack_hook.requests]
    assert firing["blocks"][0]["text"]["text"] == "[FIRING] payment_success_drop provider=adyen region=eu"
    assert ":red_circle: *critical* · value *0.31* (expected &gt;= 0.9)" in firing["blocks"][1]["text"]["text"]
    assert "Resolved after *4m50s*" in resolved["blocks"][1]["text"]["text"]
    assert group["blocks"][0]["text"]["text"] == "[FIRING:3] payment_success_drop region=eu"
    assert all(r.path == HOOK_PATH for r in slack_hook.requests)


def test_a_long_group_is_cut_with_plus_n_more_and_stays_within_slacks_limits(slack_hook):
    incidents = tuple(dataclasses.replace(sample_incident(i), fingerprint=f"fp{i}", id=i,
                                          labels={"sku": f"sku-{i:03d}-" + "x" * 80})
                      for i in range(120))
    group = dataclasses.replace(sample_notification("firing"), incidents=incidents)
    run(notifier(webhook_url=slack_hook.url + HOOK_PATH, max_incidents=40), group)
    assert slack_hook.hook.errors == []
    payload = slack_hook.requests[0].json()
    texts = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    assert sum(t.count(":red_circle:") for t in texts) == 40
    more = [e["text"] for b in payload["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert "+80 more" in more
    assert len(payload["blocks"]) <= 50 and all(len(t) <= 3000 for t in texts)


def test_429_retry_after_is_honoured_by_the_dispatcher(slack_hook, tmp_path):
    clock = FakeClock(SAMPLE_T0)
    store = Store(tmp_path / "s.db")
    n = sample_notification("firing")
    store.outbox.enqueue(n, [(0, "slack")], clock.now())
    slack = SlackNotifier(parse_params(SlackNotifier.Params, {"webhook_url": slack_hook.url + HOOK_PATH}),
                          PluginContext("oncall", clock.now))
    dispatcher = OutboxWorker(store, {("oncall", 0): slack}, clock, Metrics(), get_logger())
    slack_hook.respond(429, {"Retry-After": "30"}, "rate_limited")

    async def go():
        first = await dispatcher.run_once()
        row = store.outbox.rows()[0]
        clock.advance(29)
        early = await dispatcher.run_once()
        clock.advance(1)
        late = await dispatcher.run_once()
        await slack.close()
        return first, row, early, late

    first, row, early, late = asyncio.run(go())
    assert (first, early, late) == (0, 0, 1)
    assert row["status"] == "pending" and row["next_attempt_at"] >= SAMPLE_T0 + 30
    assert "rate_limited" in row["last_error"] and "s3cr3t" not in row["last_error"]
    assert len(slack_hook.requests) == 2 and store.outbox.rows()[0]["status"] == "sent"
    store.close()


# -- bot token: chat.postMessage and threads ------------------------------------------------
def test_bot_mode_posts_the_resolve_in_the_thread_of_the_firing_message(slack_api, tmp_path):
    store = Store(tmp_path / "s.db")
    url = slack_api.url + "/api"
    first = run(notifier(store, token=TOKEN, channel="#alerts", api_url=url),
                sample_notification("firing"))
    # A restart in between: a new notifier instance on the same store file.
    store.close()
    store = Store(tmp_path / "s.db")
    later = run(notifier(store, token=TOKEN, channel="#alerts", api_url=url),
                dataclasses.replace(sample_notification("firing"), idempotency_key="repeat"),
                sample_notification("resolved"))
    parent, repeat, resolve = slack_api.api.messages
    assert slack_api.api.errors == []
    assert first == [f"posted to C00000001 as {parent['ts']}"]
    assert "thread_ts" not in parent and parent["channel"] == "#alerts"
    assert repeat["thread_ts"] == parent["ts"] == resolve["thread_ts"]
    assert later[1] == f"posted to C00000001 in thread {parent['ts']}"
    assert resolve["blocks"][0]["text"]["text"].startswith("[RESOLVED]")
    assert "reply_broadcast" not in resolve
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in slack_api.requests)
    # The story is over: the thread is forgotten; a new incident starts a new message.
    assert store.notifier_state.get("slack:oncall:#alerts", "sample0000000000:17") is None
    run(notifier(store, token=TOKEN, channel="#alerts", api_url=url),
        dataclasses.replace(sample_notification("firing"), idempotency_key="next"))
    assert "thread_ts" not in slack_api.api.messages[-1]
    store.close()


def test_a_group_resolve_finds_the_thread_and_replies_can_be_broadcast(slack_api):
    store = Store()
    n = notifier(store, token=TOKEN, channel="#payments", api_url=slack_api.url + "/api",
                 broadcast_replies=True)
    run(n, sample_notification("firing", group=True), sample_notification("resolved", group=True))
    parent, resolve = slack_api.api.messages
    assert resolve["thread_ts"] == parent["ts"] and resolve["reply_broadcast"] is True
    assert resolve["channel"] == "C00000002"


def test_a_deleted_parent_message_starts_a_new_thread(slack_api):
    store = Store()
    store.notifier_state.put("slack:oncall:#alerts", "sample0000000000:17",
                             {"channel": "C00000001", "ts": "1600000000.000001"}, SAMPLE_T0)
    answer = run(notifier(store, token=TOKEN, channel="#alerts", api_url=slack_api.url + "/api"),
                 sample_notification("resolved"))
    assert answer[0].startswith("posted to C00000001 as ")
    assert "thread_ts" not in slack_api.api.messages[0]


@pytest.mark.parametrize("params, error, match", [
    ({"token": "xoxb-wrong"}, PermanentError, "slack chat.postMessage failed: invalid_auth; check token"),
    ({"channel": "#nowhere"}, PermanentError, "channel_not_found; check channel and invite the bot"),
])
def test_bot_mode_api_errors_are_classified_without_the_token(slack_api, params, error, match):
    values = {"token": TOKEN, "channel": "#alerts", "api_url": slack_api.url + "/api", **params}
    with pytest.raises(error, match=match) as exc:
        run(notifier(Store(), **values), sample_notification("firing"))
    assert TOKEN not in str(exc.value) and "xoxb-wrong" not in str(exc.value)


def test_bot_mode_rate_limit_and_transient_errors_are_retryable(slack_api):
    slack_api.respond(429, {"Retry-After": "12"}, '{"ok": false, "error": "ratelimited"}')
    slack_api.respond(200, {"Content-Type": "application/json"},
                      '{"ok": false, "error": "service_unavailable"}')
    n = notifier(Store(), token=TOKEN, channel="#alerts", api_url=slack_api.url + "/api")
    with pytest.raises(RetryableError) as first:
        run(n, sample_notification("firing"))
    with pytest.raises(RetryableError, match="service_unavailable"):
        run(n, sample_notification("firing"))
    assert first.value.retry_after == 12.0


@pytest.mark.parametrize("params, message", [
    ({}, "set either webhook_url"),
    ({"webhook_url": "https://hooks.slack.com/x", "token": TOKEN}, "not both"),
    ({"token": TOKEN}, "a bot token needs a channel"),
    ({"webhook_url": "https://hooks.slack.com/x", "max_incidents": 60}, "between 1 and 40"),
])
def test_params_are_checked(params, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_params(SlackNotifier.Params, params)
    assert TOKEN not in str(err.value)
