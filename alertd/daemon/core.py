"""One running alertd: store, plugin instances, engine, scheduler, dispatcher, HTTP server.

`Daemon` owns the parts and the work (start, back-fill, poll, drain, close); the process
lifecycle around it (signals, sd_notify, reload, the watchdog) is `alertd.lifecycle`, and a
SIGHUP's config switch is `alertd.reload`. `await Daemon(...).run()` runs the whole thing.

Drain: stop scheduling, let running polls finish and deliver what is due, within
`shutdown_timeout`. The store is closed last, so nothing committed is lost; unsent
notifications stay in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED

from ..base import PluginContext, SourceError
from ..clock import SystemClock
from .health import DaemonHealth
from ..delivery.worker import Dispatcher
from ..engine.tick import Engine
from ..log import add_secrets, get_logger, redact_text
from ..incidents.meta import CONFIG_RELOAD_FAILED, MetaRule
from ..metrics import Metrics
from .plugin_health import PluginHealth
from .gc_tuning import tune_gc
from .scheduler import make_scheduler, schedule_source
from ..config.shards import apply_shard, close_unowned, describe as describe_shard
from .backfill import backfill
from ..store import Store
from ..store.errors import StoreError, explain, is_store_error
from ..engine.training import Trainer


class StartupError(Exception):
    """The daemon cannot start; the message is one sentence saying why and what to do."""


class Daemon(DaemonHealth):
    """One running alertd: store, plugin instances, engine, scheduler and dispatcher."""

    def __init__(self, config, registry, *, store_path=None, clock=None, shutdown_timeout: float | None = None,
                 shard=None):
        self.shard_override = shard  # --shard: wins over the config's `shard`, also on reloads
        self.config, self.registry = apply_shard(config, shard), registry
        self.store_path = store_path or config.store_path()
        self.clock = clock or SystemClock()
        self._shutdown_timeout = shutdown_timeout
        self.log = get_logger()
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        self.sources, self.notifiers = {}, {}
        self.store = self.http = self.engine = self.dispatcher = self.scheduler = self.web = None
        self.trainer = None
        self.dispatcher_task: asyncio.Task | None = None
        self.started_at: float | None = None
        self.ready = False  # start-up finished (config loaded, store open, jobs scheduled)
        self.first_poll_at: float | None = None
        self.draining = False
        self.last_reload = None  # alertd.reload.ReloadOutcome of the last SIGHUP
        self.reload_hook = None  # set by the Lifecycle running this daemon
        self._polls: dict[str, asyncio.Task] = {}  # the running poll of each source
        self._scheduled: dict[str, float] = {}  # when each source's current poll was due
        self._closed = False
        add_secrets(config.secrets)

    @property
    def shutdown_timeout(self) -> float:
        return self._shutdown_timeout if self._shutdown_timeout is not None else self.config.shutdown_timeout

    # -- building ---------------------------------------------------------------------------
    def _context(self, name: str, extra: dict | None = None, **bind) -> PluginContext:
        return PluginContext(name=name, now=self.clock.now, log=self.log.bind(**bind),
                             http=self.http, store=self.store, run_blocking=asyncio.to_thread,
                             **(extra or {}))

    def make_source(self, name: str, sc, registry=None):
        cls = (registry or self.registry).get("source", sc.type)
        extra = {"timeout": sc.timeout, "interval": sc.every, "metrics": self.metrics}
        return cls(sc.params, self._context(name, extra, source=name))

    def make_notifiers(self, receiver: str, items, registry=None) -> dict:
        """Instances of a receiver's enabled integrations, keyed (receiver, index)."""
        out = {}
        for i, nc in enumerate(items):
            if nc.enabled:
                cls = (registry or self.registry).get("notifier", nc.type)
                out[(receiver, i)] = cls(nc.params, self._context(receiver, receiver=receiver))
        return out

    async def open_http(self) -> None:
        """Bind the HTTP server (first, so a port in use stops the start before any work)."""
        from ..http.listen import ListenError, open_server

        if self.config.http.enabled:
            try:
                self.web = await open_server(self, self.config.http)
            except ListenError as exc:
                raise StartupError(str(exc)) from None

    async def start(self) -> None:
        """Open everything, back-fill, start the scheduler and the dispatcher."""
        await self.open()
        await self.backfill()
        self.trainer.poll()  # first fits on the back-filled history, in the worker
        tune_gc()
        self.scheduler = make_scheduler()
        self.scheduler.add_listener(self._on_job_event,
                                    EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        for sc in self.config.sources.values():
            schedule_source(self.scheduler, sc, self.poll)
        self.scheduler.add_job(self.prune, "interval", minutes=10, id="store:prune")
        self.scheduler.add_job(self.housekeeping, "interval", seconds=10, id="detect:housekeeping")
        self.scheduler.start()
        self.dispatcher_task = asyncio.create_task(self.dispatcher.run_forever(self.stopping))
        self.ready = True

    async def open(self) -> None:
        """Store, HTTP client, plugin instances, engine and dispatcher; sources started."""
        self.started_at = self.clock.now()
        try:
            self.store = Store(self.store_path, check_writable=True)
        except StoreError as exc:
            raise StartupError(str(exc)) from None
        # httpx keeps 20 idle connections by default: with more HTTP sources than that, most
        # polls would open a new connection every time
        self.http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=512,
                                                                      max_keepalive_connections=256))
        for name, sc in self.config.sources.items():
            self.sources[name] = self.make_source(name, sc)
        for receiver, items in self.config.receivers.items():
            self.notifiers.update(self.make_notifiers(receiver, items))
        self.engine = Engine(self.config, self.registry, self.store, self.clock, self.metrics, self.log)
        self.metrics.watch(self.engine)
        self.plugin_health = PluginHealth(self.engine)
        self.dispatcher = Dispatcher(self.store, self.notifiers, self.clock, self.metrics, self.log,
                                     router=self.engine.router, config=self.config)
        self.trainer = Trainer(self.engine, self.store, self.clock, self.log, self.metrics,
                               store_path=self.store_path)
        self.trainer.start()  # stored models of unchanged rules: no new warm-up
        # The config is valid (it was loaded to get here): a failed reload's meta-incident is over.
        self.engine.meta_incident(MetaRule(CONFIG_RELOAD_FAILED), {"config": self.config.path}, False,
                                  "alertd started with a valid config")
        close_unowned(self.engine, self.log)  # incidents of rules moved to another shard
        self.metrics.reload_ok.set(1)
        self.metrics.reload_ok_at.set(self.clock.now())
        pending = self.store.outbox.pending_count()
        self.log.info("daemon_started", config=self.config.path, store=str(self.store_path),
                      sources=len(self.sources), rules=len(self.config.rules),
                      open_incidents=len(self.engine.tracker.open), outbox_pending=pending)
        if self.config.shard is not None:
            self.log.info("shard_owned", **describe_shard(self.config))
        await self._start_sources()

    async def _start_sources(self) -> None:
        """Let sources open servers and files; one that cannot start stops the start."""
        for name, source in self.sources.items():
            try:
                await source.start()
            except Exception as exc:
                self.log.error("source_start_failed", source=name, error=f"{type(exc).__name__}: {exc}")
                await self.close()
                raise SourceError(f'the source "{name}" could not start: {exc}') from None

    async def backfill(self) -> None:
        """Load history once per rule so detectors skip warm-up; see `alertd.backfill`."""
        await backfill(self)

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

    def _on_job_event(self, event) -> None:
        """APScheduler events: when each poll was due (for the lag), and polls that never ran."""
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
        due = self._scheduled.pop(name, None)
        if due is not None:
            self.metrics.tick_lag.labels(name).observe(max(0.0, time.time() - due))
        try:
            await self._poll(name, sc)
        finally:
            self._polls.pop(name, None)
            if self.first_poll_at is None:
                self.first_poll_at = self.clock.now()
        self.housekeeping(name)

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
        source = self.sources[name]
        if not samples:
            self._commit(source, name)
            if source.empty_ok:  # nothing happened since the last poll: not a failure
                self.log.debug("source_polled", source=name, samples=0, skipped=0)
            else:
                self._poll_failed(name, "empty", "the poll returned no samples")
            return
        detector_errors = dict(self.engine.detector_errors)
        try:
            with self.store.atomic():  # samples and the source's read position together
                result = self.engine.ingest(name, samples)
                source.commit()
        except Exception as exc:  # never let one tick take the daemon down
            self.metrics.source_errors.labels(name, "tick").inc()
            if is_store_error(exc):  # full, locked, read-only: nothing was committed, the next poll retries
                self.log.error("tick_failed", source=name, error=explain(exc, str(self.store_path)),
                               retry="next poll")
            else:
                self.log.exception("tick_failed", source=name, error=f"{type(exc).__name__}: {exc}")
            return
        if not result.stored:
            self._poll_failed(name, "unusable", f"none of the {result.skipped} samples had a usable value")
            return
        self.log.debug("source_polled", source=name, samples=result.stored, skipped=result.skipped)
        self._plugin_health(lambda: [self.plugin_health.source_ok(name),
                                     *self.plugin_health.detectors(detector_errors)])
        if result.notifications:
            self.dispatcher.wakeup.set()

    def _plugin_health(self, update) -> None:
        """Open or resolve failing-plugin meta-incidents (alertd.plugin_health); never raises."""
        try:
            if any(r is not None and r.notifications for r in update()):
                self.dispatcher.wakeup.set()
        except Exception as exc:
            self.log.error("plugin_health_failed", error=f"{type(exc).__name__}: {exc}")

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
        self._plugin_health(lambda: [self.plugin_health.source_failed(name, error)])

    async def wait_for_poll(self, name: str, timeout: float) -> None:
        """Wait (up to `timeout`) until the running poll of source `name`, if any, is over."""
        task = self._polls.get(name)
        if task is not None and task is not asyncio.current_task():
            await asyncio.wait([task], timeout=timeout)

    async def request_reload(self):
        """Reload the config as SIGHUP does (through the main loop when there is one)."""
        if self.reload_hook is not None:
            return await self.reload_hook()
        from .reload import reload_config

        self.last_reload = await reload_config(self)
        return self.last_reload

    # -- stopping ---------------------------------------------------------------------------
    async def drain(self) -> None:
        """Stop scheduling, let running polls finish, deliver what is due, then close.

        Polls and sends get `shutdown_timeout` together; what is not delivered by then stays
        in the outbox. Cancelling the drain (a second SIGINT) still closes everything.
        """
        try:
            await self._drain()
        finally:
            await self.close()

    async def _drain(self) -> None:
        self.draining = True
        self.stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.trainer is not None:
            await self.trainer.stop()  # a running fit finishes in its thread and is discarded
        if self.dispatcher is None:
            return
        self.dispatcher.wakeup.set()
        deadline = asyncio.get_running_loop().time() + self.shutdown_timeout
        try:
            async with asyncio.timeout_at(deadline):
                polls = [t for t in self._polls.values() if t is not asyncio.current_task()]
                if polls:
                    await asyncio.wait(polls)
                if self.dispatcher_task is not None:
                    await self.dispatcher_task
                while await self.dispatcher.run_once():
                    pass  # new rows can be due after a send: deliver until nothing is
        except TimeoutError:
            for task in self._polls.values():
                task.cancel()
            self.log.warning("drain_timeout", timeout=self.shutdown_timeout,
                             outbox_pending=self.store.outbox.pending_count(),
                             note="unsent notifications stay in the outbox for the next start")

    async def close(self, grace: float = 2.0) -> None:
        """Close the HTTP server, plugins, the HTTP client and (last) the store; once."""
        if self._closed:
            return
        self._closed = True
        self.draining = True
        if self.web is not None:
            await self.web.close(grace=min(grace, 1.0))
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.dispatcher_task is not None and not self.dispatcher_task.done():
            self.dispatcher_task.cancel()
        for plugin in [*self.sources.values(), *self.notifiers.values()]:
            try:
                await asyncio.wait_for(plugin.close(), grace)
            except Exception as exc:
                self.log.warning("close_failed", plugin=type(plugin).__name__, error=str(exc) or type(exc).__name__)
        if self.http is not None:
            await self.http.aclose()
        if self.engine is not None:
            self.engine.scorer.close()
        if self.store is not None:
            self.log.info("daemon_stopped", outbox_pending=self.store.outbox.pending_count())
            self.store.close()
            self.store = None

    async def run(self, systemd=None) -> int:
        """Start, serve until SIGTERM/SIGINT, drain; returns the exit code (see lifecycle)."""
        from .lifecycle import Lifecycle

        return await Lifecycle(self, systemd).run()

