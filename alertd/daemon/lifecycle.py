"""The process lifecycle around a Daemon, after uvicorn's model.

Signal handlers only set flags and wake the main loop; the main loop acts on them:

- SIGHUP: reload the config (`Daemon.reload`, alertd/daemon/reload.py), between RELOADING=1
  and READY=1.
- SIGTERM or SIGINT: STOPPING=1, then drain (stop scheduling, finish running polls and
  due sends within `shutdown_timeout`) and exit 0.
- A second SIGINT: stop waiting at once (cancel the drain or the start-up), close the store
  and exit 130. Nothing is cut mid-write: SQLite writes are synchronous, and a task can
  only be cancelled between them.

During start-up, each chunk of a back-fill sends EXTEND_TIMEOUT_USEC (and STATUS=), so a
long back-fill is not killed by TimeoutStartSec while it makes progress.

A heartbeat task sends WATCHDOG=1 every half `WatchdogSec` while the daemon is healthy (a
blocked loop, a dead scheduler, group timer, delivery worker or HTTP server, or work that
stopped committing for a minute (alertd/daemon/progress.py) stops the pings, and systemd
restarts the service) and STATUS= with open incidents and the last tick's age.
"""

from __future__ import annotations

import asyncio
import re
import signal

from .sdnotify import SystemdNotifier

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_DIGITS = re.compile(r"\d+")
STATUS_EVERY = 5.0  # seconds between STATUS= updates when there is no watchdog
EXTEND_START_USEC = 90_000_000  # a back-fill's chunk ended: systemd waits this long for the next


class Lifecycle:
    """Runs a Daemon from start to exit, driven by signals and systemd's notify protocol."""

    def __init__(self, daemon, systemd: SystemdNotifier | None = None):
        self.daemon = daemon
        self.log = daemon.log
        self.sd = systemd or SystemdNotifier.from_environ(log=self.log)
        self.should_exit = False
        self.force_exit = False
        self.reload_requested = False
        self.stop_signal: str | None = None
        self._wake = asyncio.Event()
        self._reload_waiters: list[asyncio.Future] = []
        daemon.reload_hook = self.request_reload
        self._work: asyncio.Task | None = None  # start-up or drain: what a 2nd SIGINT cancels
        self._unhealthy: tuple[str, ...] = ()
        wd = self.sd.watchdog_interval
        self.beat_every = min(STATUS_EVERY, wd) if wd else STATUS_EVERY

    # -- signals: flags only ------------------------------------------------------------------
    def handle_signal(self, sig: int) -> None:
        if sig == signal.SIGHUP:
            self.reload_requested = True
        elif self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True
            self.stop_signal = self.stop_signal or signal.Signals(sig).name
        self._wake.set()

    def request_reload(self) -> asyncio.Future:
        """Ask the main loop for a reload (as SIGHUP does); the future gets its outcome."""
        waiter = asyncio.get_running_loop().create_future()
        if self.should_exit:
            waiter.set_exception(RuntimeError("alertd is stopping"))
            return waiter
        self._reload_waiters.append(waiter)
        self.handle_signal(signal.SIGHUP)
        return waiter

    def _install(self, loop) -> None:
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            loop.add_signal_handler(sig, self.handle_signal, sig)

    def _uninstall(self, loop) -> None:
        for sig in (*STOP_SIGNALS, signal.SIGHUP):
            loop.remove_signal_handler(sig)

    # -- the run ------------------------------------------------------------------------------
    async def run(self) -> int:
        """Start, serve until told to stop, drain, close; returns the exit code."""
        loop = asyncio.get_running_loop()
        self._install(loop)
        beat = None
        try:
            await self._cancellable(self._startup())
            if not self.should_exit:
                beat = asyncio.create_task(self._heartbeat())
                self.sd.ready(self.daemon.status_line())
                self.log.info("daemon_ready", status=self.daemon.status_line())
                await self._main_loop()
            self.sd.stopping()
            self.log.info("daemon_stopping", timeout=self.daemon.shutdown_timeout)
            if not self.force_exit:
                await self._cancellable(self.daemon.drain())
        finally:
            for waiter in self._reload_waiters:
                if not waiter.done():
                    waiter.set_exception(RuntimeError("alertd is stopping"))
            if beat is not None:
                beat.cancel()
            await self.daemon.close(grace=0.5 if self.force_exit else 2.0)
            self._uninstall(loop)
        if self.force_exit:
            self.log.warning("daemon_forced_exit", note="a second SIGINT: stopped without draining")
            return 130
        return 0

    async def _startup(self) -> None:
        self.daemon.progress_hook = self._starting
        try:
            await self.daemon.open_http()
            await self.daemon.start()
        finally:
            self.daemon.progress_hook = None

    def _starting(self, text: str) -> None:
        """A long start-up made progress (a back-fill stored a chunk): EXTEND_TIMEOUT_USEC, so
        systemd's TimeoutStartSec bounds the time without progress, not the whole back-fill of
        a large site; STATUS= says what it is doing."""
        self.sd.notify(extend_timeout_usec=EXTEND_START_USEC, status=text)

    async def _cancellable(self, coro) -> None:
        """Run start-up or drain so that a stop signal (start-up) or a 2nd SIGINT cancels it."""
        self._work = asyncio.create_task(coro)
        while not self._work.done():
            waker = asyncio.create_task(self._wake.wait())
            await asyncio.wait([self._work, waker], return_when=asyncio.FIRST_COMPLETED)
            waker.cancel()
            self._wake.clear()
            starting = not self.daemon.ready
            if self.force_exit or (starting and self.should_exit):
                self._work.cancel()
                await asyncio.wait([self._work])
                self.log.warning("interrupted", phase="start-up" if starting else "drain")
                return
        self._work.result()  # re-raise a StartupError

    async def _main_loop(self) -> None:
        while not self.should_exit:
            self._wake.clear()
            if self.reload_requested:
                self.reload_requested = False
                await self._reload()
                continue
            if self.should_exit:
                break
            await self._wake.wait()
        self.log.info("shutdown_requested", signal=self.stop_signal)

    async def _reload(self) -> None:
        self.sd.reloading()
        outcome = await self.daemon.reload_now()
        waiters, self._reload_waiters = self._reload_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(outcome)
        self.sd.ready(self.daemon.status_line() + ("" if outcome.ok else "; last reload FAILED"))

    async def _heartbeat(self) -> None:
        """WATCHDOG=1 while healthy, STATUS= always; every `beat_every` seconds."""
        while True:
            self.beat()
            await asyncio.sleep(self.beat_every)

    def beat(self) -> None:
        """One heartbeat: ping the watchdog if healthy, log a change of health, send STATUS=."""
        problems = self.daemon.health_problems()
        if not problems:
            if self.sd.watchdog_interval:
                self.sd.watchdog()
        kinds = tuple(_DIGITS.sub("N", p) for p in problems)  # "failed for 61s" is not news at 66s
        if kinds != self._unhealthy:
            if problems:
                self.log.error("daemon_unhealthy", problems=list(problems),
                               note="watchdog pings stopped; systemd will restart alertd")
            else:
                self.log.info("daemon_healthy")
            self._unhealthy = kinds
        try:
            self.sd.status(self.daemon.status_line())
        except Exception as exc:  # the store may be closing; never let the beat die
            self.log.debug("status_failed", error=str(exc))
