"""One running alertd: store, plugin instances, engine, scheduler, group timer, delivery, HTTP.

`Daemon` owns the parts and the work (start, back-fill, poll, drain, close); the process
lifecycle around it (signals, sd_notify, the watchdog) is `alertd.daemon.lifecycle`; polls
and ticks are `alertd.daemon.polls`, a SIGHUP's config switch `alertd.daemon.reload`, health
and status `alertd.daemon.health` (each mixed into `Daemon`). `await Daemon(...).run()` runs
the whole thing.

Drain: stop scheduling, let running polls finish and deliver what is due, within
`shutdown_timeout`. The store is closed last, so nothing committed is lost; unsent
notifications stay in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
)

from ..base import PluginContext, SourceError
from ..clock import SystemClock
from ..config.shards import apply_shard
from ..config.shards import describe as describe_shard
from ..delivery.worker import OutboxWorker
from ..engine.intake import AlertIntake, IntakeError
from ..engine.tick import Engine
from ..engine.training import Trainer
from ..hostcheck import HostCheck
from ..http.listen import ListenError, open_server
from ..http.state import AppState
from ..incidents.meta import CONFIG_RELOAD_FAILED, MetaRule
from ..log import add_secrets, get_logger
from ..metrics import Metrics
from ..routing.timer import GroupTimer
from ..store.errors import StoreError
from .backfill import backfill
from .clock_steps import ClockStepGuard
from .gc_tuning import tune_gc
from .health import DaemonHealth
from .lifecycle import Lifecycle
from .plugin_health import PluginHealth
from .polls import Polling
from .progress import Progress
from .reload import Reloading
from .scheduler import follow_clock_step, make_scheduler, schedule_daemon_jobs, schedule_source
from .store_guard import StoreGuard
from .wal import WalCheckpoints


class StartupError(Exception):
    """The daemon cannot start; the message is one sentence saying why and what to do."""


class Daemon(Polling, Reloading, DaemonHealth):
    """One running alertd: store, plugin instances, engine, scheduler, group timer and delivery."""

    progress_hook = None  # told how a long start-up (a back-fill) is getting on: alertd/daemon/lifecycle.py

    def __init__(self, config, registry, *, store_path=None, clock=None, shutdown_timeout: float | None = None,
                 shard=None, monotonic=None):
        self.shard_override = shard  # --shard: wins over the config's `shard`, also on reloads
        self.config, self.registry = apply_shard(config, shard), registry
        self.store_path = store_path or config.store_path()
        self.clock = clock or SystemClock()
        self.monotonic = monotonic or time.monotonic  # health's clock: wall-clock steps must not move it
        self._shutdown_timeout = shutdown_timeout
        self.log = get_logger()
        self.metrics = Metrics()
        self.stopping = asyncio.Event()
        self.sources, self.notifiers = {}, {}
        self.store = self.http = self.engine = self.delivery = self.scheduler = self.web = None
        self.trainer = self.group_timer = self.clock_guard = self.intake = None
        self.store_guard: StoreGuard | None = None
        self.wal = WalCheckpoints(None, self.log)  # the store's checkpoints: after ticks, off their path
        self.progress = Progress(clock=self.monotonic)
        self.tasks: dict[str, asyncio.Task] = {}  # the daemon's own loops: delivery, groups, clock
        self.started_at: float | None = None
        self.ready = False  # start-up finished (config loaded, store open, jobs scheduled)
        self.first_poll_at: float | None = None
        self.draining = False
        self.last_reload = None  # alertd.daemon.reload.ReloadOutcome of the last SIGHUP
        self.reload_hook = None  # set by the Lifecycle running this daemon
        self._polls: dict[str, asyncio.Task] = {}  # the running poll of each source
        # one tick at a time: a poll's tick hands the loop back between its slices, and what
        # changes the engine's windows or rules (prune, reload, back-fill, housekeeping) waits
        self.tick_lock = asyncio.Lock()
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
        if self.config.http.enabled:
            try:
                self.web = await open_server(self.app_state(), self.config.http)
            except ListenError as exc:
                raise StartupError(str(exc)) from None

    async def rebind_http(self, old, new) -> None:
        """After a reload: serve on the new address (the old server keeps serving on failure)."""
        if (old.enabled, old.host, old.port) == (new.enabled, new.host, new.port):
            if self.web is not None and old.host_names != new.host_names:
                self.web.hosts = HostCheck(new.host_names, new.host)
            return
        previous, server = self.web, None
        if new.enabled:
            try:
                server = await open_server(self.app_state(), new)
            except ListenError as exc:
                self.log.error("http_rebind_failed", error=str(exc),
                               note=f"still serving on {old.listen}" if previous else "no HTTP server")
                return
        self.web = server
        if previous is not None:
            await previous.close()

    def app_state(self) -> AppState:
        """What the HTTP app may see and do (uvicorn's ServerState): read per request."""
        return AppState(config=lambda: self.config, store=lambda: self.store, clock=self.clock, log=self.log,
                        metrics=self.metrics, health=self.health_problems, readiness=self.readiness,
                        status=self.status, draining=lambda: self.draining,
                        rules=lambda per_rule=6: self.engine.rule_views(per_rule) if self.engine else [],
                        changed=self.changed, reload=self.request_reload, post_alerts=self.post_alerts,
                        rule_health=lambda: self.engine.rule_health() if self.engine else [],
                        rule_series=lambda name, **kw: self.engine.rule_series(name, **kw) if self.engine else None,
                        series_of=lambda rule, fp: self.engine.series_of(rule, fp) if self.engine else None,
                        chart_marks=self.chart_marks,
                        forecast=lambda rule, key=None, limit=100: (
                            self.engine.forecast(rule, key, limit) if self.engine else None))

    def chart_marks(self, rule: str, key: str) -> tuple:
        """(detections, expected band) the engine remembers for one series (for its chart)."""
        if self.engine is None:
            return (), ()
        return self.engine.detections.of(rule, key), self.engine.detections.band_of(rule, key)

    async def post_alerts(self, alerts, batch: int = 500) -> int:
        """Alerts posted to the Alertmanager API, in transactions of `batch` alerts with a turn
        of the loop between them (10,000 in one post never stall it); returns how many were
        committed. An error stops there: the batches before it stay committed."""
        if self.intake is None or self.store is None:
            raise RuntimeError("alertd is starting or stopping")
        done = 0
        for start in range(0, len(alerts), batch):
            if start:
                await asyncio.sleep(0)
            try:
                self.grouped(self.intake.receive(alerts[start:start + batch]))
            except Exception as exc:
                self.log.error("posted_alerts_failed", accepted=done, failed=len(alerts) - done,
                               error=self._error_text(exc))
                raise IntakeError(done, len(alerts)) from exc
            done = min(start + batch, len(alerts))
        return done

    def changed(self) -> None:
        """Incidents or silences changed outside a tick (an action): re-evaluate groups now."""
        if self.group_timer is not None:
            self.group_timer.wake()
            self.delivery.wakeup.set()

    async def start(self) -> None:
        """Open everything, back-fill, start the scheduler, the group timer and delivery."""
        await self.open()
        await self.backfill()
        self.trainer.poll()  # first fits on the back-filled history, in the worker
        tune_gc()
        self.scheduler = make_scheduler()
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_SUBMITTED | EVENT_JOB_MISSED |
                                    EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self.progress = Progress(clock=self.monotonic)
        for sc in self.config.sources.values():
            schedule_source(self.scheduler, sc, self.poll)
            self.progress.expect(sc.name)
        schedule_daemon_jobs(self.scheduler, self)
        self.scheduler.start()
        self.tasks = {"delivery": asyncio.create_task(self.delivery.run_forever(self.stopping)),
                      "group timer": asyncio.create_task(self.group_timer.run_forever(self.stopping)),
                      "clock watch": asyncio.create_task(self.watch_clock())}
        self.ready = True

    async def open(self) -> None:
        """Store, HTTP client, plugin instances, engine, group timer and delivery; sources started."""
        self.started_at = self.clock.now()
        self.store_guard = StoreGuard(self.store_path, self.log, self.config.path)
        try:
            self.store = self.store_guard.open()
        except StoreError as exc:
            raise StartupError(str(exc)) from None
        self.wal = WalCheckpoints(self.store.checkpointer(), self.log, self.monotonic)
        self.store.samples.index.granularity = min(60.0, self.config.retention / 4)
        self.store.health.clock = self.monotonic
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
        self.delivery = OutboxWorker(self.store, self.notifiers, self.clock, self.metrics, self.log,
                                     config=self.config)
        self.intake = AlertIntake(self.engine, self.clock)  # alerts posted to /api/v2/alerts
        self.group_timer = GroupTimer(self.engine.router, self.clock, self.log, on_queued=self.delivery.wakeup.set,
                                      before=self.intake.expire_due, before_at=self.intake.next_expiry)
        self.clock_guard = ClockStepGuard(self.store, self.log)
        self.trainer = Trainer(self.engine, self.store, self.clock, self.log, self.metrics,
                               store_path=self.store_path)
        self.trainer.start()  # stored models of unchanged rules: no new warm-up
        # The config is valid (it was loaded to get here): a failed reload's meta-incident is over.
        self.engine.meta_incident(MetaRule(CONFIG_RELOAD_FAILED), {"config": self.config.path}, False,
                                  "alertd started with a valid config")
        self.grouped(self.engine.close_orphans())  # incidents of rules moved to another shard
        self.metrics.reload_ok.set(1)
        self.metrics.reload_ok_at.set(self.clock.now())
        pending = self.store.outbox.pending_count()
        self.log.info("daemon_started", config=self.config.path, store=str(self.store_path),
                      sources=len(self.sources), rules=len(self.config.rules),
                      open_incidents=len(self.engine.tracker.open), outbox_pending=pending)
        if self.config.shard is not None:
            self.log.info("shard_owned", **describe_shard(self.config))
        for warning in self.config.warnings:
            self.log.warning("config_warning", warning=warning)
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
        """Load history once per rule so detectors skip warm-up; see `alertd.daemon.backfill`."""
        await backfill(self)

    # -- the work ---------------------------------------------------------------------------
    def grouped(self, result) -> None:
        """After an alert round: when it changed groups, the group timer looks at them now."""
        if result is not None and result.grouped:
            self.group_timer.wake()

    def check_clock(self) -> float:
        """Undo a backward wall-clock step for every timer (alertd.daemon.clock_steps) and
        every scheduled job (alertd.daemon.scheduler.follow_clock_step)."""
        step = self.clock_guard.check(self.clock.now())
        if step:
            self.delivery.shift(step)
            self.group_timer.wake()
            if self.scheduler is not None and self.scheduler.running:
                moved = follow_clock_step(self.scheduler, step)
                self.log.info("jobs_rescheduled", seconds=round(step, 3), jobs=moved)
        return step

    def check_store_file(self) -> str | None:
        """The store file is still the one opened (see alertd.daemon.store_guard)."""
        return self.store_guard.check() if self.store_guard is not None else None

    async def watch_clock(self, every: float = 1.0) -> None:
        """Check for clock steps every second until stopping."""
        while not self.stopping.is_set():
            try:
                self.check_clock()
            except Exception as exc:  # a store error here must not end the watch
                self.log.error("clock_check_failed", error=f"{type(exc).__name__}: {exc}")
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=every)
            except asyncio.TimeoutError:
                pass

    async def pass_once(self) -> int:
        """One turn of the daemon's own loops: clock check, due group flushes, one delivery
        pass; returns how many notices were delivered. (Their tasks do this continuously;
        the drain and tests call it.)"""
        self.check_clock()
        self.group_timer.flush_due()
        return await self.delivery.run_once()

    async def request_reload(self):
        """Reload the config as SIGHUP does (through the main loop when there is one)."""
        if self.reload_hook is not None:
            return await self.reload_hook()
        return await self.reload_now()

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
        if self.delivery is None:
            return
        deadline = asyncio.get_running_loop().time() + self.shutdown_timeout
        try:
            async with asyncio.timeout_at(deadline):
                polls = [t for t in self._polls.values() if t is not asyncio.current_task()]
                if polls:
                    await asyncio.wait(polls)
                for task in self.tasks.values():  # (they end at once: `stopping` is set)
                    await asyncio.wait([task])
                while await self.pass_once():
                    pass  # new rows can be due after a send: deliver until nothing is
        except TimeoutError:
            for task in self._polls.values():
                task.cancel()
            self.log.warning("drain_timeout", timeout=self.shutdown_timeout,
                             outbox_pending=self.store.outbox.pending_count(),
                             note="unsent notifications stay in the outbox for the next start")
        if self.trainer is not None:  # after the last poll: what it learned is in the state
            self.trainer.save_snapshots()

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
        for task in self.tasks.values():
            if not task.done():
                task.cancel()
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
            await self.wal.close()
            self.store.close()
            self.store = None
        if self.store_guard is not None:
            self.store_guard.release()  # last: no second daemon opens the store before it is closed

    async def run(self, systemd=None) -> int:
        """Start, serve until SIGTERM/SIGINT, drain; returns the exit code (see lifecycle)."""
        return await Lifecycle(self, systemd).run()

