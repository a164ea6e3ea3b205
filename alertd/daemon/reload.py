"""SIGHUP: validate the config file again and switch to it, changing only what changed.

A bad file changes nothing: every problem is logged (the same sentences `alertd validate`
prints), `alertd_config_reloads_total{result="failure"}` counts it, and the meta-incident
`alertd_config_reload_failed` fires through the normal routes. The next good reload
resolves it.

A good file is applied as a difference against the running config:

- sources: new ones are built, back-filled and scheduled; removed ones are unscheduled and
  closed once their running poll is over; a changed schedule (every, cron, jitter) only
  reschedules the job; changed parameters rebuild the source instance.
- rules: `Engine.apply_config` keeps the runtime (history windows, detector instance and
  fitted model) of every unchanged rule; open incidents are kept (same fingerprints).
- receivers: changed ones get new notifier instances; routes rebuild the router.
- http: a new address rebinds the server (on failure the old one keeps serving); a new
  token applies to the next request. `store` needs a restart (logged).

Plugin code is not re-imported: a reload reuses the loaded plugins unless `plugin_dirs`
changed. Changing a plugin's code needs a restart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from ..config.load import load_config, plugin_dirs_of, read_config_file
from ..incidents.meta import CONFIG_RELOAD_FAILED, MetaRule
from ..plugins import PluginError, load_registry
from .scheduler import schedule_source, trigger_for
from ..config.shards import apply_shard
from ..config.schema import ConfigError

RELOAD_FAILED_RULE = MetaRule(CONFIG_RELOAD_FAILED, severity="warning", annotations={
    "summary": "alertd could not reload its config; it keeps running the previous one"})
_SCHEDULE = ("every", "cron", "jitter", "timeout", "backfill")


@dataclass
class ReloadOutcome:
    """What a reload did: ok, when, the problems of a bad file, and the changes applied."""

    ok: bool
    at: float
    problems: list[str] = field(default_factory=list)
    changes: dict[str, list[str]] = field(default_factory=dict)


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


def load_new(daemon):
    """(config, registry) of the file on disk; the running registry unless plugin_dirs changed."""
    path = daemon.config.path
    raw = read_config_file(path)
    registry = daemon.registry
    if tuple(plugin_dirs_of(raw)) != tuple(daemon.config.plugin_dirs):
        registry = load_registry(plugin_dirs_of(raw), base_dir=Path(path).resolve().parent)
    return apply_shard(load_config(path, registry), daemon.shard_override), registry


async def reload_config(daemon) -> ReloadOutcome:
    """Reload `daemon`'s config file; never raises for a bad file (see the module doc)."""
    log, metrics, now = daemon.log, daemon.metrics, daemon.clock.now()
    path = daemon.config.path
    try:
        config, registry = load_new(daemon)
        changes, problems = await apply(daemon, config, registry)
    except (ConfigError, PluginError, ReloadError) as exc:
        problems = [str(p) for p in getattr(exc, "problems", ())] or [str(exc)]
        return _failed(daemon, path, problems, now)
    if problems:  # applied, but a rebuilt source could not start again
        log.info("config_reloaded", config=path, **{k: v for k, v in changes.items() if v})
        outcome = _failed(daemon, path, problems, now, applied=True)
        outcome.changes = changes
        return outcome
    metrics.reloads.labels("success").inc()
    metrics.reload_ok.set(1)
    metrics.reload_ok_at.set(now)
    log.info("config_reloaded", config=path, **{k: v for k, v in changes.items() if v})
    result = daemon.engine.meta_incident(RELOAD_FAILED_RULE, {"config": path}, False,
                                         "the config was reloaded successfully")
    if result.notifications:
        daemon.dispatcher.wakeup.set()
    return ReloadOutcome(True, now, [], changes)


def _failed(daemon, path: str, problems: list[str], now: float, applied: bool = False) -> ReloadOutcome:
    for problem in problems:
        daemon.log.error("config_problem", problem=problem)
    n = len(problems)
    keeps = ("the new config runs without what failed" if applied
             else "the previous config keeps running")
    daemon.log.error("config_reload_failed", config=path, errors=n,
                     note=f"{keeps}; run `alertd validate` to check the file")
    daemon.metrics.reloads.labels("failure").inc()
    daemon.metrics.reload_ok.set(0)
    reason = (f"{n} error{'s' if n != 1 else ''} in {path}, {keeps}: "
              + "; ".join(problems[:3]) + (" ..." if n > 3 else ""))
    result = daemon.engine.meta_incident(RELOAD_FAILED_RULE, {"config": path}, True, reason)
    if result.notifications:
        daemon.dispatcher.wakeup.set()
    return ReloadOutcome(False, now, problems)


class ReloadError(Exception):
    """A valid file that still cannot be applied (a plugin failed to build)."""


async def apply(daemon, config, registry) -> tuple[dict[str, list[str]], list[str]]:
    """Switch the running daemon to `config`; build everything new before changing anything.

    Returns the changes by kind and the problems of a partly applied config (a rebuilt
    source that could not start again; it stays unscheduled until the next reload).
    """
    old = daemon.config
    src = source_changes(old.sources, config.sources)
    receivers = receiver_changes(old.receivers, config.receivers)
    new_sources, new_notifiers, problems = {}, {}, []
    try:
        for name in src["added"] + src["rebuilt"]:
            new_sources[name] = daemon.make_source(name, config.sources[name], registry)
        for name in receivers:
            new_notifiers[name] = daemon.make_notifiers(name, config.receivers.get(name, ()), registry)
        for name in src["added"]:
            await _start(new_sources[name], name)
        rules = daemon.engine.apply_config(config, registry)
    except Exception as exc:
        for plugin in [*new_sources.values(), *(n for d in new_notifiers.values() for n in d.values())]:
            await _close(daemon, plugin)
        if isinstance(exc, ReloadError):
            raise
        raise ReloadError(f"the new config is valid but could not be applied: "
                          f"{type(exc).__name__}: {exc}") from None

    daemon.config, daemon.registry = config, registry
    if daemon.trainer is not None:
        daemon.trainer.sync(daemon.engine)
    for name in src["removed"] + src["rebuilt"]:
        if daemon.scheduler.get_job(f"source:{name}") is not None:
            daemon.scheduler.remove_job(f"source:{name}")
        await daemon.wait_for_poll(name, old.sources[name].timeout + 1)
        await _close(daemon, daemon.sources.pop(name))
    for name in src["rebuilt"]:  # the old instance let go of its port or file: start the new
        try:
            await _start(new_sources[name], name)
        except ReloadError as exc:
            problems.append(str(exc))
            await _close(daemon, new_sources.pop(name))
    daemon.sources.update(new_sources)
    _swap_notifiers(daemon, receivers, new_notifiers)
    _point_dispatcher(daemon, config)
    if new_sources or rules["added"] or rules["changed"]:
        await daemon.backfill()
    for name in new_sources:
        schedule_source(daemon.scheduler, config.sources[name], daemon.poll)
    for name in src["rescheduled"]:
        before, sc = old.sources[name], config.sources[name]
        if [getattr(before, k) for k in _SCHEDULE[:3]] != [getattr(sc, k) for k in _SCHEDULE[:3]]:
            daemon.scheduler.reschedule_job(f"source:{name}", trigger=trigger_for(sc))
    if old.store != config.store and daemon.store_path != config.store_path():
        daemon.log.warning("config_needs_restart", key="store",
                           note="the store stays where it was until alertd restarts")
    await _rebind_http(daemon, old.http, config.http)
    changes = {f"sources_{k}": v for k, v in src.items() if k != "kept"}
    changes.update({f"rules_{k}": v for k, v in rules.items() if k != "kept"})
    changes["receivers_changed"] = receivers
    changes["routes_changed"] = ["routes"] if old.routes != config.routes else []
    return changes, problems


async def _start(source, name: str) -> None:
    try:
        await source.start()
    except Exception as exc:
        raise ReloadError(f'the source "{name}" could not start: {exc}') from None


def _point_dispatcher(daemon, config) -> None:
    """The dispatcher flushes the new alert stage's groups with the new delivery settings."""
    dispatcher = daemon.dispatcher
    dispatcher.router, dispatcher.config = daemon.engine.router, config
    dispatcher.health.config = config
    dispatcher.health.notifier_types = dispatcher._notifier_types()


def _swap_notifiers(daemon, receivers: list[str], new_notifiers: dict) -> None:
    """Point the dispatcher at new instances now; close the old ones once no send uses them."""
    old = []
    for name in receivers:
        for key in [k for k in daemon.notifiers if k[0] == name]:
            old.append(daemon.notifiers.pop(key))
        daemon.notifiers.update(new_notifiers.get(name, {}))
    if old:
        asyncio.get_running_loop().create_task(_close_later(daemon, old))


async def _close_later(daemon, plugins) -> None:
    async with daemon.dispatcher.lock:  # after the send in progress, if any
        for plugin in plugins:
            await _close(daemon, plugin)


async def _close(daemon, plugin) -> None:
    try:
        await asyncio.wait_for(plugin.close(), 5)
    except Exception as exc:
        daemon.log.warning("close_failed", plugin=type(plugin).__name__, error=str(exc) or type(exc).__name__)


async def _rebind_http(daemon, old, new) -> None:
    from ..http.listen import ListenError, open_server

    if (old.enabled, old.host, old.port) == (new.enabled, new.host, new.port):
        return
    previous, server = daemon.web, None
    if new.enabled:
        try:
            server = await open_server(daemon, new)
        except ListenError as exc:
            daemon.log.error("http_rebind_failed", error=str(exc),
                             note=f"still serving on {old.listen}" if previous else "no HTTP server")
            return
    daemon.web = server
    if previous is not None:
        await previous.close()
