"""APScheduler 3 jobs: one per source, coalescing, one instance at a time, with jitter; and
the daemon's own periodic jobs.

Every job is a coroutine function, so APScheduler's AsyncIOExecutor runs it as a task on the
event loop; a plain function would run in its thread pool, beside the tick, where the store
(a SQLite connection made on the loop's thread) refuses to be used.

APScheduler keeps its next run times on the wall clock. When the clock steps back, those
times are that much further away and nothing would run until the clock catches up; the
daemon's clock-step guard (alertd/daemon/clock_steps.py) sees the step within a second and
calls `follow_clock_step`, which moves every job's next run back by the step.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

HOUSEKEEPING_EVERY = 10.0  # seconds: due model fits, silence checks, the store heartbeat


def trigger_for(source):
    """The trigger of a SourceConfig: `every` (interval with jitter) or `cron`."""
    if source.cron:
        return CronTrigger.from_crontab(source.cron, timezone=timezone.utc)
    return IntervalTrigger(seconds=source.every, jitter=source.jitter or None)


def make_scheduler() -> AsyncIOScheduler:
    return AsyncIOScheduler(timezone=timezone.utc, job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 30})


def schedule_source(scheduler: AsyncIOScheduler, source, poll, *, first_now: bool = True) -> None:
    """Add (or replace) the job polling `source` by calling `await poll(name)`."""
    kwargs = {"next_run_time": datetime.now(timezone.utc)} if first_now and not source.cron else {}
    scheduler.add_job(poll, trigger_for(source), args=[source.name], id=f"source:{source.name}",
                      name=f"poll {source.name}", replace_existing=True, **kwargs)


SEAL_EVERY = 60.0
MEMORY_EVERY = 300.0  # seconds between two garbage collections and hand-backs of freed memory


def prune_every(retention: float) -> float:
    """Seconds between two runs of the prune job: every 10 minutes, or half the retention
    when that is shorter (so no sample outlives `retention` by more than half of it)."""
    return max(1.0, min(600.0, retention / 2))


def schedule_daemon_jobs(scheduler: AsyncIOScheduler, daemon) -> None:
    """The daemon's own jobs: pruning the store, sealing its samples into chunks,
    housekeeping (fits, silences, heartbeat), and collecting cyclic garbage and (with glibc)
    handing freed memory back."""
    scheduler.add_job(daemon.prune, IntervalTrigger(seconds=prune_every(daemon.config.retention)),
                      id="store:prune", name="prune the store", replace_existing=True)
    # every minute: a window's samples leave the head soon after it closes (two seeks when none has)
    scheduler.add_job(daemon.seal, IntervalTrigger(seconds=SEAL_EVERY),
                      id="store:seal", name="seal samples into chunks", replace_existing=True)
    scheduler.add_job(daemon.housekeeping_job, IntervalTrigger(seconds=HOUSEKEEPING_EVERY),
                      id="daemon:housekeeping", name="housekeeping", replace_existing=True)
    scheduler.add_job(daemon.release_memory, IntervalTrigger(seconds=MEMORY_EVERY),
                      id="daemon:memory", name="collect garbage, hand freed memory back", replace_existing=True)


def follow_clock_step(scheduler: AsyncIOScheduler, step: float) -> list[str]:
    """After the wall clock stepped back by `-step` seconds: every job's next run moves back
    by as much (an interval job keeps its remaining wait; a cron job runs at its next wall
    time after now). Returns the ids of the jobs moved."""
    moved = []
    now = datetime.now(timezone.utc)
    for job in scheduler.get_jobs():
        if job.next_run_time is None:  # paused
            continue
        if isinstance(job.trigger, CronTrigger):
            when = job.trigger.get_next_fire_time(None, now)
        else:
            when = job.next_run_time + timedelta(seconds=step)
        if when is not None and when != job.next_run_time:
            job.modify(next_run_time=when)
            moved.append(job.id)
    return moved
