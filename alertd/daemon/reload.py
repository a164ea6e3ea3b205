"""SIGHUP: validate the config file again and switch to it, changing only what changed.

Two steps. `plan_reload` reads and validates the file and works out the difference against
the running config (a `ReloadPlan`); it touches nothing that runs. `Reloading.reload` (mixed
into `Daemon`) then applies the plan through the daemon's own parts:

- sources: new ones are built, back-filled and scheduled; removed ones are unscheduled and
  closed once their running poll is over; a changed schedule (every, cron, jitter) only
  reschedules the job; changed parameters rebuild the source instance.
- rules: `Engine.apply_config` keeps the runtime (history windows, detector instance and
  fitted model) of every unchanged rule; open incidents are kept (same fingerprints).
- receivers: changed ones get new notifier instances; routes rebuild the router, which the
  group timer takes over.
- http: a new address rebinds the server (on failure the old one keeps serving); a new
  token applies to the next request. `store` needs a restart (logged).

A bad file changes nothing: every problem is logged (the same sentences `alertd validate`
prints), `alertd_config_reloads_total{result="failure"}` counts it, and the meta-incident
`alertd_config_reload_failed` fires through the normal routes. The next good reload
resolves it. Plugin code is not re-imported: a reload reuses the loaded plugins unless
`plugin_dirs` changed. Changing a plugin's code needs a restart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from ..config.load import load_config, plugin_dirs_of, read_config_file
from ..config.schema import ConfigError
from ..config.shards import apply_shard
from ..incidents.meta import CONFIG_RELOAD_FAILED, MetaRule
from ..log import add_secrets
from ..plugins import PluginError, load_registry
from ..render.annotations import check_annotation
from .scheduler import schedule_daemon_jobs, schedule_source, trigger_for

RELOAD_FAILED_RULE = MetaRule(CONFIG_RELOAD_FAILED, severity="warning", annotations={
    "summary": "alertd could not reload its config; it keeps running the previous one"})
_SCHEDULE = ("every", "cron", "jitter")


@dataclass
class ReloadOutcome:
    """What a reload did: ok, when, the problems of a bad file, and the changes applied."""

    ok: bool
    at: float
    problems: list[str] = field(default_factory=list)
    changes: dict[str, list[str]] = field(default_factory=dict)


class ReloadError(Exception):
    """A valid file that still cannot be applied (a plugin failed to build)."""


@dataclass(frozen=True)
class ReloadPlan:
    """The validated new config and how it differs from the running one."""

    config: object
    registry: object
    sources: dict[str, list[str]]  # added, removed, rebuilt, rescheduled, kept
    receivers: list[str]  # receivers whose integrations changed
    routes_changed: bool
    old: object  # the running config the plan was made against

    def rescheduled(self) -> list[str]:
        """Sources whose schedule (not only their timeout or back-fill) changed."""
        return [name for name in self.sources["rescheduled"]
                if [getattr(self.old.sources[name], k) for k in _SCHEDULE]
                != [getattr(self.config.sources[name], k) for k in _SCHEDULE]]


def source_changes(old: dict, new: dict) -> dict[str, list[str]]:
    """Source names by fate: added, removed, rebuilt (type/params), rescheduled, kept."""
    fate = {"added": [], "removed": [], "rebuilt": [], "rescheduled": [], "kept": []}
    for name, sc in new.items():
        before = old.get(name)
        if before is None:
            fate["added"].append(name)
        elif before == sc:
            fate["kept"].append(name)
        elif (before.type, before.params) == (sc.type, sc.params):
            fate["rescheduled"].append(name)
        else:
            fate["rebuilt"].append(name)
    fate["removed"] = [name for name in old if name not in new]
    return fate


def receiver_changes(old: dict, new: dict) -> list[str]:
    """Receivers whose integrations were added, removed or changed."""
    return sorted(name for name in set(old) | set(new) if old.get(name) != new.get(name))


def plan_reload(running, registry, shard_override=None) -> ReloadPlan:
    """Read and validate `running.path` again; the plan to switch to it. Raises ConfigError
    or PluginError for a bad file. The registry is reused unless plugin_dirs changed."""
    path = running.path
    raw = read_config_file(path)
    if tuple(plugin_dirs_of(raw)) != tuple(running.plugin_dirs):
        registry = load_registry(plugin_dirs_of(raw), base_dir=Path(path).resolve().parent)
    config = apply_shard(load_config(path, registry, annotation_check=check_annotation), shard_override)
    add_secrets(config.secrets)  # the new file's secrets are redacted from every log line from now on
    return ReloadPlan(config, registry, source_changes(running.sources, config.sources),
                      receiver_changes(running.receivers, config.receivers),
                      running.routes != config.routes, running)


class Reloading:
    """`Daemon.reload`: plan, then apply through the daemon's parts (mixed into `Daemon`)."""

    async def reload_now(self) -> ReloadOutcome:
        """A reload as SIGHUP asks for it: logged, never raising (a bug while applying is a
        failed reload that keeps the running config); the outcome is kept as `last_reload`."""
        self.log.info("config_reload_requested", config=self.config.path)
        try:
            outcome = await self.reload()
        except Exception as exc:  # a bug while applying: log it, keep running what we have
            self.log.exception("config_reload_crashed", error=f"{type(exc).__name__}: {exc}")
            self.metrics.reloads.labels("failure").inc()
            self.metrics.reload_ok.set(0)
            outcome = ReloadOutcome(False, self.clock.now(), [f"internal error: {exc}"])
        self.last_reload = outcome
        return outcome

    async def reload(self) -> ReloadOutcome:
        """Reload the config file; never raises for a bad file (see the module doc)."""
        now, path = self.clock.now(), self.config.path
        try:
            # in a worker thread: reading and checking a file (its templates render on sample
            # incidents) must not hold the loop, whatever the file holds
            plan = await asyncio.to_thread(plan_reload, self.config, self.registry, self.shard_override)
            changes, problems = await self.apply_plan(plan)
        except (ConfigError, PluginError, ReloadError) as exc:
            problems = [str(p) for p in getattr(exc, "problems", ())] or [str(exc)]
            return self._reload_failed(path, problems, now)
        applied = {k: v for k, v in changes.items() if v}
        if problems:  # applied, but a rebuilt source could not start again
            self.log.info("config_reloaded", config=path, **applied)
            outcome = self._reload_failed(path, problems, now, applied=True)
            outcome.changes = changes
            return outcome
        self.metrics.reloads.labels("success").inc()
        self.metrics.reload_ok.set(1)
        self.metrics.reload_ok_at.set(now)
        self.log.info("config_reloaded", config=path, **applied)
        self.grouped(self.engine.meta_incident(RELOAD_FAILED_RULE, {"config": path}, False,
                                               "the config was reloaded successfully"))
        return ReloadOutcome(True, now, [], changes)

    def _reload_failed(self, path: str, problems: list[str], now: float, applied: bool = False) -> ReloadOutcome:
        for problem in problems:
            self.log.error("config_problem", problem=problem)
        n = len(problems)
        keeps = "the new config runs without what failed" if applied else "the previous config keeps running"
        self.log.error("config_reload_failed", config=path, errors=n,
                       note=f"{keeps}; run `alertd validate` to check the file")
        self.metrics.reloads.labels("failure").inc()
        self.metrics.reload_ok.set(0)
        reason = (f"{n} error{'s' if n != 1 else ''} in {path}, {keeps}: "
                  + "; ".join(problems[:3]) + (" ..." if n > 3 else ""))
        self.grouped(self.engine.meta_incident(RELOAD_FAILED_RULE, {"config": path}, True, reason))
        return ReloadOutcome(False, now, problems)

    async def apply_plan(self, plan: ReloadPlan) -> tuple[dict[str, list[str]], list[str]]:
        """Switch to `plan.config`; build everything new before changing anything.

        Returns the changes by kind and the problems of a partly applied config (a rebuilt
        source that could not start again; it stays unscheduled until the next reload).
        """
        old, config, src = self.config, plan.config, plan.sources
        new_sources, new_notifiers, problems = {}, {}, []
        try:
            for name in src["added"] + src["rebuilt"]:
                new_sources[name] = self.make_source(name, config.sources[name], plan.registry)
            for name in plan.receivers:
                new_notifiers[name] = self.make_notifiers(name, config.receivers.get(name, ()), plan.registry)
            for name in src["added"]:
                await _start(new_sources[name], name)
            async with self.tick_lock:  # never between the slices of a running tick
                rules = self.engine.apply_config(config, plan.registry)
        except Exception as exc:
            for plugin in [*new_sources.values(), *(n for d in new_notifiers.values() for n in d.values())]:
                await self.close_plugin(plugin)
            if isinstance(exc, ReloadError):
                raise
            raise ReloadError(f"the new config is valid but could not be applied: "
                              f"{type(exc).__name__}: {exc}") from None

        self.config, self.registry = config, plan.registry
        if self.trainer is not None:
            self.trainer.sync(self.engine)
        for name in src["removed"] + src["rebuilt"]:
            await self.stop_source(name, old.sources[name].timeout + 1)
        for name in src["rebuilt"]:  # the old instance let go of its port or file: start the new
            try:
                await _start(new_sources[name], name)
            except ReloadError as exc:
                problems.append(str(exc))
                await self.close_plugin(new_sources.pop(name))
        self.sources.update(new_sources)
        self._swap_notifiers(plan.receivers, new_notifiers)
        self.delivery.use(config)
        self.group_timer.use(self.engine.router)
        if new_sources or rules["added"] or rules["changed"]:
            await self.backfill()
        for name in new_sources:
            schedule_source(self.scheduler, config.sources[name], self.poll)
            self.progress.expect(name)
        for name in plan.rescheduled():
            self.scheduler.reschedule_job(f"source:{name}", trigger=trigger_for(config.sources[name]))
            self.progress.expect(name)
        for name in src["removed"]:
            self.progress.forget(name)
        if old.retention != config.retention:
            self.store.samples.index.granularity = min(60.0, config.retention / 4)
            schedule_daemon_jobs(self.scheduler, self)
        if old.store != config.store and self.store_path != config.store_path():
            self.log.warning("config_needs_restart", key="store",
                             note="the store stays where it was until alertd restarts")
        await self.rebind_http(old.http, config.http)
        changes = {f"sources_{k}": v for k, v in src.items() if k != "kept"}
        changes.update({f"rules_{k}": v for k, v in rules.items() if k != "kept"})
        changes["receivers_changed"] = plan.receivers
        changes["routes_changed"] = ["routes"] if plan.routes_changed else []
        return changes, problems

    async def stop_source(self, name: str, timeout: float) -> None:
        """Unschedule a source, let its running poll finish (up to `timeout`), close it."""
        if self.scheduler.get_job(f"source:{name}") is not None:
            self.scheduler.remove_job(f"source:{name}")
        await self.wait_for_poll(name, timeout)
        await self.close_plugin(self.sources.pop(name))

    def _swap_notifiers(self, receivers: list[str], new_notifiers: dict) -> None:
        """Deliver through new instances now; close the old ones once no send uses them."""
        old = []
        for name in receivers:
            for key in [k for k in self.notifiers if k[0] == name]:
                old.append(self.notifiers.pop(key))
            self.notifiers.update(new_notifiers.get(name, {}))
        if old:
            asyncio.get_running_loop().create_task(self._close_after_sends(old))

    async def _close_after_sends(self, plugins) -> None:
        async with self.delivery.lock:  # after the send in progress, if any
            for plugin in plugins:
                await self.close_plugin(plugin)

    async def close_plugin(self, plugin) -> None:
        """Close a source or notifier instance; a failure is logged, never raised."""
        try:
            await asyncio.wait_for(plugin.close(), 5)
        except Exception as exc:
            self.log.warning("close_failed", plugin=type(plugin).__name__, error=str(exc) or type(exc).__name__)


async def _start(source, name: str) -> None:
    try:
        await source.start()
    except Exception as exc:
        raise ReloadError(f'the source "{name}" could not start: {exc}') from None
