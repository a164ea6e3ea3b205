"""`alertd notify-test RECEIVER`: the sample goes through the real templates and integrations."""

from __future__ import annotations

import json

from fake_services import ALERTD_WEBHOOK, SlackWebhook, WebhookReceiver
from servers import RecordingHTTPServer, free_port

from alertd.cli.entry import main

SECRET = "hmac-n0tify-s3cr3t"


def config(write_config, hook_url, slack_url):
    return write_config(f"""
        receivers:
          oncall:
            - type: webhook
              url: "{hook_url}/in/t0k3n"
              hmac_secret: "{SECRET}"
            - type: slack
              webhook_url: "{slack_url}/services/T/B/sl4ck"
            - type: console
              if_env: NEVER_SET_VARIABLE
          dead:
            - type: webhook
              url: "http://127.0.0.1:{free_port()}/x"
        """)


def test_notify_test_sends_the_sample_and_prints_what_was_sent(write_config, capsys, monkeypatch):
    monkeypatch.delenv("NEVER_SET_VARIABLE", raising=False)
    receiver, slack = WebhookReceiver(ALERTD_WEBHOOK, hmac_secret=SECRET), SlackWebhook()
    with RecordingHTTPServer(handler=receiver) as hook, RecordingHTTPServer(handler=slack) as chat:
        path = config(write_config, hook.url, chat.url)
        assert main(["notify-test", "oncall", "-c", str(path), "--resolve"]) == 0
    out = capsys.readouterr().out
    assert receiver.errors == [] and slack.errors == []
    assert [b["kind"] for b in receiver.bodies] == ["firing", "resolved"]
    assert receiver.bodies[0]["incidents"][0]["rule"] == "alertd_notify_test"
    assert "nothing is wrong" in receiver.bodies[0]["text"]
    assert len(chat.requests) == 2
    assert "note: integration #2 console is disabled (its if_env variable is unset)" in out
    assert "== oncall #0 webhook: firing" in out and "== oncall #1 slack: resolved" in out
    assert out.count("-> 200 accepted") == 2 and out.count("-> 200 ok") == 2
    assert '"title": "[FIRING] alertd_notify_test provider=adyen region=eu"' in out
    assert SECRET not in out and "t0k3n" not in out and "sl4ck" not in out


def test_dry_run_sends_nothing(write_config, capsys):
    with RecordingHTTPServer() as hook, RecordingHTTPServer() as chat:
        path = config(write_config, hook.url, chat.url)
        assert main(["notify-test", "oncall", "-c", str(path), "--dry-run", "--group"]) == 0
    out = capsys.readouterr().out
    assert hook.requests == [] and chat.requests == []
    assert out.count("-> not sent (--dry-run)") == 2
    start = out.index("{", out.index("== oncall #0 webhook: firing"))
    body, _ = json.JSONDecoder().raw_decode(out[start:])
    assert len(body["incidents"]) == 3


def test_failures_and_unknown_receivers_exit_1_with_one_sentence(write_config, capsys):
    path = config(write_config, "http://127.0.0.1:1", "http://127.0.0.1:1")
    assert main(["notify-test", "dead", "-c", str(path)]) == 1
    captured = capsys.readouterr()
    assert "-> failed (retryable): webhook 127.0.0.1:" in captured.out
    assert "1 integration of dead failed; see the answers above" in captured.err
    assert main(["notify-test", "oncal", "-c", str(path)]) == 1
    assert f'error: there is no receiver "oncal" in {path}; did you mean "oncall"?' in capsys.readouterr().err
