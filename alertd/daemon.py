"""The daemon's lifecycle: start, poll on schedule, deliver, stop cleanly.

Signal handlers only set flags (uvicorn's model); the main coroutine acts on them: SIGTERM
or SIGINT start a drain (stop scheduling, finish running polls and due sends within
`shutdown_timeout`), a second SIGINT leaves at once. The store is closed after the drain, so
nothing committed is lost; unsent notifications stay in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import signal

import httpx

from .base import PluginContext, SourceError
from .clock import SystemClock
from .dispatch import Dispatcher
from .engine import Engine
from .log import add_secrets, get_logger, redact_text
from .metrics import Metrics
from .model import Sample
from .runtime import tune_gc
from .scheduler import make_scheduler, schedule_source
from .store import Store
from .training import Trainer


class Daemon:
    """One running alertd: store, plugin instances, engine, scheduler and dispatcher."""

    def __init__(self, config, registry, *, store_path=None, clock=None, shutdown_timeout: float = 10.0):
        self.config, self.registry = config, registry
        self.store_path = store_path or config.store_path()
        self.clock = clock or SystemClock()
        self.shutdown_timeout = shutdown_timeout
        self.log = get_logger()
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        self.force_exit = False
        self.sources, self.notifiers = {}, {}
        self.scheduler = None
        add_secrets(config.secrets)

    # -- building ---------------------------------------------------------------------------
    def _context(self, name: str, extra: dict | None = None, **bind) -> PluginContext:
        return PluginContext(name=name, now=self.clock.now, log=self.log.bind(**bind),
                             http=self.http, store=self.store, run_blocking=asyncio.to_thread,
                             **(extra or {}))

    async def start(self) -> None:
        """Open everything, back-fill, and start the scheduler."""
        await self.open()
        await self.backfill()
        self.trainer.poll()  # first fits on the back-filled history, in the worker
        tune_gc()
        self.scheduler = make_scheduler()
        for sc in self.config.sources.values():
            schedule_source(self.scheduler, sc, self.poll)
        self.scheduler.add_job(self.prune, "interval", minutes=10, id="store:prune")
        self.scheduler.add_job(self.housekeeping, "interval", seconds=10, id="detect:housekeeping")
        self.scheduler.start()

    async def open(self) -> None:
        """Store, HTTP client, plugin instances, engine and dispatcher; sources started."""
        self.store = Store(self.store_path)
        # httpx keeps 20 idle connections by default: with more HTTP sources than that, most
        # polls would open a new connection every time
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=512,
                                                                      max_keepalive_connections=256))
        for name, sc in self.config.sources.items():
            cls = self.registry.get("source", sc.type)
            extra = {"timeout": sc.timeout, "interval": sc.every, "metrics": self.metrics}
            self.sources[name] = cls(sc.params, self._context(name, extra, source=name))
        for receiver, items in self.config.receivers.items():
            for i, nc in enumerate(items):
                if nc.enabled:
                    cls = self.registry.get("notifier", nc.type)
                    self.notifiers[(receiver, i)] = cls(nc.params, self._context(receiver, receiver=receiver))
        self.engine = Engine(self.config, self.registry, self.store, self.clock, self.metrics, self.log)
        self.dispatcher = Dispatcher(self.store, self.notifiers, self.clock, self.metrics, self.log,
                                     router=self.engine.router, config=self.config)
        self.trainer = Trainer(self.engine, self.store, self.clock, self.log, self.metrics,
                               store_path=self.store_path)
        self.trainer.start()  # stored models of unchanged rules: no new warm-up
        pending = self.store.outbox.pending_count()
        self.log.info("daemon_started", config=self.config.path, store=str(self.store_path),
                      sources=len(self.sources), rules=len(self.config.rules),
                      open_incidents=len(self.engine.tracker.open), outbox_pending=pending)
        await self._start_sources()

    async def _start_sources(self) -> None:
        """Let sources open servers and files; one that cannot start stops the start."""
        for name, source in self.sources.items():
            try:
                await source.start()
            except Exception as exc:
                self.log.error("source_start_failed", source=name, error=f"{type(exc).__name__}: {exc}")
                for other in self.sources.values():
                    try:
                        await other.close()
                    except Exception:
                        pass
                await self.http.aclose()
                self.store.close()
                raise SourceError(f'the source "{name}" could not start: {exc}') from None

    async def backfill(self) -> None:
        """Load history once per rule so detectors skip warm-up (on first start, new rules).

        Each rule is remembered in the store's kv under its source, name and selector, so a
        rule added later (or changed to read other series) gets its own back-fill. Only
        samples of series the store does not have yet, or newer than the last stored point
        (a gap while the daemon was down), are ingested: nothing is stored twice.
        """
        now = self.clock.now()
        for name, sc in self.config.sources.items():
            if not sc.backfill:
                continue
            todo = [rt for rt in self.engine.rules_by_source.get(name, [])
                    if not self.store.get_kv(_backfill_key(name, rt.rule))]
            points = max([_history_wanted(rt.detector) for rt in todo] or [0])
            if points:
                span = points * (sc.every or 60) * 1.2
                try:
                    samples = await asyncio.wait_for(self.sources[name].backfill(now - span, now),
                                                     sc.timeout)
                except Exception as exc:
                    error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    self.log.warning("backfill_failed", source=name, error=error[:300])
                    continue
                samples = self._unstored(samples, todo)
                if samples:
                    self.engine.ingest(name, samples, alerts=False)
                    self.log.info("backfilled", source=name, samples=len(samples),
                                  rules=[rt.rule.name for rt in todo])
            for rt in todo:
                self.store.set_kv(_backfill_key(name, rt.rule), now)

    def _unstored(self, samples, runtimes) -> list:
        """The back-filled samples the rules in `runtimes` read and the store lacks."""
        selectors = [rt.rule.series for rt in runtimes]
        wanted = [s for s in samples or () if isinstance(s, Sample)
                  and any(sel.matches(s.name, dict(s.labels)) for sel in selectors)]
        stored = self.store.samples.recent(list({s.key for s in wanted}), 1)
        return [s for s in wanted if s.key not in stored or s.ts > stored[s.key][0][-1]]

    # -- the work ---------------------------------------------------------------------------
    def prune(self) -> int:
        """Drop samples older than the config's `retention` (runs every 10 minutes)."""
        deleted = self.store.samples.prune(self.clock.now() - self.config.retention)
        if deleted:
            self.log.info("samples_pruned", deleted=deleted, retention=self.config.retention)
        return deleted

    def housekeeping(self, source: str | None = None) -> None:
        """Due model fits and silence checks: after each poll of `source`, and every 10 s for
        all sources (time-based fit schedules, sources that stopped answering)."""
        try:
            self.trainer.poll()  # fits run in a worker thread: this only submits them
            if self.engine.check_absent(source).notifications:
                self.dispatcher.wakeup.set()
        except Exception as exc:  # never let it take the daemon down
            self.log.exception("housekeeping_failed", source=source, error=f"{type(exc).__name__}: {exc}")

    async def poll(self, name: str) -> None:
        """Collect from one source and run the tick; then due fits and silence checks."""
        await self._poll(name)
        self.housekeeping(name)

    async def _poll(self, name: str) -> None:
        """Collect from one source and run the tick; errors are logged, counted, survived."""
        sc = self.config.sources[name]
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
        source = self.sources[name]
        if not samples:
            self._commit(source, name)
            if source.empty_ok:  # nothing happened since the last poll: not a failure
                self.log.debug("source_polled", source=name, samples=0, skipped=0)
            else:
                self._poll_failed(name, "empty", "the poll returned no samples")
            return
        try:
            with self.store.atomic():  # samples and the source's read position together
                result = self.engine.ingest(name, samples)
                source.commit()
        except Exception as exc:  # never let one tick take the daemon down
            self.metrics.source_errors.labels(name, "tick").inc()
            self.log.exception("tick_failed", source=name, error=f"{type(exc).__name__}: {exc}")
            return
        if not result.stored:
            self._poll_failed(name, "unusable", f"none of the {result.skipped} samples had a usable value")
            return
        self.log.debug("source_polled", source=name, samples=result.stored, skipped=result.skipped)
        if result.notifications:
            self.dispatcher.wakeup.set()

    def _commit(self, source, name: str) -> None:
        try:
            with self.store.atomic():
                source.commit()
        except Exception as exc:
            self.log.warning("source_commit_failed", source=name, error=f"{type(exc).__name__}: {exc}")

    def _poll_failed(self, name: str, reason: str, error: str) -> None:
        error = redact_text(error)  # an excerpt of an answer may echo a token back
        self.metrics.source_errors.labels(name, reason).inc()
        self.log.warning("source_failed", source=name, reason=reason, error=error)
        try:
            result = self.engine.source_failed(name, error)
        except Exception as exc:  # never let a failing source take the daemon down
            self.log.exception("no_data_failed", source=name, error=f"{type(exc).__name__}: {exc}")
            return
        if result.notifications:
            self.dispatcher.wakeup.set()

    async def run(self) -> int:
        """Start, run until a stop signal, drain; returns the exit code."""
        await self.start()
        self._install_signals()
        dispatcher = asyncio.create_task(self.dispatcher.run_forever(self.stopping))
        await self.stopping.wait()
        await self.drain(dispatcher)
        return 0

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)

    def _on_stop_signal(self, sig) -> None:
        if self.stopping.is_set() and sig == signal.SIGINT:
            self.force_exit = True
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            return
        self.log.info("shutdown_requested", signal=signal.Signals(sig).name)
        self.stopping.set()

    async def drain(self, dispatcher_task=None) -> None:
        """Stop scheduling, let running polls finish, deliver what is due, close everything."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        await self.trainer.stop()
        try:
            async with asyncio.timeout(self.shutdown_timeout):
                if dispatcher_task is not None:
                    await dispatcher_task
                await self.dispatcher.run_once()
        except (TimeoutError, asyncio.CancelledError):
            self.log.warning("drain_timeout", outbox_pending=self.store.outbox.pending_count())
        for plugin in [*self.sources.values(), *self.notifiers.values()]:
            try:
                await plugin.close()
            except Exception as exc:
                self.log.warning("close_failed", plugin=type(plugin).__name__, error=str(exc))
        await self.http.aclose()
        self.log.info("daemon_stopped", outbox_pending=self.store.outbox.pending_count())
        self.store.close()


def _history_wanted(detector) -> int:
    """Points of history a detector wants on first start: its window and warm-up, and for a
    trainable one the history it fits on (capped, so start-up stays quick)."""
    plan = detector.training_plan() if getattr(detector, "trainable", False) else None
    return max(detector.window, detector.min_history, min(plan.points, 10_000) if plan else 0)


def _backfill_key(source: str, rule) -> str:
    return f"backfilled:{source}:{rule.name}:{rule.series}"
