"""The command notifier: a real program gets the incident on stdin and in its environment."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from alertd.base import PermanentError, PluginContext, RetryableError
from alertd.clock import FakeClock
from alertd.config.load import load_config
from alertd.config.schema import ConfigError, parse_params
from alertd.default_plugins.notifiers.command import CommandNotifier
from alertd.delivery.worker import OutboxWorker
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.render.renderer import SAMPLE_T0, sample_notification
from alertd.store import Store

SCRIPT = """\
import json, os, sys
data = json.load(sys.stdin)
out = os.environ["OUT"]
with open(out, "a") as f:
    f.write(json.dumps({"stdin": data, "env": dict(os.environ), "argv": sys.argv[1:]}) + "\\n")
print("paused promotion for", os.environ.get("ALERTD_LABEL_PROVIDER"))
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "remediate.py"
    path.write_text(SCRIPT)
    return path


def notifier(command, **params) -> CommandNotifier:
    p = parse_params(CommandNotifier.Params, {"command": command, "timezone": "UTC", **params})
    return CommandNotifier(p, PluginContext("remediation", lambda: SAMPLE_T0))


def run(n, *notices):
    async def go():
        return [await n.send(x) for x in notices]
    return asyncio.run(go())


def runs(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def test_the_program_gets_the_incident_as_json_and_environment(script, tmp_path, monkeypatch):
    out = tmp_path / "runs.jsonl"
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/s3cr3t")  # alertd's secret
    n = notifier([sys.executable, str(script), "--reason", "alert"], env={"OUT": str(out)})
    assert run(n, sample_notification("firing")) == ["exit 0: paused promotion for adyen"]
    (got,) = runs(out)
    assert got["argv"] == ["--reason", "alert"]
    assert got["stdin"]["kind"] == "firing" and got["stdin"]["incidents"][0]["value"] == 0.31
    assert got["stdin"]["title"] == "[FIRING] payment_success_drop provider=adyen region=eu"
    env = got["env"]
    assert (env["ALERTD_KIND"], env["ALERTD_RULE"], env["ALERTD_SEVERITY"]) == (
        "firing", "payment_success_drop", "critical")
    assert (env["ALERTD_LABEL_PROVIDER"], env["ALERTD_INCIDENT_ID"], env["ALERTD_VALUE"]) == (
        "adyen", "17", "0.31")
    assert env["ALERTD_IDEMPOTENCY_KEY"] == "sample0000000000:17:firing"
    assert env["ALERTD_ANNOTATION_RUNBOOK_URL"].startswith("https://runbooks.example.com/")
    assert "SLACK_WEBHOOK_URL" not in env and env["PATH"] == os.environ["PATH"]


def test_kinds_and_per_incident(script, tmp_path):
    out = tmp_path / "runs.jsonl"
    n = notifier([sys.executable, str(script)], env={"OUT": str(out)}, kinds=["firing"],
                 per_incident=True)
    answers = run(n, sample_notification("firing", group=True), sample_notification("resolved"))
    assert answers[1] == "skipped: resolved is not in kinds"
    assert [r["env"]["ALERTD_LABEL_PROVIDER"] for r in runs(out)] == ["adyen", "stripe", "paypal"]
    assert all(len(r["stdin"]["incidents"]) == 1 for r in runs(out))


@pytest.mark.parametrize("code, error", [(75, RetryableError), (3, PermanentError)])
def test_the_exit_code_is_the_outcome(script, tmp_path, code, error):
    n = notifier([sys.executable, "-c", f"import sys; sys.stderr.write('no capacity left'); sys.exit({code})"])
    with pytest.raises(error, match=f"command python[0-9.]* exited with {code}: no capacity left"):
        run(n, sample_notification("firing"))


def test_a_hanging_command_is_killed_with_its_children_and_recorded_as_failed(tmp_path):
    pids = tmp_path / "pids"
    hang = textwrap.dedent(f"""\
        import os, subprocess, sys, time
        child = subprocess.Popen(["sleep", "60"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(60)
        """)
    clock = FakeClock(SAMPLE_T0)
    store = Store(tmp_path / "s.db")
    store.outbox.enqueue(sample_notification("firing", receiver="remediation"), [(0, "command")],
                         clock.now())
    command = notifier([sys.executable, "-c", hang], timeout=2, kill_grace=1)
    dispatcher = OutboxWorker(store, {("remediation", 0): command}, clock, Metrics(), get_logger())
    started = time.monotonic()
    assert asyncio.run(dispatcher.run_once()) == 0
    assert time.monotonic() - started < 8
    (row,) = store.outbox.rows()
    assert row["status"] == "failed"
    assert "did not finish within 2s and was killed" in row["last_error"]
    for pid in map(int, pids.read_text().split()):
        assert _gone(pid), f"process {pid} survived"
    store.close()


def _gone(pid: int, within: float = 5.0) -> bool:
    """True once `pid` no longer runs (a zombie waiting for its reaper counts as gone);
    the child got its signal with the group but may take a moment to act on it."""
    deadline = time.monotonic() + within
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_a_missing_program_is_a_config_error_with_its_line(write_config, registry):
    path = write_config("""
        receivers:
          fix:
            - type: command
              command: [/opt/nowhere/pause-promotion]
            - type: command
              command: [no-such-program-anywhere, --now]
        """)
    with pytest.raises(ConfigError) as err:
        load_config(path, registry, environ={})
    got = [(p.line, p.key, p.message) for p in err.value.problems]
    assert got == [
        (3, "receivers.fix[0]", "/opt/nowhere/pause-promotion is not an executable file; check the "
                                "path and its permissions (chmod +x)"),
        (5, "receivers.fix[1]", 'the program "no-such-program-anywhere" is not found on PATH; give '
                                "its full path"),
    ]


def test_a_program_that_cannot_start_is_permanent(tmp_path):
    program = tmp_path / "not-executable"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    n = notifier([str(program)])
    program.chmod(0o644)  # broken after the config was checked
    with pytest.raises(PermanentError, match="cannot be started: Permission denied"):
        run(n, sample_notification("firing"))


def test_the_preview_shows_the_environment_and_stdin():
    text = notifier(["true"]).preview(dataclasses.replace(sample_notification("resolved")))
    assert text.startswith('run ["true"] (timeout 30s)\n')
    assert "ALERTD_STATUS=resolved\n" in text and '"kind": "resolved"' in text


def test_a_command_ignoring_sigterm_gets_sigkill_after_the_grace(tmp_path):
    stubborn = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('started', flush=True); time.sleep(60)")
    n = notifier([sys.executable, "-c", stubborn], timeout=0.5, kill_grace=0.3)
    started = time.monotonic()
    with pytest.raises(PermanentError, match="did not finish within 0.5s and was killed"):
        run(n, sample_notification("firing"))
    assert time.monotonic() - started < 5


def test_a_chatty_program_is_drained_and_only_the_tail_of_its_output_kept(tmp_path):
    """Was: every byte kept in memory (2.5 GB in 5 s for a program printing without end)."""
    import tracemalloc

    chatty = tmp_path / "chatty.py"
    chatty.write_text("import sys\nsys.stdin.read()\nblock = 'x' * 65536 + '\\n'\n"
                      "for _ in range(1000):\n    sys.stdout.write(block)\n    sys.stderr.write(block)\n"
                      "print('all done')\nsys.exit(int(sys.argv[1]))\n")
    tracemalloc.start()
    try:
        ok = run(notifier([sys.executable, str(chatty), "0"]), sample_notification("firing"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ok == ["exit 0: all done"]
    assert peak < 8 << 20  # 2 x 65 MB went through
    with pytest.raises(PermanentError) as info:
        run(notifier([sys.executable, str(chatty), "3"]), sample_notification("firing"))
    assert str(info.value).startswith("command python") and "exited with 3: …" in str(info.value)
    assert len(str(info.value)) < 400
