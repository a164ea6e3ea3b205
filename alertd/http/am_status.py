"""Alertmanager's `/api/v2/status` and `/api/v2/receivers`, and alertd's routing as an
Alertmanager config.

`amtool config routes [test]` reads the running config from `/api/v2/status`
(`config.original`) and loads it with Alertmanager's own loader, so `am_config_yaml`
writes alertd's route tree, receivers (names only: their integrations are alertd's),
inhibit rules and time intervals in Alertmanager's syntax, every inherited setting spelled
out. amtool then routes label sets exactly as alertd does.
"""

from __future__ import annotations

import platform

from .. import __version__
from ..config.yamlsrc import dump_yaml
from ..render.view import fmt_iso
from .am_alerts import am_json
from .server import Request, Response

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def prom_duration(seconds: float) -> str:
    """Prometheus' duration text (`model.Duration.String()`): 90 -> '1m30s', 0.5 -> '500ms'."""
    ms = int(round(float(seconds) * 1000))
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("y", 31536000000), ("w", 604800000), ("d", 86400000), ("h", 3600000),
                       ("m", 60000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out)


def _matcher_text(m) -> str:
    value = m.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{m.name}{m.op}"{value}"'


def _route(config, root: bool) -> dict:
    out: dict = {"receiver": config.receiver}
    if config.group_by_all:
        out["group_by"] = ["..."]
    else:
        out["group_by"] = list(config.group_by)
    if not root:
        out["matchers"] = [_matcher_text(m) for m in config.matchers]
        out["continue"] = bool(config.continue_)
        if config.mute_time_intervals:
            out["mute_time_intervals"] = list(config.mute_time_intervals)
        if config.active_time_intervals:
            out["active_time_intervals"] = list(config.active_time_intervals)
    out["group_wait"] = prom_duration(config.group_wait)
    out["group_interval"] = prom_duration(config.group_interval)
    out["repeat_interval"] = prom_duration(config.repeat_interval)
    if config.routes:
        out["routes"] = [_route(child, False) for child in config.routes]
    return out


def _ranges(ranges, text=str) -> list[str]:
    return [text(a) if a == b else f"{text(a)}:{text(b)}" for a, b in ranges]


def _weekdays(ranges) -> list[str]:
    """alertd's weekday ranges (monday = 0) as Alertmanager's, whose weeks start on sunday:
    `saturday:sunday` is written `sunday` and `saturday`."""
    days = sorted({(d + 1) % 7 for a, b in ranges for d in range(a, b + 1)})  # sunday = 0
    runs: list[list[int]] = []
    for d in days:
        if runs and runs[-1][1] == d - 1:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    name = ("sunday", *_DAYS[:6])
    return [name[a] if a == b else f"{name[a]}:{name[b]}" for a, b in runs]


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _interval(spec) -> dict:
    out: dict = {}
    if spec.times:
        out["times"] = [{"start_time": _hhmm(a), "end_time": _hhmm(b)} for a, b in spec.times]
    if spec.weekdays:
        out["weekdays"] = _weekdays(spec.weekdays)
    if spec.days_of_month:
        out["days_of_month"] = _ranges(spec.days_of_month)
    if spec.months:
        out["months"] = _ranges(spec.months)
    if spec.years:
        out["years"] = _ranges(spec.years)
    if spec.location and spec.location != "UTC":
        out["location"] = spec.location
    return out


def am_config(config) -> dict:
    """alertd's routing config as an Alertmanager config (a mapping)."""
    doc: dict = {"global": {"resolve_timeout": prom_duration(config.posted_alerts.resolve_timeout)}}
    if config.routes is not None:
        doc["route"] = _route(config.routes, True)
    doc["receivers"] = [{"name": name} for name in config.receivers]
    if config.inhibit_rules:
        doc["inhibit_rules"] = [{"source_matchers": [_matcher_text(m) for m in r.source],
                                 "target_matchers": [_matcher_text(m) for m in r.target],
                                 **({"equal": list(r.equal)} if r.equal else {})}
                                for r in config.inhibit_rules]
    if config.time_intervals:
        doc["time_intervals"] = [{"name": name, "time_intervals": [_interval(s) for s in specs]}
                                 for name, specs in config.time_intervals.items()]
    return doc


def am_config_yaml(config) -> str:
    return dump_yaml(am_config(config))


class StatusApi:
    """`/api/v2/status` and `/api/v2/receivers` from the daemon's AppState."""

    def __init__(self, state):
        self.state = state

    def status(self, request: Request) -> Response:
        config = self.state.config()
        started = self.state.status().get("started_at") or self.state.clock.now()
        return am_json({
            "cluster": {"status": "disabled", "peers": []},
            "config": {"original": am_config_yaml(config)},
            "uptime": fmt_iso(started),
            "versionInfo": {"branch": "", "buildDate": "", "buildUser": "", "goVersion": "",
                            "revision": f"python {platform.python_version()}", "version": f"alertd {__version__}"},
        })

    def receivers(self, request: Request) -> Response:
        return am_json([{"name": name} for name in self.state.config().receivers])
