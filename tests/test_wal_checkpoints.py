"""WAL checkpoints off the tick's path (alertd/store/checkpoint.py, alertd/daemon/wal.py):
the daemon's commits no longer copy the log into the database file; the daemon does it
after ticks (at most one every GAP seconds), on its own connection in a worker thread."""

from __future__ import annotations

import asyncio
import os
import sqlite3

from configs import NEVER, config_text, rule

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.daemon.wal import GAP
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

    monotonic = [1000.0]

    async def finished(daemon):
        while daemon.wal.running():  # (a worker thread: nothing to pass a clock to)
            await asyncio.sleep(0.005)
        return daemon.wal.runs

    async def scenario():
        daemon = Daemon(cfg, registry, store_path=path, clock=clock, monotonic=lambda: monotonic[0])
        await daemon.start()
        daemon.scheduler.pause()
        monotonic[0] += GAP
        runs = [await finished(daemon)]
        source = daemon.sources["app"]
        for i, step in enumerate((0.0, 1.0, GAP)):  # a poll, one a second later, one GAP later
            monotonic[0] += step
            source.pending = [Sample("cpu", make_labels({"host": f"h{k}"}), clock.now() + i, 10.0)
                              for k in range(50 * (i + 1))]
            await daemon.poll("app")
            if i == 0:
                assert daemon.wal.running()  # started once the tick was over; the loop did not wait
            runs.append(await finished(daemon))
            if i == 0:
                first = in_file(path, "SELECT count(*) FROM series")
        await daemon.drain()
        return runs, first, in_file(path, "SELECT count(*) FROM series")

    runs, first, last = asyncio.run(scenario())
    assert [r - runs[0] for r in runs] == [0, 1, 1, 2]  # the second poll came too soon after the first
    assert first == [(50,)]  # the tick's writes are in the database file, not only in the log
    assert last == [(150,)]


def test_the_checkpointer_never_creates_a_store_that_is_gone(tmp_path):
    import sqlite3

    import pytest

    from alertd.store.checkpoint import Checkpointer

    path = tmp_path / "gone.db"
    with pytest.raises(sqlite3.OperationalError):
        Checkpointer(str(path)).run()
    assert not path.exists()  # the daemon's store-file check must still see it missing
