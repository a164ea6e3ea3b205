"""What the daemon says about its own health: /healthz, /readyz and systemd's STATUS= line."""

from __future__ import annotations


class DaemonHealth:
    """Health and readiness of a running `Daemon` (mixed into it; reads its parts)."""

    def health_problems(self) -> list[str]:
        """Why the daemon is not healthy (empty when it is): dead parts of the running loop."""
        if not self.ready or self.draining:
            return []
        problems = []
        if self.scheduler is not None and not self.scheduler.running:
            problems.append("the scheduler is not running")
        task = self.dispatcher_task
        if task is not None and task.done():
            error = task.exception() if not task.cancelled() else None
            problems.append(f"the notification dispatcher stopped{f': {error}' if error else ''}")
        if self.web is not None and not self.web.serving:
            problems.append("the HTTP server stopped")
        return problems

    def readiness(self) -> dict[str, bool]:
        """The checks of /readyz: all must be true."""
        return {"config_loaded": self.config is not None, "store_open": self.store is not None,
                "started": self.ready, "first_tick_done": self.first_poll_at is not None,
                "not_draining": not self.draining}

    def last_tick_age(self) -> float | None:
        """Seconds since the last poll of any source returned samples (None before the first)."""
        health = self.engine.source_health.values() if self.engine else ()
        last = max((h.last_ok for h in health if h.last_ok is not None), default=None)
        return None if last is None else max(0.0, self.clock.now() - last)

    def status_line(self) -> str:
        """One line for `systemctl status` (STATUS=): open incidents and the last tick's age."""
        if self.engine is None:
            return "starting"
        states = [i.state for i in self.engine.tracker.open.values()]
        firing = states.count("firing")
        age = self.last_tick_age()
        tick = "no tick yet" if age is None else f"last tick {age:.0f}s ago"
        prefix = "draining; " if self.draining else ""
        return (f"{prefix}{len(states)} open incidents ({firing} firing, {len(states) - firing} pending), "
                f"{tick}, outbox {self.store.outbox.pending_count()}")
