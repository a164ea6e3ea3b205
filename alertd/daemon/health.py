"""What the daemon says about its own health: /healthz, /readyz and systemd's STATUS= line."""

from __future__ import annotations

from .. import __version__
from ..config.shards import describe as describe_shard


class DaemonHealth:
    """Health and readiness of a running `Daemon` (mixed into it; reads its parts)."""

    def health_problems(self) -> list[str]:
        """Why the daemon is not healthy (empty when it is): dead parts of the running loop,
        and work that stopped committing (alertd.daemon.progress), each in one sentence."""
        if not self.ready or self.draining:
            return []
        problems = self._loop_problems()
        if self.store is not None:
            problems += self.progress.problems(self.store.health, self.config.sources)
        lost = self.check_store_file()
        if lost:
            problems.append(lost)
        self.metrics.healthy.set(0 if problems else 1)
        return problems

    def _loop_problems(self) -> list[str]:
        problems = []
        if self.scheduler is not None and not self.scheduler.running:
            problems.append("the scheduler is not running")
        for name, task in self.tasks.items():
            if task.done():
                error = task.exception() if not task.cancelled() else None
                problems.append(f"the {name} loop stopped{f': {error}' if error else ''}")
        if self.web is not None and not self.web.serving:
            problems.append("the HTTP server stopped")
        return problems

    def readiness(self) -> dict[str, bool]:
        """The checks of /readyz: all must be true (`healthy`: /healthz names the problems)."""
        return {"config_loaded": self.config is not None, "store_open": self.store is not None,
                "started": self.ready, "first_tick_done": self.first_poll_at is not None,
                "not_draining": not self.draining, "healthy": not self.health_problems()}

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

    def rule_summary(self) -> dict:
        """How many rules are in each state, and those not judging (error, nodata, warming_up)
        with why (alertd/engine/rule_health.py; /api/v1/rules has every detail)."""
        healths = self.engine.rule_health() if self.engine else []
        counts: dict[str, int] = {}
        for h in healths:
            counts[h.state] = counts.get(h.state, 0) + 1
        return {"states": counts, "not_judging": {h.name: f"{h.state}: {h.reason}" for h in healths
                                                   if h.state in ("error", "nodata", "warming_up")}}

    def status(self) -> dict:
        """What the daemon is doing: for /api/v1/status and the status page."""
        now = self.clock.now()
        reload = self.last_reload
        sources = {}
        engine = self.engine
        for name, sc in self.config.sources.items():
            health = engine.source_health.get(name) if engine else None
            job = self.scheduler.get_job(f"source:{name}") if self.scheduler else None
            sources[name] = {
                "type": sc.type, "every": sc.every, "cron": sc.cron,
                "last_ok": health.last_ok if health else None,
                "consecutive_errors": health.consecutive_errors if health else 0,
                "last_error": health.last_error if health else None,
                "next_poll": job.next_run_time.timestamp() if job and job.next_run_time else None}
        states = [i.state for i in engine.tracker.open.values()] if engine else []
        return {
            "version": __version__, "config": self.config.path, "now": now,
            "started_at": self.started_at,
            "uptime": None if self.started_at is None else now - self.started_at,
            "ready": all(self.readiness().values()), "problems": self.health_problems(),
            "draining": self.draining,
            "last_reload": None if reload is None else {"ok": reload.ok, "at": reload.at,
                                                         "problems": reload.problems},
            "incidents": {"pending": states.count("pending"), "firing": states.count("firing")},
            "outbox_pending": self.store.outbox.pending_count() if self.store else None,
            "api_writes": self.config.http.writes_enabled,
            "sources": sources,
            "rules": self.rule_summary(),
            "shard": describe_shard(self.config),
        }
