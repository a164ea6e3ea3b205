"""Golden files: the exact firing, resolved and grouped messages of every notifier.

The files in tests/golden/<notifier>/ are what a reviewer reads to judge a template change.
After changing a template on purpose, regenerate them and review the diff:

    ALERTD_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden.py
    git diff tests/golden

Times are fixed (the samples' notice is at 2023-11-14 22:13:20 UTC) and shown in UTC. Every
JSON payload is also checked against the service's documented schema.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fake_services import ALERTD_WEBHOOK, ALERTMANAGER_WEBHOOK, PAGERDUTY_EVENT, SLACK_MESSAGE, problems

from alertd.base import PluginContext
from alertd.default_plugins.notifiers import alertmanager, console, email_smtp, pagerduty, slack, webhook
from alertd.default_plugins.notifiers import command as command_notifier
from alertd.render.renderer import SAMPLE_T0, sample_notification

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("ALERTD_UPDATE_GOLDEN") == "1"
# as a production alertd sends them: with `http.external_url`, notices link to its pages
# (tests/test_render.py checks the CLI lines that stand in for the links without it)
PAGES = "https://alertd.example.com"
CASES = {"firing": sample_notification("firing", external_url=PAGES),
         "resolved": sample_notification("resolved", external_url=PAGES),
         "grouped": sample_notification("firing", group=True, external_url=PAGES)}


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    assert path.exists(), (f"{path} is missing; run ALERTD_UPDATE_GOLDEN=1 .venv/bin/python -m "
                           "pytest tests/test_golden.py and review the new file")
    assert text == path.read_text(), f"{name} changed; if on purpose, regenerate (see the module doc)"


def make(cls, **params):
    p = cls.Params(timezone="UTC", **params)
    getattr(p, "check", lambda: None)()
    return cls(p, PluginContext("oncall", lambda: SAMPLE_T0))


def dump(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_console(n):
    return "\n".join(make(console.ConsoleNotifier).lines(n)) + "\n"


def render_slack(n):
    payload = make(slack.SlackNotifier, webhook_url="https://hooks.slack.com/services/T/B/x").payload(n)
    assert problems(SLACK_MESSAGE, payload) == []
    return dump(payload)


def render_email(n):
    msg = make(email_smtp.EmailNotifier, host="mail.example.com", sender="alertd@shop.example",
               to=["oncall@shop.example", "payments@shop.example"]).message(n)
    head = "".join(f"{k}: {v}\n" for k, v in msg.items()
                   if k.lower() not in ("content-type", "mime-version"))
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content().replace("\r\n", "\n")
    return f"{head}\n{text}\n-----8<----- text/html\n{html}"


def render_webhook(n):
    notifier = make(webhook.WebhookNotifier, url="https://hooks.example.com/alertd",
                    hmac_secret="golden-secret", headers={"X-Team": "payments"})
    body, headers = notifier.request(n)
    assert problems(ALERTD_WEBHOOK, json.loads(body)) == []
    return "".join(f"{k}: {v}\n" for k, v in headers.items()) + "\n" + dump(json.loads(body))


def render_webhook_am(n):
    payload = make(webhook.WebhookNotifier, url="https://hooks.example.com/am", format="alertmanager",
                   external_url="https://alertd.example.com").payload(n)
    assert problems(ALERTMANAGER_WEBHOOK, payload) == []
    return dump(payload)


def render_pagerduty(n):
    events = make(pagerduty.PagerDutyNotifier, routing_key="R0UT1NGKEY" * 3 + "00",
                  source="shop-prod-1", client_url="https://alertd.example.com").events(n)
    for event in events:
        assert problems(PAGERDUTY_EVENT, event) == []
    return dump(events)


def render_alertmanager(n):
    return dump(make(alertmanager.AlertmanagerNotifier, url="http://alertmanager:9093").alerts(n))


def render_command(n):
    return make(command_notifier.CommandNotifier, command=["true", "--dry"]).preview(n)


RENDERERS = {"console": (render_console, "txt"), "slack": (render_slack, "json"),
             "email": (render_email, "txt"), "webhook": (render_webhook, "txt"),
             "webhook-alertmanager": (render_webhook_am, "json"),
             "pagerduty": (render_pagerduty, "json"), "alertmanager": (render_alertmanager, "json"),
             "command": (render_command, "txt")}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("notifier", list(RENDERERS))
def test_golden(notifier, case):
    render, ext = RENDERERS[notifier]
    check_golden(f"{notifier}/{case}.{ext}", render(CASES[case]))


def test_every_builtin_notifier_has_golden_files(registry):
    covered = {name.split("-")[0] for name in RENDERERS}
    builtin = {n for n in registry.names("notifier") if not n.startswith("test_")}  # not fixtures
    assert builtin == covered
