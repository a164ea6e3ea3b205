"""WAL checkpoints off the tick's path (alertd/store/checkpoint.py, alertd/daemon/wal.py):
the daemon's commits no longer copy the log into the database file; the daemon does it
after each tick, on its own connection in a worker thread."""

from __future__ import annotations

import asyncio
import os
import sqlite3

from configs import NEVER, config_text, rule

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels
from alertd.store import Store
from alertd.store.checkpoint import AUTO_PAGES

BIG = "x" * (5 << 20)  # 5 MiB: about 1,300 pages of log, past SQLite's default threshold (1,000)


def in_file(path, sql: str):
    """What the database file itself holds, without its log (what a checkpoint copied)."""
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return db.execute(sql).fetchall()
    except sqlite3.OperationalError:  # (the table is not in the file yet)
        return []
    finally:
        db.close()


def test_a_big_commit_checkpoints_by_itself_unless_the_checkpointer_took_it_over(tmp_path):
    plain = Store(tmp_path / "plain.db")
    with plain.atomic():
        plain.set_kv("big", BIG)
    assert os.path.getsize(tmp_path / "plain.db") > len(BIG)  # SQLite copied it in the commit
    plain.close()

    store = Store(tmp_path / "s.db")
    checkpointer = store.checkpointer()
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == AUTO_PAGES
    size = os.path.getsize(tmp_path / "s.db")
    with store.atomic():
        store.set_kv("big", BIG)
    assert os.path.getsize(tmp_path / "s.db") == size  # the commit only appended to the log
    assert os.path.getsize(str(tmp_path / "s.db") + "-wal") > len(BIG)
    assert in_file(tmp_path / "s.db", "SELECT key FROM kv WHERE key = 'big'") == []
    pages, copied = checkpointer.run()
    assert pages == copied > 1000
    assert in_file(tmp_path / "s.db", "SELECT key FROM kv WHERE key = 'big'") == [("big",)]
    assert store.get_kv("big") == BIG  # the writer reads on as before
    checkpointer.close()
    assert checkpointer.run() == (0, 0)  # closed: nothing more
    store.close()


def test_an_in_memory_store_has_no_log_to_checkpoint():
    store = Store(":memory:")
    assert store.checkpointer() is None
    store.close()


def test_the_daemon_checkpoints_after_each_tick_in_a_worker_thread(write_config, registry, clock, tmp_path):
    cfg = load_config(write_config(config_text(
        http=None, sources={"app": {"type": "test_list", "cron": NEVER}},
        rules=[rule("high", series="cpu", limit=90)], receivers={"rec": [{"type": "test_record"}]},
        routes={"receiver": "rec"})), registry, environ={})
    path = tmp_path / "d.db"

    async def scenario():
        daemon = Daemon(cfg, registry, store_path=path, clock=clock)
        await daemon.start()
        daemon.scheduler.pause()
        while daemon.wal.running():  # (one may have started with the start's own writes)
            await asyncio.sleep(0.005)
        runs = daemon.wal.runs
        source = daemon.sources["app"]
        source.pending = [Sample("cpu", make_labels({"host": f"h{i}"}), clock.now(), 10.0) for i in range(50)]
        await daemon.poll("app")
        assert daemon.wal.running()  # started once the tick was over; the loop did not wait for it
        while daemon.wal.running():
            await asyncio.sleep(0.005)
        after = daemon.wal.runs, in_file(path, "SELECT count(*) FROM series")
        await daemon.drain()
        return runs, after

    runs, (after_runs, series) = asyncio.run(scenario())
    assert after_runs == runs + 1
    assert series == [(50,)]  # the tick's writes are in the database file, not only in the log
