"""One daemon per store, and a store that goes away is noticed.

Before issue 16 two daemons could share one store (configs differing only in the port) and
sent every notice twice or more; a store deleted or emptied while alertd ran went unnoticed,
and the next start silently made a new, empty one (incidents, silences, pending notices gone).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest
from configs import config_text
from daemon_process import ROOT, DaemonProcess
from structlog.testing import capture_logs

from alertd.config.load import load_config
from alertd.daemon.core import Daemon, StartupError
from alertd.store.errors import StoreError
from alertd.store.lock import StoreLock

PLUGINS = str(ROOT / "tests" / "plugins")


def site(tmp_path, name: str) -> os.PathLike:
    path = tmp_path / f"{name}.yaml"
    path.write_text(config_text(plugin_dirs=[PLUGINS], store=str(tmp_path / "alertd.db"),
                                http={"listen": "127.0.0.1:0"}))
    return path


def test_a_second_daemon_on_the_same_store_stops_with_one_sentence_naming_the_first(tmp_path):
    first, second = site(tmp_path, "first"), site(tmp_path, "second")
    with DaemonProcess(first) as daemon:
        daemon.wait_event("daemon_ready", timeout=60)
        run = subprocess.run([sys.executable, "-m", "alertd.cli.entry", "run", "-c", str(second),
                              "--log-format", "console"], capture_output=True, text=True, timeout=60, cwd=ROOT)
        pid = daemon.proc.pid
        assert daemon.stop() == 0
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"error: the store {tmp_path / 'alertd.db'} is in use by another alertd "
                               f"(pid {pid} on {socket.gethostname()}, started ")
    assert lines[0].endswith(f" UTC, config {first}); stop that daemon first, or give this one a store of its "
                             "own (--store, or the config's store key)")
    with DaemonProcess(second) as daemon:  # the first let go when it stopped
        daemon.wait_event("daemon_ready", timeout=60)
        assert daemon.stop() == 0


def test_the_lock_is_let_go_when_the_holder_dies(tmp_path):
    store = str(tmp_path / "alertd.db")
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from alertd.store.lock import StoreLock; "
                              f"StoreLock({store!r}).acquire(config='x'); print('held', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert child.stdout.readline().strip() == "held"
    taken = StoreLock(store)
    with pytest.raises(StoreError, match=rf"in use by another alertd \(pid {child.pid} on "):
        taken.acquire()
    child.kill()
    child.wait()
    taken.acquire(config="y")  # SIGKILL let go of it
    taken.release()


def _daemon(write_config, registry, tmp_path, clock):
    config = load_config(write_config(config_text(store=str(tmp_path / "alertd.db"))), registry, environ={})
    return Daemon(config, registry, clock=clock)


def test_a_store_deleted_or_emptied_while_running_makes_health_fail_and_is_logged_once(write_config, registry,
                                                                                        tmp_path, clock):
    async def main(harm):
        d = _daemon(write_config, registry, tmp_path, clock)
        await d.start()
        try:
            with capture_logs() as logs:
                assert d.health_problems() == []
                harm(tmp_path / "alertd.db")
                await d.housekeeping_job()
                problems = d.health_problems()
                await d.housekeeping_job()
            return problems, [e for e in logs if e["event"] == "store_file_lost"]
        finally:
            await d.drain()

    store = tmp_path / "alertd.db"
    problems, logged = asyncio.run(main(os.unlink))
    assert problems == [f"the store {store} was deleted while alertd runs: what it writes now is lost at the "
                        "next start; restore a backup (docs/operations.md) and restart alertd"]
    assert len(logged) == 1 and logged[0]["log_level"] == "error"
    for name in os.listdir(tmp_path):
        if name.startswith("alertd.db"):
            os.unlink(tmp_path / name)
    problems, logged = asyncio.run(main(lambda p: os.truncate(p, 0)))
    assert problems == [f"the store {store} was emptied to 0 bytes while alertd runs: it is damaged; stop alertd, "
                        "restore a backup (docs/operations.md) and start it again"]
    assert len(logged) == 1


def test_a_store_that_went_away_between_runs_is_not_recreated_silently(write_config, registry, tmp_path, clock):
    async def run_once():
        d = _daemon(write_config, registry, tmp_path, clock)
        with capture_logs() as logs:
            await d.start()
            await d.drain()
        return logs

    assert not [e for e in asyncio.run(run_once()) if e["event"] in ("store_recreated", "store_replaced")]
    for name in os.listdir(tmp_path):  # someone deletes the store (the lock file stays)
        if name.startswith("alertd.db") and not name.endswith(".lock"):
            os.unlink(tmp_path / name)
    recreated = [e for e in asyncio.run(run_once()) if e["event"] == "store_recreated"]
    assert len(recreated) == 1 and recreated[0]["log_level"] == "error"
    assert "a new empty one was made" in recreated[0]["note"] and f"pid {os.getpid()}" in recreated[0]["note"]
    os.truncate(tmp_path / "alertd.db", 0)  # emptied between two runs: the same
    assert len([e for e in asyncio.run(run_once()) if e["event"] == "store_recreated"]) == 1
    assert not [e for e in asyncio.run(run_once()) if e["event"] == "store_recreated"]  # an ordinary restart


def test_a_second_daemon_in_process_gets_a_startup_error(write_config, registry, tmp_path, clock):
    async def main():
        first = _daemon(write_config, registry, tmp_path, clock)
        await first.open()
        try:
            second = _daemon(write_config, registry, tmp_path, clock)
            try:
                await second.open()
            except StartupError as exc:
                return str(exc)
        finally:
            await first.close()
    assert "is in use by another alertd (pid " in asyncio.run(main())
