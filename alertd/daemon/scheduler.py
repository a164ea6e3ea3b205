"""APScheduler 3 jobs: one per source, coalescing, one instance at a time, with jitter."""

from __future__ import annotations

from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger


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
