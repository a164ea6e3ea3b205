"""Health means progress: /healthz, /readyz and the watchdog say unhealthy, naming why, when
work stops committing (a full store, a source whose ticks fail, a job the scheduler no longer
runs, no file descriptor left), within two minutes; and healthy again once it commits.

Before issue 16 they said ok while every tick failed. Health's clock is the monotonic clock,
passed in here (`monotonic=`), so the test moves it instead of waiting.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys

import httpx
import pytest
from configs import config_text, rule
from daemon_process import ROOT
from servers import free_port
from structlog.testing import capture_logs

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.daemon.lifecycle import Lifecycle
from alertd.daemon.progress import Progress
from alertd.daemon.sdnotify import SystemdNotifier
from alertd.model import Sample, make_labels


class Mono:
    """A monotonic clock the test moves."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def datagrams(sock) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


FULL = ("is full (database or disk is full); free space on its disk (or raise the file-size limit); alertd "
        "retries, and nothing committed is lost")
LOCKED = ("is locked by another writer (database is locked); stop the other process holding it (a second "
          "alertd, an sqlite3 shell in a transaction); alertd retries")


class Full:
    """No page left for the tick's rows (SQLite's max_page_count): ticks fail; the heartbeat,
    which rewrites a page it has, still commits."""

    def __init__(self, d):
        self.db = d.store.db

    def start(self):
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count = {pages}")

    def stop(self):
        self.db.execute("PRAGMA max_page_count = 1073741823")


class Locked:
    """Another process holds the store (BEGIN EXCLUSIVE): no write commits at all."""

    def __init__(self, d):
        d.store.db.execute("PRAGMA busy_timeout = 20")  # (5 s in the daemon; the test need not wait)
        self.path = d.store.path

    def start(self):
        self.other = sqlite3.connect(self.path, isolation_level=None)
        self.other.execute("BEGIN EXCLUSIVE")

    def stop(self):
        self.other.execute("ROLLBACK")
        self.other.close()


@pytest.mark.parametrize("fault", [Full, Locked])
def test_work_that_stops_committing_fails_health_within_two_minutes_and_stops_the_watchdog(
        write_config, registry, tmp_path, clock, fault):
    port = free_port()
    config = load_config(write_config(config_text(
        plugin_dirs=[str(ROOT / "tests" / "plugins")], store=str(tmp_path / "alertd.db"),
        http={"listen": f"127.0.0.1:{port}"}, rules=[rule("cpu_high")])), registry, environ={})
    mono = Mono()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.setblocking(False)
    hosts = [f"h{i}" for i in range(200)]

    async def main():
        d = Daemon(config, registry, clock=clock, monotonic=mono)
        await d.open_http()
        await d.start()
        life = Lifecycle(d, SystemdNotifier(str(tmp_path / "notify.sock"), watchdog_usec=30_000_000))
        web = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
        seen, f = {}, fault(d)

        async def tick(value=50.0):
            clock.advance(10)
            d.sources["app"].pending = [Sample("cpu", make_labels({"host": h}), clock.now(), value) for h in hosts]
            await d.poll("app")
            await d.housekeeping_job()  # the heartbeat write

        async def look(name):
            life.beat()
            seen[name] = (d.health_problems(), (await web.get("/healthz")), (await web.get("/readyz")),
                          datagrams(sock))
        try:
            with capture_logs() as logs:
                await tick()
                await look("ok")
                f.start()
                await tick()
                mono.t += 30
                await tick()
                await look("30s")
                mono.t += 31
                await tick()
                await look("61s")
                f.stop()
                await tick()
                await look("back")
        finally:
            await web.aclose()
            await d.drain()
        return seen, logs

    seen, logs = asyncio.run(main())
    sock.close()
    problems, healthz, readyz, pings = seen["ok"]
    assert problems == [] and healthz.status_code == 200 and readyz.status_code == 200
    assert b"WATCHDOG=1" in pings
    problems, healthz, _, pings = seen["30s"]
    assert problems == [] and healthz.status_code == 200 and b"WATCHDOG=1" in pings  # within the bound: ok
    problems, healthz, readyz, pings = seen["61s"]
    store = tmp_path / "alertd.db"
    why = FULL if fault is Full else LOCKED
    ticks = f'the ticks of source "app" have failed for 61s (3 in a row): the store {store} {why}'
    if fault is Locked:
        assert problems == [f"no write to the store has committed for 61s: the store {store} {why}", ticks]
    else:
        assert problems == [ticks]
    assert healthz.status_code == 503 and healthz.json() == {"status": "unhealthy", "problems": problems}
    assert readyz.status_code == 503 and readyz.json()["checks"]["healthy"] is False
    assert readyz.json()["problems"] == problems
    assert b"WATCHDOG=1" not in pings and any(p.startswith(b"STATUS=") for p in pings)
    problems, healthz, readyz, pings = seen["back"]
    assert problems == [] and healthz.status_code == 200 and b"WATCHDOG=1" in pings
    events = [e["event"] for e in logs if e["event"] in ("daemon_unhealthy", "daemon_healthy")]
    assert events == ["daemon_unhealthy", "daemon_healthy"]


def test_a_source_the_scheduler_stops_running_is_a_problem():
    class Source:
        every, timeout = 10.0, 5.0

    mono = Mono()
    progress = Progress(clock=mono)
    progress.expect("app")
    mono.t += 3 * 10 + 5 + 60  # three intervals, the timeout and a minute: still within
    assert progress.problems(None, {"app": Source()}) == []
    mono.t += 1
    assert progress.problems(None, {"app": Source()}) == [
        'the source "app" has not been polled for 96s (every 10s): the scheduler is not running its job']
    progress.poll_started("app")
    assert progress.problems(None, {"app": Source()}) == []


def test_no_file_descriptor_left_is_a_problem():
    """In a child process (the limit is the process's): nearly all descriptors, then none."""
    code = """
import os, resource
from alertd.daemon.progress import descriptor_problem
print(descriptor_problem())
held = [os.open("/dev/null", os.O_RDONLY) for _ in range(60)]
used = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (used + 2, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print(descriptor_problem())
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
print(descriptor_problem())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "None"
    assert "of the" in out[1] and "file descriptors alertd may open are in use; raise LimitNOFILE" in out[1]
    assert out[2].startswith("no file descriptor is left (the limit is ")


def test_only_the_outermost_block_that_commits_counts_as_a_commit():
    """A tick's inner transaction blocks end well before its outer one fails at commit: the
    store has not committed, and health must go on counting from the first failure."""
    from alertd.store import Store

    mono = Mono()
    store = Store()
    store.health.clock = mono
    with pytest.raises(sqlite3.OperationalError):
        with store.atomic():
            raise sqlite3.OperationalError("database or disk is full")
    since = store.health.failing_since
    mono.t += 30
    with pytest.raises(sqlite3.OperationalError):
        with store.atomic():
            with store.atomic():
                store.set_kv("a", 1)  # ends well, inside a transaction that fails
            raise sqlite3.OperationalError("database or disk is full")
    assert since == 1000.0 and store.health.failing_since == since and "is full" in store.health.error
    with store.atomic():
        store.set_kv("a", 2)
    assert store.health.failing_since is None and store.health.last_ok == 1030.0
