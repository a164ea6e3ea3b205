"""Run every job of a daemon's real APScheduler once, now, and wait for each to finish.

The jobs run exactly as in production: the real AsyncIOScheduler and its executor, with the
system clock; only their next run time is set to now. The wait is for the scheduler's own
"executed" or "error" events (bounded), never a sleep for a timer.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED


async def run_every_job_once(scheduler, timeout: float = 30.0, only=None) -> dict[str, object]:
    """{job id: its APScheduler event} once every job (or those in `only`) ran once."""
    loop = asyncio.get_running_loop()
    jobs = [job for job in scheduler.get_jobs() if only is None or job.id in only]
    waiting = {job.id for job in jobs}
    events: dict[str, object] = {}
    done = asyncio.Event()

    def listener(event):
        def note():
            if event.job_id in waiting and event.job_id not in events:
                events[event.job_id] = event
                if set(events) == waiting:
                    done.set()
        if threading.get_ident() == threading.main_thread().ident and loop.is_running():
            note()
        else:
            loop.call_soon_threadsafe(note)

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    try:
        now = datetime.now(timezone.utc)
        for job in jobs:
            job.modify(next_run_time=now)
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        scheduler.remove_listener(listener)
    return events
