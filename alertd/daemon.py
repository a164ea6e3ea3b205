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

from .base import PluginContext
from .clock import SystemClock
from .dispatch import Dispatcher
from .engine import Engine
from .log import add_secrets, get_logger
from .metrics import Metrics
from .runtime import tune_gc
from .scheduler import make_scheduler, schedule_source
from .store import Store


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
        add_secrets(config.secrets)

    # -- building ---------------------------------------------------------------------------
    def _context(self, name: str, **bind) -> PluginContext:
        return PluginContext(name=name, now=self.clock.now, log=self.log.bind(**bind),
                             http=self.http, store=self.store, run_blocking=asyncio.to_thread)

    async def start(self) -> None:
        self.store = Store(self.store_path)
        self.http = httpx.AsyncClient(timeout=30)
        for name, sc in self.config.sources.items():
            cls = self.registry.get("source", sc.type)
            self.sources[name] = cls(sc.params, self._context(name, source=name))
        for receiver, items in self.config.receivers.items():
            for i, nc in enumerate(items):
                if nc.enabled:
                    cls = self.registry.get("notifier", nc.type)
                    self.notifiers[(receiver, i)] = cls(nc.params, self._context(receiver, receiver=receiver))
        self.engine = Engine(self.config, self.registry, self.store, self.clock, self.metrics, self.log)
        self.dispatcher = Dispatcher(self.store, self.notifiers, self.clock, self.metrics, self.log,
                                     router=self.engine.router, config=self.config)
        pending = self.store.outbox.pending_count()
        self.log.info("daemon_started", config=self.config.path, store=str(self.store_path),
                      sources=len(self.sources), rules=len(self.config.rules),
                      open_incidents=len(self.engine.tracker.open), outbox_pending=pending)
        await self.backfill()
        tune_gc()
        self.scheduler = make_scheduler()
        for sc in self.config.sources.values():
            schedule_source(self.scheduler, sc, self.poll)
        self.scheduler.add_job(self.prune, "interval", minutes=10, id="store:prune")
        self.scheduler.start()

    async def backfill(self) -> None:
        """Give each source one chance to load history so detectors skip warm-up."""
        now = self.clock.now()
        for name, sc in self.config.sources.items():
            if not sc.backfill or self.store.get_kv(f"backfilled:{name}"):
                continue
            runtimes = self.engine.rules_by_source.get(name, [])
            points = max([max(rt.detector.window, rt.detector.min_history) for rt in runtimes] or [0])
            if not points:
                continue
            span = points * (sc.every or 60) * 1.2
            try:
                samples = await asyncio.wait_for(self.sources[name].backfill(now - span, now), sc.timeout)
            except Exception as exc:
                self.log.warning("backfill_failed", source=name, error=f"{type(exc).__name__}: {exc}")
                continue
            if samples:
                self.engine.ingest(name, samples, alerts=False)
                self.log.info("backfilled", source=name, samples=len(samples))
            self.store.set_kv(f"backfilled:{name}", now)

    # -- the work ---------------------------------------------------------------------------
    def prune(self) -> int:
        """Drop samples older than the config's `retention` (runs every 10 minutes)."""
        deleted = self.store.samples.prune(self.clock.now() - self.config.retention)
        if deleted:
            self.log.info("samples_pruned", deleted=deleted, retention=self.config.retention)
        return deleted

    async def poll(self, name: str) -> None:
        """Collect from one source and run the tick; errors are logged, counted, survived."""
        sc = self.config.sources[name]
        self.metrics.source_polls.labels(name).inc()
        try:
            samples = await asyncio.wait_for(self.sources[name].collect(), sc.timeout)
        except asyncio.TimeoutError:
            self._poll_failed(name, "timeout", f"no answer within {sc.timeout:g}s")
            return
        except Exception as exc:
            self._poll_failed(name, "error", f"{type(exc).__name__}: {exc}"[:300])
            return
        if not samples:
            self._poll_failed(name, "empty", "the poll returned no samples")
            return
        try:
            result = self.engine.ingest(name, samples)
        except Exception as exc:  # never let one tick take the daemon down
            self.metrics.source_errors.labels(name, "tick").inc()
            self.log.exception("tick_failed", source=name, error=f"{type(exc).__name__}: {exc}")
            return
        self.log.debug("source_polled", source=name, samples=result.stored, skipped=result.skipped)
        if result.notifications:
            self.dispatcher.wakeup.set()

    def _poll_failed(self, name: str, reason: str, error: str) -> None:
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
        self.scheduler.shutdown(wait=False)
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
