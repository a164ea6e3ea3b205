"""Every job of the daemon's real scheduler, run once for real (the real AsyncIOScheduler and
its executor on the system clock; only the next run time is set to now): retention prunes,
silent series go, the heartbeat commits, and no job runs off the event loop.

Before issue 16, `prune` and `housekeeping` were plain functions, which APScheduler runs in
its thread pool: prune raised `sqlite3.ProgrammingError` (the store's connection belongs to
the loop's thread) every 10 minutes and samples were never pruned.
"""

from __future__ import annotations

import asyncio
import time

from configs import config_text
from scheduler_helpers import run_every_job_once

from alertd.clock import SystemClock
from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.daemon.scheduler import prune_every
from alertd.model import Incident, Sample, make_labels
from alertd.store import Store


def _seed(path, now: float) -> None:
    """A store with a day of old samples, recent ones, a series silent for a day, and an
    incident resolved 40 days ago (past the default history_retention, 30 days)."""
    store = Store(path)
    with store.atomic():
        store.incidents.save(Incident("f0", "cpu_high", {"host": "a"}, "resolved", "warning",
                                      started_at=now - 40 * 86400, fired_at=now - 40 * 86400,
                                      resolved_at=now - 40 * 86400 + 60))
    a, gone = make_labels({"host": "a"}), make_labels({"host": "gone"})
    with store.atomic():
        store.samples.append([Sample("cpu", gone, now - 86400 + i, 1.0) for i in range(50)], "app",
                             now=now - 86400)
        store.samples.append([Sample("cpu", a, now - 86400 + 60 * i, 1.0) for i in range(100)], "app",
                             now=now - 86400)
        store.samples.append([Sample("cpu", a, now - 30 + i, 2.0) for i in range(10)], "app", now=now)
    store.close()


def test_every_job_runs_on_the_loop_and_retention_prunes_samples_and_silent_series(write_config, registry, tmp_path):
    config = load_config(write_config(config_text(
        retention="2m", sources={"app": {"type": "test_list", "every": "1m"}})), registry, environ={})
    store_path = tmp_path / "alertd.db"
    now = time.time()
    _seed(store_path, now)

    async def main():
        d = Daemon(config, registry, store_path=store_path, clock=SystemClock())
        await d.start()
        try:
            jobs = {job.id: job for job in d.scheduler.get_jobs()}
            events = await run_every_job_once(d.scheduler)
            counts = d.store.samples.count(), d.store.samples.span()[0]
            series = [r["key"] for r in d.store.samples.series()]
            heartbeat = d.store.get_kv("heartbeat")
            incidents = d.store.incidents.list(include_closed=True)
            ran = {job: d.metrics.registry.get_sample_value("alertd_scheduler_jobs_total",
                                                            {"job": job, "outcome": "ok"}) for job in jobs}
            return jobs, events, counts, series, heartbeat, d.health_problems(), ran, incidents
        finally:
            await d.drain()

    jobs, events, (count, oldest), series, heartbeat, problems, ran, incidents = asyncio.run(main())
    assert set(jobs) == {"source:app", "store:prune", "store:seal", "daemon:housekeeping", "daemon:memory"}
    # coroutine functions run as tasks on the loop; a plain function would go to the thread pool
    assert all(asyncio.iscoroutinefunction(job.func) for job in jobs.values())
    assert set(events) == set(jobs)
    assert {job_id: event.exception for job_id, event in events.items()} == dict.fromkeys(jobs)
    assert count == 10 and oldest >= now - 120  # the day of old samples is gone; the last 2 minutes stay
    assert series == ['cpu{host="a"}']  # the series silent for a day went with its samples
    assert incidents == []  # the incident resolved 40 days ago went (history_retention)
    assert heartbeat is not None and heartbeat >= now and problems == []
    assert all(n >= 1 for n in ran.values()), ran  # alertd_scheduler_jobs_total{job, outcome="ok"}


def test_the_prune_interval_follows_a_short_retention():
    assert prune_every(7 * 86400) == 600 and prune_every(120) == 60 and prune_every(1) == 1


def test_the_seal_job_seals_complete_windows_into_chunks_keeping_every_sample(write_config, registry, tmp_path):
    config = load_config(write_config(config_text(
        retention="1d", sources={"app": {"type": "test_list", "every": "1m"}})), registry, environ={})
    store_path = tmp_path / "alertd.db"
    now = time.time()
    store = Store(store_path)
    a = make_labels({"host": "a"})
    points = [(now - 3 * 3600 + 10 * i, float(i % 97)) for i in range(3 * 360)]  # 3 h every 10 s
    with store.atomic():
        store.samples.append([Sample("cpu", a, ts, v) for ts, v in points], "app", now=now)
    store.close()

    async def main():
        d = Daemon(config, registry, store_path=store_path, clock=SystemClock())
        await d.start()
        try:
            await run_every_job_once(d.scheduler)
            head = d.store.db.execute("SELECT count(*) FROM samples").fetchone()[0]
            assert d.metrics.registry.get_sample_value("alertd_samples_sealed_total") == len(points) - head
            chunks = d.store.db.execute("SELECT count(*), sum(n) FROM sample_chunks").fetchone()
            return head, chunks, d.store.samples.history('cpu{host="a"}', source="app")
        finally:
            await d.drain()

    head, (chunks, sealed), (ts, values) = asyncio.run(main())
    assert chunks >= 5 and sealed + head == len(points) and head < 2 * 180  # only the open window stays
    assert list(ts) == [p[0] for p in points] and list(values) == [p[1] for p in points]
