"""Store faults: a read-only store, a store locked by another writer, a full disk.

Each gives one clear sentence; the running daemon keeps going and retries (the next poll, the
next dispatcher pass); nothing committed is lost and `PRAGMA integrity_check` stays ok. A
full disk is SQLite's `max_page_count` on the daemon's own connection; a lock is another
connection holding `BEGIN EXCLUSIVE`. The read-only case runs the real `alertd run`; as root
(where file modes do not bind) the subprocess drops CAP_DAC_OVERRIDE first.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import sqlite3
import subprocess
import sys
import threading

import httpx
import pytest
from configs import config_text, rule
from daemon_process import ROOT
from structlog.testing import capture_logs

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels
from alertd.store import Store
from alertd.store.errors import StoreError


def site_config(store) -> str:
    return config_text(plugin_dirs=[str(ROOT / "tests" / "plugins")], store=str(store),
                       sources={"app": {"type": "test_list", "every": "10s"}})



@pytest.fixture
def site(write_config, registry, tmp_path, clock):
    path = write_config(site_config(tmp_path / "alertd.db"), "alertd.yaml")
    config = load_config(path, registry, environ={})

    class Site:
        store = tmp_path / "alertd.db"
        config_path = path

        def daemon(self) -> Daemon:
            d = Daemon(config, registry, clock=clock)
            sys.modules[registry.get("notifier", "test_record").__module__].SENT.clear()  # shared: start empty
            return d
    return Site()


def sent_log(d: Daemon) -> list:
    return sys.modules[type(d.notifiers[("rec", 0)]).__module__].SENT


def cpu(clock, hosts, value) -> list[Sample]:
    return [Sample("cpu", make_labels({"host": h}), clock.now(), value) for h in hosts]


def integrity(path) -> str:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


# -- read-only -------------------------------------------------------------------------------

def _drop_dac():
    """In the child: give up root's right to ignore file modes (CAP_DAC_OVERRIDE & co)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP: gone from the bounding set at exec


@pytest.mark.parametrize("what", ["file", "directory"])
def test_a_read_only_store_stops_the_start_with_one_sentence(site, what):
    Store(site.store).close()  # an existing store, then made read-only
    before = site.store.read_bytes()
    target = site.store if what == "file" else site.store.parent
    mode = target.stat().st_mode
    target.chmod(0o500 if what == "directory" else 0o400)
    try:
        proc = subprocess.run([sys.executable, "-m", "alertd.cli.entry", "run", "-c", str(site.config_path)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)},
                              preexec_fn=_drop_dac if os.geteuid() == 0 else None)
    finally:
        target.chmod(mode)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()  # one JSON line: stdout is no TTY, as under systemd
    # (a read-only directory: the lock file beside the store cannot be made, before SQLite tries)
    why = "attempt to write a readonly database" if what == "file" else \
        f"cannot create {site.store}.lock beside it: Permission denied"
    assert len(lines) == 1 and json.loads(lines[0])["event"] == "daemon_start_failed"
    assert json.loads(lines[0])["error"] == (
        f"the store {site.store} is read-only ({why}); "
        "make the file, its -wal/-shm files and its directory writable by the user alertd runs as")
    assert site.store.read_bytes() == before and integrity(site.store) == "ok"


# -- locked by another writer -------------------------------------------------------------------

def test_a_store_locked_at_start_waits_for_the_lock_then_says_who_holds_it(site):
    Store(site.store).close()
    other = sqlite3.connect(site.store, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreError, match=r"is locked by another writer \(database is locked\); stop the other"):
        Store(site.store, busy_timeout=0.2, check_writable=True)
    # released while the opener waits (busy_timeout): it opens, nothing to do by hand
    opened = []

    def open_and_close():
        store = Store(site.store, busy_timeout=30, check_writable=True)
        opened.append(store.get_kv("store_opened_at"))
        store.close()
    opener = threading.Thread(target=open_and_close)
    opener.start()
    other.execute("COMMIT")
    opener.join(30)
    assert len(opened) == 1 and opened[0] is not None
    other.close()


def test_a_lock_while_running_fails_the_tick_and_the_send_then_both_are_retried(site, clock):
    async def main():
        d = site.daemon()
        await d.open()
        d.store.db.execute("PRAGMA busy_timeout = 100")
        src = d.sources["app"]
        src.pending = cpu(clock, ["a"], 95)
        await d.poll("app")  # fires and queues the notice
        other = sqlite3.connect(site.store, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with capture_logs() as logs:
            clock.advance(10)
            src.pending = cpu(clock, ["b"], 97)
            await d.poll("app")  # its transaction cannot start: nothing of it is stored
            with pytest.raises(sqlite3.OperationalError):
                await d.pass_once()  # cannot write: the row stays pending
        other.execute("COMMIT")
        other.close()
        clock.advance(10)
        src.pending = cpu(clock, ["b"], 97)  # the source has it again (its position did not move)
        await d.poll("app")
        await d.pass_once()
        clock.advance(10)
        await d.pass_once()
        statuses = [r["status"] for r in d.store.outbox.rows()]
        await d.drain()
        return logs, statuses, [n.incidents[0].labels for n in sent_log(d)], list(sent_log(d))

    logs, statuses, labels, sent = asyncio.run(main())
    failed = [e for e in logs if e["event"] == "tick_failed"]
    assert len(failed) == 1 and "is locked by another writer" in failed[0]["error"]
    assert failed[0]["retry"] == "next poll"
    assert statuses == ["sent", "sent"]
    # host a was queued before the lock and is delivered after it; b fired at the retried poll
    by_key = {n.idempotency_key: dict(n.incidents[0].labels)["host"] for n in sent}
    assert sorted(by_key.values()) == ["a", "b"] and len(sent) in (2, 3)  # 3: one re-sent, same key
    assert integrity(site.store) == "ok"


# -- full disk --------------------------------------------------------------------------------

@pytest.mark.parametrize("room", [0, 1, 2, 4])
def test_a_full_disk_fails_ticks_clearly_keeps_running_and_loses_nothing_committed(site, clock, room):
    """`room` free pages: the transaction fails at different writes (samples, incidents, outbox)."""
    async def main():
        d = site.daemon()
        await d.open()
        src = d.sources["app"]
        src.pending = cpu(clock, ["a"], 99)
        await d.poll("app")
        await d.pass_once()
        before = d.store.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        pages = d.store.db.execute("PRAGMA page_count").fetchone()[0]
        d.store.db.execute(f"PRAGMA max_page_count = {pages + room}")
        hosts = [f"h{i}" for i in range(200)]
        with capture_logs() as logs:
            for _ in range(3):
                clock.advance(10)
                src.pending = cpu(clock, ["a", *hosts], 99)
                await d.poll("app")
                await d.pass_once()
        kept = d.store.db.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
        d.store.db.execute("PRAGMA max_page_count = 1073741823")  # space freed
        clock.advance(10)
        src.pending = cpu(clock, ["a", *hosts], 99)
        await d.poll("app")
        for _ in range(3):
            await d.pass_once()
            clock.advance(10)
        fired = {r[0] for r in d.store.db.execute("SELECT json_extract(labels, '$.host') FROM incidents")}
        pending = d.store.outbox.pending_count()
        await d.drain()
        return logs, before, kept, fired, pending, sent_log(d)

    logs, before, kept, fired, pending, sent = asyncio.run(main())
    failed = [e for e in logs if e["event"] == "tick_failed"]
    assert failed and all("is full (database or disk is full); free space" in e["error"] for e in failed)
    assert kept >= before  # what was committed before the disk filled is still there
    assert fired == {"a", *(f"h{i}" for i in range(200))}  # every host fired once space was back
    notified = [dict(i.labels)["host"] for n in sent for i in n.incidents]
    assert sorted(set(notified)) == sorted(fired) and pending == 0
    assert integrity(site.store) == "ok"


# -- what push and logfile collected during a fault ----------------------------------------------

@pytest.mark.parametrize("fault", ["locked", "full"])
def test_a_failed_tick_keeps_what_push_and_logfile_had_collected(write_config, registry, tmp_path, clock, fault):
    """A push answered 202 and a log line written while ticks fail still fire afterwards: the
    sources hand the same data over again until a tick commits (Source.committed)."""
    log = tmp_path / "app.log"
    log.write_text("started\n")
    path = write_config(config_text(
        plugin_dirs=[str(ROOT / "tests" / "plugins")], store=str(tmp_path / "alertd.db"),
        sources={"shop": {"type": "push", "port": 0, "cron": "0 0 1 1 *"},
                 "web": {"type": "logfile", "path": str(log), "cron": "0 0 1 1 *",
                         "metrics": [{"name": "app_errors", "regex": "ERROR"}]}},
        rules=[rule("checkout_failing", source="shop", series="checkout_failures", limit=0),
               rule("app_erroring", source="web", series="app_errors", limit=0)]), "alertd.yaml")
    config = load_config(path, registry, environ={})

    async def main():
        d = Daemon(config, registry, clock=clock)
        await d.open()
        d.store.db.execute("PRAGMA busy_timeout = 100")
        for name in ("shop", "web"):
            await d.poll(name)  # the log's end is where reading starts
        other = sqlite3.connect(tmp_path / "alertd.db", isolation_level=None)
        if fault == "locked":
            other.execute("BEGIN EXCLUSIVE")
        else:
            pages = d.store.db.execute("PRAGMA page_count").fetchone()[0]
            d.store.db.execute(f"PRAGMA max_page_count = {pages}")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.sources['shop'].port}") as client:
            filler = [{"name": "queue_depth", "value": 1, "labels": {"queue": f"q{i}"}} for i in range(300)]
            answer = await client.post("/push", json=[{"name": "checkout_failures", "value": 7, "ts": clock.now()},
                                                      *filler])  # (300 new series: the full disk shows)
        with open(log, "a") as f:
            f.write("ERROR payment declined\n")
        with capture_logs() as logs:
            for _ in range(2):  # the fault lasts two polls
                clock.advance(10)
                await d.poll("shop")
                await d.poll("web")
        if fault == "locked":
            other.execute("COMMIT")
        else:
            d.store.db.execute("PRAGMA max_page_count = 1073741823")
        other.close()
        clock.advance(10)
        await d.poll("shop")
        await d.poll("web")
        fired = {r[0] for r in d.store.db.execute("SELECT rule FROM incidents WHERE fired_at IS NOT NULL")}
        await d.drain()
        return answer.status_code, [e for e in logs if e["event"] == "tick_failed"], fired

    status, failed, fired = asyncio.run(main())
    # a lock fails every tick; a full disk the push's (300 new series), not the one log line's
    assert status == 202 and {e["source"] for e in failed} == ({"shop", "web"} if fault == "locked" else {"shop"})
    assert fired == {"checkout_failing", "app_erroring"}
    assert integrity(tmp_path / "alertd.db") == "ok"
