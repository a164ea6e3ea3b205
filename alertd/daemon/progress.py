"""Health means progress: is the daemon getting its work committed, not only alive?

A daemon whose every tick fails (the disk is full, the store locked or damaged, no file
descriptor left) still answers HTTP and its tasks are alive. `Progress` watches what
matters instead, on the monotonic clock (a wall-clock step must not make it healthy or
not), and names what is wrong:

- the store: some write must commit. The housekeeping job writes a heartbeat every 10 s,
  so a store that takes no write is seen even when no source is due; when writes have
  failed for `stall_after` seconds without one committing, that is a problem, with the
  store's own sentence (full, locked, read-only, damaged);
- ticks: a source whose ticks have failed for `stall_after` seconds in a row (for any
  reason, a store error or a bug), with its last error;
- polls: a source with an `every` that has not been polled for three intervals (plus its
  timeout and `stall_after`): the scheduler is not running it;
- file descriptors: nearly all of the process's limit in use (or none left to look).

A source that cannot reach its service is not a problem of alertd's health: a restart
would not help. It is a meta-incident (`alertd_source_failing`) instead.
"""

from __future__ import annotations

import errno
import os
import resource
import time

STALL_AFTER = 60.0  # seconds without progress before health says so (the goal: within 2 minutes)
FD_SHARE = 0.95  # this share of RLIMIT_NOFILE in use is a problem


class Progress:
    """Monotonic times of the last commit and failures, per source and for the store."""

    def __init__(self, stall_after: float = STALL_AFTER, clock=time.monotonic):
        self.stall_after, self.clock = stall_after, clock
        self.started = clock()
        self.ticks: dict[str, dict] = {}  # source -> {ok, failing_since, failures, error}
        self.polled: dict[str, float] = {}  # source -> when its last poll started

    def expect(self, source: str) -> None:
        """The source was (re)scheduled: its wait for a poll starts now."""
        self.polled[source] = self.clock()

    def poll_started(self, source: str) -> None:
        self.polled[source] = self.clock()

    def tick_ok(self, source: str) -> None:
        self.ticks[source] = {"ok": self.clock(), "failing_since": None, "failures": 0, "error": None}

    def tick_failed(self, source: str, error: str) -> None:
        state = self.ticks.setdefault(source, {"ok": None, "failing_since": None, "failures": 0, "error": None})
        if state["failing_since"] is None:
            state["failing_since"] = self.clock()
        state["failures"] += 1
        state["error"] = error

    def forget(self, source: str) -> None:
        """A source removed by a reload."""
        self.ticks.pop(source, None)
        self.polled.pop(source, None)

    def problems(self, store_health, sources: dict) -> list[str]:
        """What stops progress now; `sources` are the SourceConfigs polled."""
        now, out = self.clock(), []
        if store_health is not None and store_health.failing_since is not None:
            stalled = now - store_health.failing_since
            if stalled >= self.stall_after:
                out.append(f"no write to the store has committed for {stalled:.0f}s: {store_health.error}")
        for name, state in self.ticks.items():
            since = state["failing_since"]
            if since is not None and now - since >= self.stall_after and state["failures"] >= 2 and name in sources:
                out.append(f'the ticks of source "{name}" have failed for {now - since:.0f}s '
                           f'({state["failures"]} in a row): {state["error"]}')
        for name, sc in sources.items():
            if not sc.every:
                continue  # cron: its next run may be days away
            limit = 3 * sc.every + sc.timeout + self.stall_after
            last = self.polled.get(name, self.started)
            if now - last > limit:
                out.append(f'the source "{name}" has not been polled for {now - last:.0f}s '
                           f"(every {sc.every:g}s): the scheduler is not running its job")
        fds = descriptor_problem()
        if fds:
            out.append(fds)
        return out


def descriptor_problem() -> str | None:
    """A sentence when (nearly) every file descriptor the process may open is in use."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        used = len(os.listdir("/proc/self/fd"))
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return (f"no file descriptor is left (the limit is {soft}); raise LimitNOFILE in the unit, "
                    "or find what holds them (ls /proc/PID/fd)")
        return None  # no /proc: not Linux, cannot tell
    if soft != resource.RLIM_INFINITY and used >= FD_SHARE * soft:
        return (f"{used} of the {soft} file descriptors alertd may open are in use; raise LimitNOFILE "
                "in the unit, or find what holds them (ls /proc/PID/fd)")
    return None
