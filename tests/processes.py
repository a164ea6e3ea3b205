"""Real servers the tests start (Alertmanager, Prometheus, the daemon itself) and stop.

`serve(argv, ready_url, log_path)` starts a program, waits until `ready_url` answers 200
(bounded polling of a process starting up, not a timer), yields, and stops it; `stop(proc)`
is the one teardown: SIGTERM, a grace period, then SIGKILL, always reaped.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time

import httpx
import pytest


def stop(proc: subprocess.Popen, grace: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
    """Stop `proc` (`sig`, then SIGKILL after `grace` seconds) and reap it; its exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def serve(argv: list[str], ready_url: str, log_path, *, name: str | None = None, timeout: float = 30.0):
    """Run `argv` with its output in `log_path` until the block ends; fail the test with the
    log's tail if it exits or is not ready within `timeout` seconds. Yields the process."""
    name = name or argv[0].rsplit("/", 1)[-1]
    log = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}: {open(log_path, errors='replace').read()[-800:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{name} did not become ready within {timeout:g}s")
            time.sleep(0.1)
        yield proc
    finally:
        stop(proc)
        log.close()
