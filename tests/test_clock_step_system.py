"""A wall-clock step on the system clock: the real daemon keeps polling.

The daemon runs as a subprocess whose wall clock libfaketime steps (tests/faketime.py), as an
NTP step would, while its monotonic clock runs on. Before issue 16, APScheduler's jobs kept
their wall-clock next run times: after a step back of an hour no source was polled for an
hour (and /healthz said ok). The clock-step guard now moves every job back by the step.
"""

from __future__ import annotations

import time

import httpx
import pytest
from configs import config_text
from daemon_process import DaemonProcess
from faketime import FakeTime, library
from servers import free_port

pytestmark = pytest.mark.skipif(library() is None, reason="needs Debian's faketime (scripts/system-deps.sh)")


def polls(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('alertd_source_polls_total{source="app"}'):
            return float(line.split()[-1])
    return 0.0


def wait_for_polls(port: int, at_least: float, timeout: float) -> float:
    """Poll /metrics (a running process: bounded, not a timer of the daemon's) until it counts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = polls(port)
        if n >= at_least:
            return time.monotonic()
        time.sleep(0.1)
    raise AssertionError(f"fewer than {at_least:g} polls of app within {timeout:g}s (have {polls(port):g})")


@pytest.mark.parametrize("step", [-3600, 6 * 3600])
def test_polling_goes_on_after_the_wall_clock_steps(write_config, tmp_path, step):
    port = free_port()
    path = write_config(config_text(
        http={"listen": f"127.0.0.1:{port}"}, store=str(tmp_path / "alertd.db"),
        sources={"app": {"type": "command", "every": "1s", "command": ["/bin/echo", "1"], "name": "up"}},
        rules=[{"name": "down", "source": "app", "series": "up", "detector": {"type": "threshold", "below": 1}}],
        receivers={"rec": [{"type": "console"}]}))
    clock = FakeTime(tmp_path)
    with DaemonProcess(path, env=clock.env()) as daemon:
        daemon.wait_event("daemon_ready", timeout=60)
        before = polls(port) if wait_for_polls(port, 2, 30) else 0
        mark = daemon.mark()
        clock.step(step)
        stepped = time.monotonic()
        # a poll a second goes on: three more within a few seconds (not an hour)
        resumed = wait_for_polls(port, polls(port) + 3, 15)
        assert resumed - stepped < 8
        if step < 0:
            event = daemon.wait_event("jobs_rescheduled", after=mark)
            assert "source:app" in event["jobs"] and event["seconds"] < -3500
        status = httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=5).json()
        assert status["sources"]["app"]["next_poll"] - status["now"] < 2
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert daemon.stop() == 0
    assert before >= 2
