"""The built-in console, slack and email notifiers against real local servers."""

from __future__ import annotations

import asyncio
import time

import pytest
from servers import HANG, RecordingHTTPServer, free_port, http_server, smtp_server  # noqa: F401

from alertd.base import PermanentError, PluginContext, RetryableError
from alertd.config.schema import ConfigError, parse_params
from alertd.default_plugins.notifiers import console, email_smtp, slack
from alertd.model import Incident, Notification
from alertd.plugins import Registry

T0 = 1_700_000_000.0  # the incident starts here
SECRET_PATH = "/services/T0001/B0001/s3cr3tT0k3n"


def hhmmss(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def incident(state="firing", **kw) -> Incident:
    base = dict(fingerprint="fp1", rule="payment_success_drop", labels={"provider": "adyen"},
                state=state, severity="critical", started_at=T0, fired_at=T0 + 120, count=3,
                last_value=0.31, peak_score=0.999,
                reason="payment_success_ratio 0.31, expected 0.97-1, score 0.999",
                annotations={"summary": "Payment success 0.31 at adyen"})
    base.update(kw)
    return Incident(**base)


def notification(kind="firing", incidents=None, receiver="oncall") -> Notification:
    if incidents is None:
        incidents = (incident(),) if kind == "firing" else (
            incident(state="resolved", resolved_at=T0 + 250),)
    return Notification(receiver=receiver, kind=kind, idempotency_key=f"fp1:{kind}",
                        incidents=tuple(incidents), title="", text="", created_at=T0 + 300)


def ctx(name="oncall") -> PluginContext:
    return PluginContext(name=name, now=lambda: T0 + 300)


async def send_and_close(notifier, n):
    try:
        return await notifier.send(n)
    finally:
        await notifier.close()


def run(notifier, n):
    return asyncio.run(send_and_close(notifier, n))


# -- registration and params ----------------------------------------------------------------
def test_modules_register_their_notifiers():
    registry = Registry()
    for module in (console, slack, email_smtp):
        registry.add_module(module, "built-in")
    assert registry.names("notifier") == ["console", "email", "slack"]


def test_params_validate_and_hide_secrets():
    p = parse_params(slack.SlackNotifier.Params,
                     {"webhook_url": "https://hooks.slack.com" + SECRET_PATH, "timeout": "3s"})
    assert p.timeout == 3.0 and "s3cr3t" not in repr(p)
    with pytest.raises(ConfigError, match="webhook_url must be an https:// URL") as err:
        parse_params(slack.SlackNotifier.Params, {"webhook_url": "hooks.slack.com" + SECRET_PATH})
    assert "s3cr3t" not in str(err.value)
    e = parse_params(email_smtp.EmailNotifier.Params,
                     {"host": "mail", "sender": "alertd@shop.example", "to": "ops@shop.example",
                      "username": "u", "password": "hunter22"})
    assert e.to == ("ops@shop.example",) and e.port == 25 and "hunter22" not in repr(e)
    with pytest.raises(ConfigError, match="not both"):
        parse_params(email_smtp.EmailNotifier.Params,
                     {"host": "mail", "sender": "a@b.c", "to": ["d@e.f"], "ssl": True,
                      "starttls": True})
    with pytest.raises(ConfigError, match="did you mean"):
        parse_params(console.ConsoleNotifier.Params, {"stream": "stdrr"})


# -- console ------------------------------------------------------------------------------
def test_console_prints_firing_and_resolved_lines(capsys):
    notifier = console.ConsoleNotifier(console.ConsoleNotifier.Params(), ctx("console"))
    assert run(notifier, notification("firing")) == "printed 1 line"
    assert run(notifier, notification("resolved")) == "printed 1 line"
    lines = capsys.readouterr().out.splitlines()
    zone = time.strftime("%Z", time.localtime(T0))
    assert lines == [
        "[FIRING] payment_success_drop provider=adyen: payment_success_ratio 0.31, "
        f"expected 0.97-1, score 0.999 (since {hhmmss(T0)} {zone}, 5m ago)",
        f"[RESOLVED] payment_success_drop provider=adyen: lasted 4m10s (from {hhmmss(T0)} {zone})",
    ]


def test_console_stderr_and_groups(capsys):
    notifier = console.ConsoleNotifier(console.ConsoleNotifier.Params(stream="stderr"), ctx())
    group = notification("firing", [incident(), incident(fingerprint="fp2",
                                                         labels={"provider": "stripe"})])
    assert run(notifier, group) == "printed 2 lines"
    out = capsys.readouterr()
    assert out.out == "" and "provider=stripe" in out.err.splitlines()[1]


# -- slack --------------------------------------------------------------------------------
def slack_notifier(server_url, **kw):
    params = slack.SlackNotifier.Params(webhook_url=server_url + SECRET_PATH, **kw)
    params.check()
    return slack.SlackNotifier(params, ctx())


def test_slack_posts_text_and_blocks(http_server):
    notifier = slack_notifier(http_server.url, channel="#ops", username="alertd")
    assert run(notifier, notification()) == "200 ok"
    (method, path, headers, body), = http_server.requests
    assert (method, path) == ("POST", SECRET_PATH)
    assert headers["content-type"] == "application/json"
    payload = http_server.requests[0].json()
    assert "payment_success_drop" in payload["text"] and "0.31" in payload["text"]
    assert "provider=adyen" in payload["text"]
    assert payload["channel"] == "#ops" and payload["username"] == "alertd"
    assert "icon_emoji" not in payload
    assert payload["blocks"][0]["type"] == "header"
    assert payload["blocks"][0]["text"]["text"] == "[FIRING] payment_success_drop provider=adyen"
    assert "*Payment success 0.31 at adyen*" in payload["blocks"][1]["text"]["text"]


def test_slack_escapes_mrkdwn(http_server):
    n = notification("firing", [incident(reason="latency <b> & co > 2s")])
    run(slack_notifier(http_server.url), n)
    text = http_server.requests[0].json()["text"]
    assert "latency &lt;b&gt; &amp; co &gt; 2s" in text


def test_slack_uses_the_shared_client(http_server):
    async def go():
        import httpx

        async with httpx.AsyncClient() as client:
            params = slack.SlackNotifier.Params(webhook_url=http_server.url + SECRET_PATH)
            notifier = slack.SlackNotifier(params, PluginContext("oncall", time.time, http=client))
            answer = await notifier.send(notification())
            await notifier.close()
            assert not client.is_closed  # close() leaves a shared client alone
            return answer

    assert asyncio.run(go()) == "200 ok"


@pytest.mark.parametrize("status, headers, body, error, retry_after", [
    (500, {}, "oops", RetryableError, None),
    (503, {"Retry-After": "30"}, "", RetryableError, 30.0),
    (429, {"Retry-After": "7"}, "rate_limited", RetryableError, 7.0),
    (404, {}, "no_service", PermanentError, None),
    (400, {}, "invalid_payload", PermanentError, None),
    (301, {"Location": "https://example.invalid/"}, "", PermanentError, None),
])
def test_slack_classifies_answers(http_server, status, headers, body, error, retry_after):
    http_server.respond(status, headers, body)
    with pytest.raises(error) as exc:
        run(slack_notifier(http_server.url), notification())
    assert exc.type is error
    assert exc.value.retry_after == retry_after
    assert f"slack webhook answered {status}" in str(exc.value)
    if body:
        assert body in str(exc.value)
    assert "s3cr3t" not in str(exc.value) and http_server.url not in str(exc.value)


def test_slack_retry_after_http_date():
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 90))
    assert slack.parse_retry_after(date, now) == 90.0
    assert slack.parse_retry_after("soon", now) is None
    assert slack.parse_retry_after(None, now) is None


def test_slack_connection_refused_is_retryable():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RetryableError) as exc:
        run(slack_notifier(url), notification())
    assert "unreachable" in str(exc.value)
    assert "s3cr3t" not in str(exc.value) and url not in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_slack_timeout_is_retryable():
    with RecordingHTTPServer() as server:
        server.respond(HANG)
        with pytest.raises(RetryableError, match="timed out after 0.2s") as exc:
            run(slack_notifier(server.url, timeout=0.2), notification())
    assert "s3cr3t" not in str(exc.value)


# -- email --------------------------------------------------------------------------------
def email_notifier(port, **kw):
    values = dict(host="127.0.0.1", port=port, sender="alertd <alertd@shop.example>",
                  to=("ops@shop.example", "oncall@shop.example"))
    values.update(kw)
    params = email_smtp.EmailNotifier.Params(**values)
    params.check()
    return email_smtp.EmailNotifier(params, ctx())


def test_email_sends_to_every_recipient(smtp_server):
    answer = run(email_notifier(smtp_server.port), notification())
    assert answer.startswith("250 ")
    (mail_from, rcpt_tos, _, msg), = smtp_server.envelopes
    assert mail_from == "alertd@shop.example"
    assert rcpt_tos == ["ops@shop.example", "oncall@shop.example"]
    assert msg["To"] == "ops@shop.example, oncall@shop.example"
    assert msg["Subject"] == "[alertd] [FIRING] payment_success_drop provider=adyen"
    assert msg["Message-ID"].startswith("<alertd.") and msg["Message-ID"].endswith("@shop.example>")
    assert msg["X-Alertd-Idempotency-Key"] == "fp1:firing"
    text = msg.get_body(("plain",)).get_content()
    assert "payment_success_ratio 0.31, expected 0.97-1" in text
    assert "Severity:   critical" in text and "Payment success 0.31 at adyen" in text
    assert "payment_success_drop" in msg.get_body(("html",)).get_content()


def test_email_message_id_is_stable_across_retries(smtp_server):
    run(email_notifier(smtp_server.port), notification())
    run(email_notifier(smtp_server.port), notification())
    first, second = smtp_server.messages
    assert first["Message-ID"] == second["Message-ID"]


def test_email_resolved(smtp_server):
    run(email_notifier(smtp_server.port, subject_prefix="[shop]", to=("a@shop.example",)),
        notification("resolved"))
    msg = smtp_server.messages[0]
    assert msg["Subject"] == "[shop] [RESOLVED] payment_success_drop provider=adyen"
    assert "Resolved after 4m10s" in msg.get_body(("plain",)).get_content()


def test_email_server_down_is_retryable():
    with pytest.raises(RetryableError, match="cannot connect") as exc:
        run(email_notifier(free_port(), username="u", password="hunter22"), notification())
    assert "hunter22" not in str(exc.value)


def test_email_refused_recipients_are_permanent(smtp_server):
    smtp_server.reject_rcpt = {a: "550 5.1.1 no such user"
                               for a in ("ops@shop.example", "oncall@shop.example")}
    with pytest.raises(PermanentError, match="every recipient was refused.*550"):
        run(email_notifier(smtp_server.port), notification())
    assert smtp_server.envelopes == []


def test_email_partly_refused_is_delivered(smtp_server):
    smtp_server.reject_rcpt = {"oncall@shop.example": "550 5.1.1 no such user"}
    answer = run(email_notifier(smtp_server.port), notification())
    assert answer.startswith("250 ") and "refused oncall@shop.example (550" in answer
    assert smtp_server.envelopes[0].rcpt_tos == ["ops@shop.example"]


def test_email_temporary_rejection_is_retryable(smtp_server):
    smtp_server.data_replies.append("451 4.3.0 try again later")
    with pytest.raises(RetryableError, match="message refused: 451"):
        run(email_notifier(smtp_server.port), notification())
    smtp_server.reject_rcpt = {a: "450 4.2.1 mailbox busy"
                               for a in ("ops@shop.example", "oncall@shop.example")}
    with pytest.raises(RetryableError, match="every recipient was refused"):
        run(email_notifier(smtp_server.port), notification())


def test_email_uses_run_blocking(smtp_server):
    calls = []

    async def run_blocking(fn, *args):
        calls.append(fn.__name__)
        return await asyncio.to_thread(fn, *args)

    params = email_smtp.EmailNotifier.Params(host="127.0.0.1", port=smtp_server.port,
                                             sender="a@shop.example", to=("b@shop.example",))
    notifier = email_smtp.EmailNotifier(params, PluginContext("mail", time.time,
                                                              run_blocking=run_blocking))
    assert run(notifier, notification()).startswith("250")
    assert calls == ["_deliver"] and len(smtp_server.messages) == 1


def test_email_starttls_unsupported_is_permanent(smtp_server):
    with pytest.raises(PermanentError, match="STARTTLS"):
        run(email_notifier(smtp_server.port, starttls=True), notification())
