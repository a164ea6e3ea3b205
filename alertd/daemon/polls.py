"""Polling: one source's poll and its tick, the retention and housekeeping jobs.

`Polling` is mixed into `Daemon`: `poll(name)` is what the scheduler runs for each source
(collect with a time limit, then the tick: samples, scores, alert states, all in one
transaction with the source's read position), `prune`, `seal` and `housekeeping_job` are the daemon's
periodic jobs (coroutines: they run on the event loop, where the store lives; see
alertd/daemon/scheduler.py). Errors are logged, counted and survived: one source or tick
never takes the daemon down.
"""

from __future__ import annotations

import asyncio
import gc
import time

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_SUBMITTED

from .. import memory_trim
from ..base import SourceError
from ..log import redact_text
from ..model import forget_unused_series_keys
from ..store.errors import explain, is_store_error
from .gc_tuning import FirstSliceGC

SETTLE_SECONDS = 0.025  # longest a tick waits between slices for the last one's notices to leave
SETTLE_STEP = 0.0005
PRUNE_STEP = 20_000  # samples deleted per transaction; the loop runs other work between steps


class Polling:
    """Source polls, ticks and the periodic jobs of a `Daemon`."""

    async def prune(self) -> int:
        """Drop samples older than the config's `retention`, then the series silent for
        longer than that (store rows and the engine's windows), then what is older than
        `history_retention` (`prune_history`). Runs every 10 minutes (or half
        the retention), on the event loop, in steps (PRUNE_STEP head rows, or one chunk window)
        so that a big delete does not hold up ticks. Returns the samples deleted."""
        cutoff = self.clock.now() - self.config.retention
        deleted = 0
        try:
            while True:
                with self.store.atomic():
                    step = self.store.samples.prune(cutoff, limit=PRUNE_STEP)
                deleted += step
                if not step or self.store is None:
                    break
                await asyncio.sleep(0)
            async with self.tick_lock:  # a tick between slices holds row numbers of the windows
                dropped = self.engine.drop_silent(cutoff)
                self.trainer.series_dropped(dropped)
            with self.store.atomic():
                gone = self.store.samples.drop_silent(cutoff)
            if gone:
                forget_unused_series_keys(self.store.samples.index.known())
        except Exception as exc:
            error = self._error_text(exc)
            self.log.error("prune_failed", error=error, deleted=deleted, retry="next prune")
            return deleted
        self.metrics.samples_pruned.inc(deleted)
        self.metrics.series_dropped.inc(len(gone))
        forgotten = sum(len(keys) for _, keys in dropped.values())
        if deleted or gone or forgotten:
            self.log.info("samples_pruned", deleted=deleted, retention=self.config.retention,
                          series_dropped=len(gone), window_rows_dropped=forgotten)
        await self.prune_history()
        return deleted

    async def prune_history(self) -> dict[str, int]:
        """Drop resolved incidents, finished notices, delivery attempts, expired silences and
        notifier state older than `history_retention` (alertd/store/history_retention.py), in
        steps, yielding to the loop between them. Part of the prune job."""
        cutoff = self.clock.now() - self.config.history_retention
        total: dict[str, int] = {}
        try:
            while self.store is not None:
                with self.store.atomic():
                    step = self.store.history_retention.prune_step(cutoff)
                for kind, n in step.items():
                    total[kind] = total.get(kind, 0) + n
                if not any(step.values()):
                    break
                await asyncio.sleep(0)
        except Exception as exc:
            self.log.error("history_prune_failed", error=self._error_text(exc), retry="next prune")
        for kind, n in total.items():
            if n:
                self.metrics.history_pruned.labels(kind).inc(n)
        if any(total.values()):
            self.log.info("history_pruned", history_retention=self.config.history_retention,
                          **{k: n for k, n in total.items() if n})
        return total

    async def seal(self) -> int:
        """Seal the head's complete time windows into compressed chunks (see
        alertd/store/sample_chunks.py), a slice of series per transaction, yielding to the loop
        between slices. The `store:seal` job, every minute; returns the samples sealed."""
        sealed = 0
        try:
            while self.store is not None:
                with self.store.atomic():
                    step = self.store.samples.seal()
                if step < 0:
                    break
                sealed += step
                await asyncio.sleep(0)
        except Exception as exc:
            error = self._error_text(exc)
            self.log.error("seal_failed", error=error, sealed=sealed, retry="next minute")
        self.metrics.samples_sealed.inc(sealed)
        if sealed:
            self.log.info("samples_sealed", samples=sealed)
        return sealed

    async def housekeeping_job(self) -> None:
        """Every 10 s: due fits and silence checks for all sources, and a heartbeat write,
        so health knows whether the store takes writes even when no source is due."""
        async with self.tick_lock:  # not between the slices of a tick
            self.housekeeping()
        try:
            with self.store.atomic():
                self.store.set_kv("heartbeat", self.clock.now())
            self.metrics.last_commit.set(self.clock.now())
        except Exception as exc:  # noted in store.health; health reports it after a while
            self.log.warning("heartbeat_failed", error=explain(exc, str(self.store_path)))
        self.wal.soon()  # (a daemon without polls: posted alerts, deliveries)
        self.check_store_file()

    async def release_memory(self) -> None:
        """Every 5 minutes: collect cyclic garbage (alertd/daemon/gc_tuning.py: the raised
        thresholds let libraries' cycles wait an hour or more), then hand the memory freed
        since back to the system (alertd/memory_trim.py: glibc keeps the freed fragments of
        polls' arrays and rows). The collection runs here, on the loop, so finalizers of
        asyncio's objects run on their own thread; it takes milliseconds (frozen start-up
        objects are not walked). The trim runs in a thread, which the call leaves the GIL to."""
        try:
            self.metrics.garbage_collected.inc(gc.collect())
            released = await asyncio.to_thread(memory_trim.trim)  # (None without glibc)
        except Exception as exc:  # never let it take the daemon down
            self.log.warning("memory_release_failed", error=f"{type(exc).__name__}: {exc}")
            return
        if released:
            self.metrics.memory_released.inc(released)
            self.log.debug("memory_released", mib=round(released / 2**20, 1))

    def housekeeping(self, source: str | None = None) -> None:
        """Due model fits and silence checks: after each poll of `source`, and every 10 s for
        all sources (time-based fit schedules, sources that stopped answering)."""
        try:
            self.trainer.poll()  # fits run in a worker thread: this only submits them
            self.grouped(self.engine.check_absent(source))
        except Exception as exc:  # never let it take the daemon down
            self.log.exception("housekeeping_failed", source=source, error=f"{type(exc).__name__}: {exc}")

    def _on_job_event(self, event) -> None:
        """APScheduler events: every job's runs (counted), when each poll was due (for the
        lag), and polls that never ran."""
        if event.code in (EVENT_JOB_EXECUTED, EVENT_JOB_ERROR):
            failed = event.code == EVENT_JOB_ERROR
            self.metrics.jobs.labels(event.job_id, "error" if failed else "ok").inc()
            if failed:  # (the jobs catch their own errors: this is a bug)
                self.log.error("job_failed", job=event.job_id, error=f"{type(event.exception).__name__}: "
                               f"{event.exception}", exception=event.traceback)
            return
        if not event.job_id.startswith("source:"):
            return
        name = event.job_id.split(":", 1)[1]
        if event.code == EVENT_JOB_SUBMITTED:
            due = event.scheduled_run_times[-1] if event.scheduled_run_times else None
            self._scheduled[name] = due.timestamp() if due else time.time()
        else:
            reason = "still_running" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
            self.metrics.polls_skipped.labels(name, reason).inc()
            self.log.warning("poll_skipped", source=name, reason=reason)

    async def poll(self, name: str) -> None:
        """Collect from one source and run the tick, then due fits and silence checks; errors
        are logged, counted, survived."""
        sc = self.config.sources.get(name)
        if sc is None or self.draining:
            return  # removed by a reload, or stopping
        self._polls[name] = asyncio.current_task()
        self.progress.poll_started(name)
        due = self._scheduled.pop(name, None)
        if due is not None:
            self.metrics.tick_lag.labels(name).observe(max(0.0, time.time() - due))
        try:
            await self._poll(name, sc)
        finally:
            self._polls.pop(name, None)
            if self.first_poll_at is None:
                self.first_poll_at = self.clock.now()
        async with self.tick_lock:
            self.housekeeping(name)
        self.wal.soon()  # the tick is over: its log pages go into the file now, off its path (wal.py)

    async def _poll(self, name: str, sc) -> None:
        self.metrics.source_polls.labels(name).inc()
        try:
            samples = await asyncio.wait_for(self.sources[name].collect(), sc.timeout)
        except asyncio.TimeoutError:
            self._poll_failed(name, "timeout", f"no answer within {sc.timeout:g}s")
            return
        except SourceError as exc:
            self._poll_failed(name, exc.reason, str(exc)[:300])
            return
        except Exception as exc:
            self._poll_failed(name, "error", f"{type(exc).__name__}: {exc}"[:300])
            return
        async with self.tick_lock:  # one tick at a time (its slices hand the loop back)
            await self._tick(name, self.sources[name], samples)

    async def _tick(self, name: str, source, samples) -> None:
        if not samples:
            self._commit(source, name)
            if source.empty_ok:  # nothing happened since the last poll: not a failure
                self.log.debug("source_polled", source=name, samples=0, skipped=0)
            else:
                self._poll_failed(name, "empty", "the poll returned no samples")
            return
        detector_errors = dict(self.engine.detector_errors)
        # samples and the source's read position commit together, with the first slice; the
        # history of new series is read while the loop runs (alertd/engine/seeding.py)
        tick = self.engine.tick(name, samples, consumed=source.commit, off_loop=True)
        try:
            await self._run_tick(tick)
        except Exception as exc:  # never let one tick take the daemon down
            self.metrics.source_errors.labels(name, "tick").inc()
            if is_store_error(exc):  # full, locked, read-only: the next poll retries
                error = explain(exc, str(self.store_path))
                self.log.error("tick_failed", source=name, error=error,
                               retry="the poll's samples are stored; the next poll is scored as usual"
                               if tick.stored else "next poll")
            else:
                error = f"{type(exc).__name__}: {exc}"
                self.log.exception("tick_failed", source=name, error=error)
            self.progress.tick_failed(name, error)
            if tick.stored:
                self._committed(source, name)
            return  # if not stored, the source did not consume: its next collect brings these samples again
        result = tick.result
        self.progress.tick_ok(name)
        self._committed(source, name)
        if not result.stored:
            self._poll_failed(name, "unusable", f"none of the {result.skipped} samples had a usable value")
            return
        self.log.debug("source_polled", source=name, samples=result.stored, skipped=result.skipped)
        self._plugin_health(lambda: [self.plugin_health.source_ok(name),
                                     *self.plugin_health.detectors(detector_errors)])
        self.grouped(result)

    async def _run_tick(self, tick) -> None:
        """Run a poll's tick, letting the event loop work between its slices: the group
        timer flushes what a slice changed and the delivery worker sends it while the
        detector scores the next slice (alertd/engine/slices.py)."""
        steps = tick.steps()
        collector = FirstSliceGC()  # no collection before the first slice's notices are out
        try:
            for pause in steps:
                if pause.call is not None:
                    if not pause.before_slices:  # (a later slice's call: the first one's notices are out)
                        collector.release()
                    await pause.call.wait()
                else:  # a slice committed transitions: its notices first
                    self.group_timer.wake()
                    await self._settle(SETTLE_SECONDS)
                    collector.release()
        finally:
            collector.release()
            steps.close()  # cancelled between slices (stopping): the rest goes in unscored

    async def _settle(self, limit: float) -> None:
        """Let the group timer flush and the delivery worker send what a slice queued (up to
        `limit` seconds: a slow receiver holds the tick no longer), before the detector takes
        the CPU for the next slice: on two cores its thread would slow the sends down."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        await asyncio.sleep(0)
        while loop.time() < deadline and (self.group_timer.pending() or self.delivery.busy()):
            await asyncio.sleep(SETTLE_STEP)

    def _error_text(self, exc: BaseException) -> str:
        """One sentence for a log line: a store error explained (with the store's path), any
        other as its type and message."""
        return explain(exc, str(self.store_path)) if is_store_error(exc) else f"{type(exc).__name__}: {exc}"

    def _plugin_health(self, update) -> None:
        """Open or resolve failing-plugin meta-incidents (alertd.daemon.plugin_health); never raises."""
        try:
            for result in update():
                self.grouped(result)
        except Exception as exc:
            self.log.error("plugin_health_failed", error=f"{type(exc).__name__}: {exc}")

    def _commit(self, source, name: str) -> None:
        try:
            with self.store.atomic():
                source.commit()
        except Exception as exc:
            error = self._error_text(exc)
            self.log.warning("source_commit_failed", source=name, error=error)
            self.progress.tick_failed(name, error)
            return
        self.progress.tick_ok(name)
        self._committed(source, name)

    def _committed(self, source, name: str) -> None:
        """The tick committed: the source may now forget what it handed over (Source.committed)."""
        try:
            source.committed()
        except Exception as exc:
            self.log.exception("source_commit_failed", source=name, error=f"{type(exc).__name__}: {exc}")

    def _poll_failed(self, name: str, reason: str, error: str) -> None:
        error = redact_text(error)  # an excerpt of an answer may echo a token back
        self.metrics.source_errors.labels(name, reason).inc()
        self.log.warning("source_failed", source=name, reason=reason, error=error)
        try:
            result = self.engine.source_failed(name, error)
        except Exception as exc:  # never let a failing source take the daemon down
            self.log.exception("no_data_failed", source=name, error=f"{type(exc).__name__}: {exc}")
            return
        self.grouped(result)
        self._plugin_health(lambda: [self.plugin_health.source_failed(name, error)])

    async def wait_for_poll(self, name: str, timeout: float) -> None:
        """Wait (up to `timeout`) until the running poll of source `name`, if any, is over."""
        task = self._polls.get(name)
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task], timeout=timeout)
