"""`alertd.yaml` -> validated, frozen config objects, or every error at once.

`load_config(path, registry)` parses with a safe YAML loader that keeps line numbers, checks
the core keys with `alertd.config.schema`, checks each plugin's parameters against its `Params`
dataclass, resolves cross references (rule -> source, route -> receiver) and raises
`ConfigError` listing one sentence per problem: `file:line: key: what is wrong; what to do`.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..matchers import parse_selector
from . import history
from .core_keys import DetectorCore, NotifierCore, PostedAlertsCore, RuleCore, SourceCore, TopCore
from .history import DEFAULT_RETENTION, choose_retention
from .http import build_http
from .plugin_dirs import check_plugin_dirs, plugin_dirs_of  # noqa: F401  (plugin_dirs_of: for callers)
from .routing import (
    ReceiverSettings,
    build_inhibit_rules,
    build_receiver,
    build_route,
    build_time_intervals,
    check_fallbacks,
    default_route,
)
from .rule_checks import check_rule_setting, data_interval
from .schema import ConfigError, Problem, Where, build, fields_of, suggest
from .shards import parse_shard
from .types import (
    Config,
    DetectorConfig,
    FlapSettings,
    NotifierConfig,
    PostedAlertsConfig,
    RuleConfig,
    SourceConfig,
)
from .yamlsrc import YamlList, YamlMap, YamlSyntaxError, load_yaml


# -- loading --------------------------------------------------------------------------------
def read_config_file(path: str | os.PathLike):
    """Return the raw YAML mapping of a config file, or raise ConfigError with one problem."""
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(path, 0, "(file)", "the config file does not exist; pass "
                                   "-c PATH or create it (see the README)")]) from None
    except UnicodeDecodeError as exc:
        line = exc.object.count(b"\n", 0, exc.start) + 1
        raise ConfigError([Problem(path, line, "(file)", f"the byte {exc.object[exc.start]:#04x} is not "
                                   "UTF-8; save the file as UTF-8")]) from None
    except OSError as exc:
        raise ConfigError([Problem(path, 0, "(file)", f"the config file cannot be read: {exc}")]) from None
    try:
        raw = load_yaml(text, path)
    except YamlSyntaxError as exc:
        raise ConfigError([Problem(path, exc.line, "(syntax)",
                                   f"the file is not valid YAML: {exc.problem}; fix the syntax near that line")]) from None
    if raw is None:
        raw = YamlMap()
    if not isinstance(raw, dict):
        raise ConfigError([Problem(path, 1, "(top level)", "the file must be a mapping of keys "
                                   "such as sources, rules, receivers")])
    return raw


def _subset(mapping, keys) -> YamlMap:
    out = YamlMap((k, v) for k, v in mapping.items() if k in keys)
    out.line = getattr(mapping, "line", 0)
    out.key_lines = getattr(mapping, "key_lines", {})
    return out


def build_plugin(registry, kind: str, core_cls, mapping, where: Where):
    """Validate a `{type: X, <core keys>, <plugin params>}` mapping; returns (core, params)."""
    if not isinstance(mapping, dict):
        where.error(f"expected a mapping with a type key, got {mapping!r}")
        return None, None
    core_keys = set(fields_of(core_cls))
    type_name = mapping.get("type")
    cls = None
    if type_name is None:
        where.error(f'the required key "type" is missing; add one of the {kind} types: '
                    + ", ".join(registry.names(kind)))
    elif not isinstance(type_name, str) or registry.get(kind, type_name) is None:
        where.child("type", mapping.line_of("type") if isinstance(mapping, YamlMap) else None).error(
            f'unknown {kind} type "{type_name}"{suggest(type_name, registry.names(kind))}')
    else:
        cls = registry.get(kind, type_name)
    core = build(core_cls, _subset(mapping, core_keys), where) if type_name is not None else None
    if cls is None:
        return core, None
    plugin_part = _subset(mapping, set(mapping) - core_keys)
    params = build(cls.Params, plugin_part, where, extra_keys=core_keys)
    return core, params


def _build_rule(registry, raw_rule, where: Where, sources, problems_before, annotation_check=None):
    core = build(RuleCore, raw_rule, where)
    if core is None:
        return None
    if annotation_check is not None:
        _check_annotations(core.annotations, raw_rule.get("annotations"),
                           where.child("annotations", raw_rule.line_of("annotations")), annotation_check)
    if core.source not in sources:
        where.child("source", raw_rule.line_of("source")).error(
            f'the rule names the source "{core.source}", which is not defined under sources'
            f"{suggest(core.source, sources)}")
    try:
        selector = parse_selector(core.series)
    except ValueError as exc:
        where.child("series", raw_rule.line_of("series")).error(str(exc))
        selector = None
    dwhere = where.child("detector", raw_rule.line_of("detector"))
    det_core, det_params = build_plugin(registry, "detector", DetectorCore, core.detector, dwhere)
    if det_params is not None:
        det_params = _nested_detectors(registry, det_params, core.detector, dwhere)
    flapping = _flapping(core.flapping, where.child("flapping", raw_rule.line_of("flapping")))
    if selector is None or det_params is None or flapping is None:
        return None
    return RuleConfig(core.name, core.source, selector, DetectorConfig(det_core.type, det_params),
                      float(core.for_), float(core.clear_for), core.severity, core.labels,
                      core.annotations, float(core.keep_firing_for), core.no_data, flapping)


def _check_annotations(annotations: dict, raw, where: Where, check) -> None:
    """Each annotation through `check(text)` (a template check; ValueError with a sentence)."""
    for key, text in annotations.items():
        try:
            check(text)
        except ValueError as exc:
            where.child(str(key), raw.line_of(key) if isinstance(raw, YamlMap) else None).error(str(exc))


def _nested_detectors(registry, params, raw, where: Where):
    """Validate detector params that hold detectors themselves (`all`, `any`).

    A Params field with `metadata={"detectors": True}` is a list of `{type: ..., ...}`
    mappings; each is checked like a rule's detector (errors at `detector.detectors[0].key`)
    and replaced by a DetectorConfig carrying its class.
    """
    changes = {}
    for f in dataclasses.fields(params):
        if not f.metadata.get("detectors"):
            continue
        items = raw.get(f.name) if isinstance(raw, dict) else None
        sub = where.child(f.name, raw.line_of(f.name) if isinstance(raw, YamlMap) else None)
        built, ok = [], True
        for i, item in enumerate(items or ()):
            iwhere = sub.item(i, items.line_of(i) if isinstance(items, YamlList) else None)
            core, child = build_plugin(registry, "detector", DetectorCore, item, iwhere)
            if child is not None:
                child = _nested_detectors(registry, child, item, iwhere)
            if core is None or child is None:
                ok = False
                continue
            built.append(DetectorConfig(core.type, child, registry.get("detector", core.type)))
        if not ok:
            return None
        changes[f.name] = tuple(built)
    return dataclasses.replace(params, **changes) if changes else params


def _flapping(value, where: Where) -> FlapSettings | None:
    """`flapping: false`, `flapping: {window: 21, low: 10, high: 20}` or unset (defaults)."""
    if value is None:
        return FlapSettings()
    if isinstance(value, bool):
        return FlapSettings(enabled=value)
    if not isinstance(value, dict):
        where.error(f"expected true, false or a mapping such as {{window: 21, low: 10, high: 20}}, "
                    f"got {value!r}")
        return None
    return build(FlapSettings, value, where)


def _posted_alerts(raw, where: Where) -> PostedAlertsConfig:
    """`posted_alerts: {resolve_timeout: 5m, flapping: ...}` (or unset: the defaults)."""
    if raw is None:
        return PostedAlertsConfig()
    core = build(PostedAlertsCore, raw, where)
    if core is None:
        return PostedAlertsConfig()
    if core.resolve_timeout <= 0:
        where.child("resolve_timeout").error("the resolve timeout must be more than 0s; write for example 5m")
    flapping = _flapping(core.flapping, where.child("flapping"))
    return PostedAlertsConfig(float(core.resolve_timeout), flapping or FlapSettings())


def load_config(path: str | os.PathLike, registry, *, environ=None, annotation_check=None) -> Config:
    """Load and validate a config file; raise ConfigError listing every problem.

    `annotation_check(text)` checks each rule annotation (raising ValueError with a sentence):
    the callers pass `alertd.render.annotations.check_annotation`, which this layer cannot
    import (render sits above config)."""
    path = str(path)
    raw = read_config_file(path)
    where = Where(path, getattr(raw, "line", 1), "", environ=environ)
    top = build(TopCore, _subset(raw, {"store", "plugin_dirs", "retention", "history_retention",
                                           "shutdown_timeout", "detector_timeout"}),
                where, extra_keys=fields_of(TopCore))
    if top is not None and top.shutdown_timeout <= 0:
        where.child("shutdown_timeout", raw.line_of("shutdown_timeout")).error(
            "the drain time must be more than 0s; write for example 10s")
    if top is not None and top.history_retention <= 0:
        where.child("history_retention", raw.line_of("history_retention")).error(
            "history_retention must be more than 0s (resolved incidents and sent notices older than it "
            "are deleted); write for example 30d")
    if top is not None and top.detector_timeout <= 0:
        where.child("detector_timeout", raw.line_of("detector_timeout")).error(
            "the time a detector may take to score a tick must be more than 0s; write for example 10s")
    if top is not None and "plugin_dirs" in raw:
        check_plugin_dirs(top.plugin_dirs, raw, path, where)
    shard = None
    if raw.get("shard") is not None:
        try:
            shard = parse_shard(raw["shard"])
        except ValueError as exc:
            where.child("shard", raw.line_of("shard")).error(str(exc))
    http = build_http(raw.get("http"), where.child("http", raw.line_of("http")), environ)
    if "http" not in raw:
        http = dataclasses.replace(http, where="")
    for key in raw:
        if key not in fields_of(TopCore):
            where.child(str(key), raw.line_of(key)).error(
                f'unknown key "{key}"{suggest(key, fields_of(TopCore))}')

    sources: dict[str, SourceConfig] = {}
    raw_sources = raw.get("sources") or YamlMap()
    swhere = where.child("sources", raw.line_of("sources"))
    if not isinstance(raw_sources, dict):
        swhere.error("expected a mapping of source names to source settings")
        raw_sources = {}
    for name, spec in raw_sources.items():
        sub = swhere.child(str(name), raw_sources.line_of(name))
        core, params = build_plugin(registry, "source", SourceCore, spec, sub)
        if core is None or params is None:
            continue
        if core.every is None and core.cron is None:
            sub.error('the source has no schedule; add "every: 30s" or "cron: \'*/5 * * * *\'"')
            continue
        if core.every is not None and core.cron is not None:
            sub.error('the source has both "every" and "cron"; keep one of them')
            continue
        if core.cron is not None:
            from apscheduler.triggers.cron import CronTrigger
            try:
                CronTrigger.from_crontab(core.cron)
            except ValueError as exc:
                sub.child("cron", spec.line_of("cron")).error(
                    f'"{core.cron}" is not a crontab expression ({exc}); write five fields like "*/5 * * * *"')
                continue
        if core.every is not None and core.every <= 0:
            sub.child("every", spec.line_of("every")).error("the interval must be more than 0s")
            continue
        sources[str(name)] = SourceConfig(str(name), core.type, core.every, core.cron,
                                          float(core.jitter), float(core.timeout), core.backfill, params)

    receivers: dict[str, tuple[NotifierConfig, ...]] = {}
    raw_receivers = raw.get("receivers") or YamlMap()
    rwhere = where.child("receivers", raw.line_of("receivers"))
    if not isinstance(raw_receivers, dict):
        rwhere.error("expected a mapping of receiver names to lists of integrations")
        raw_receivers = {}
    env = os.environ if environ is None else environ
    receiver_settings: dict[str, ReceiverSettings] = {}
    for name, items in raw_receivers.items():
        sub = rwhere.child(str(name), raw_receivers.line_of(name))
        settings_form = isinstance(items, dict) and "type" not in items
        items, settings = build_receiver(str(name), items, sub)
        receiver_settings[str(name)] = settings or ReceiverSettings()
        if settings_form:
            sub = sub.child("integrations", raw_receivers[name].line_of("integrations")
                            if isinstance(raw_receivers[name], YamlMap) else None)
        if not isinstance(items, list):
            sub.child("integrations").error("expected a list of integrations such as [{type: console}]")
            continue
        built = []
        for i, spec in enumerate(items):
            isub = sub.item(i, items.line_of(i) if isinstance(items, YamlList) else None)
            enabled = True
            if isinstance(spec, dict) and spec.get("if_env") and not env.get(str(spec["if_env"])):
                enabled = False  # disabled: skip checking values that need the missing variable
                if not isinstance(spec.get("type"), str) or registry.get("notifier", spec["type"]) is None:
                    build_plugin(registry, "notifier", NotifierCore, spec, isub)
                built.append(NotifierConfig(str(spec.get("type")), None, False))
                continue
            core, params = build_plugin(registry, "notifier", NotifierCore, spec, isub)
            if core is not None and params is not None:
                built.append(NotifierConfig(core.type, params, enabled, core.send_resolved))
        receivers[str(name)] = tuple(built)
    check_fallbacks(receiver_settings, raw_receivers, rwhere)

    rules: list[RuleConfig] = []
    raw_rules = raw.get("rules") or YamlList()
    rlwhere = where.child("rules", raw.line_of("rules"))
    if not isinstance(raw_rules, list):
        rlwhere.error("expected a list of rules")
        raw_rules = []
    seen_names: set[str] = set()
    for i, raw_rule in enumerate(raw_rules):
        sub = rlwhere.item(i, raw_rules.line_of(i) if isinstance(raw_rules, YamlList) else None)
        name = raw_rule.get("name") if isinstance(raw_rule, dict) else None
        if isinstance(name, str):
            sub = sub.at(sub.line, f"rules[{name}]")
            if name in seen_names:
                sub.error(f'the rule name "{name}" is used twice; rule names must be unique')
            seen_names.add(name)
        rule = _build_rule(registry, raw_rule, sub, raw_sources, len(where.problems), annotation_check)
        if rule is not None:
            src = sources.get(rule.source)
            interval = data_interval(registry, src) if src is not None else None
            if interval and src.every:  # flap gaps in data time, as the verdicts' timestamps are
                rule = dataclasses.replace(rule, flapping=dataclasses.replace(rule.flapping, interval=float(interval)))
            check_rule_setting(registry, rule, raw_rule.get("detector"), interval, top and top.retention,
                               sub.child("detector", raw_rule.line_of("detector")))
            rules.append(rule)

    intervals = build_time_intervals(raw.get("time_intervals"),
                                     where.child("time_intervals", raw.line_of("time_intervals")))
    inhibit_rules = build_inhibit_rules(raw.get("inhibit_rules"),
                                        where.child("inhibit_rules", raw.line_of("inhibit_rules")))
    raw_routes = raw.get("routes")
    routes = None
    if raw_routes is None:
        if receivers:
            routes = default_route(receivers)
        elif rules:
            where.error('there are rules but no receivers; add a "receivers" section '
                        "(for example console: [{type: console}])")
    else:
        routes = build_route(raw_routes, where.child("routes", raw.line_of("routes")),
                             receivers, intervals, None)

    posted = _posted_alerts(raw.get("posted_alerts"), where.child("posted_alerts", raw.line_of("posted_alerts")))
    retention, warnings = DEFAULT_RETENTION, []
    if top is not None:
        given = None if top.retention is None else float(top.retention)
        retention, warnings = choose_retention(
            given, history.needs(rules, sources, registry), where.child("retention", raw.line_of("retention")),
            {name: sc.every for name, sc in sources.items() if sc.every})
    if where.problems:
        raise ConfigError(sorted(where.problems, key=lambda p: p.line))
    return Config(path, top.store, tuple(top.plugin_dirs), retention, sources,
                  tuple(rules), routes, receivers, frozenset(where.secrets), receiver_settings,
                  inhibit_rules, intervals, http, float(top.shutdown_timeout), shard,
                  detector_timeout=float(top.detector_timeout), posted_alerts=posted, warnings=tuple(warnings),
                  retention_given=top.retention is not None, history_retention=float(top.history_retention))


def load_with_plugins(path, *, environ=None, annotation_check=None):
    """(config, registry) for the file at `path`: its plugin_dirs loaded first, then validated."""
    from ..plugins import load_registry

    raw = read_config_file(path)
    registry = load_registry(plugin_dirs_of(raw), base_dir=Path(path).resolve().parent)
    return load_config(path, registry, environ=environ, annotation_check=annotation_check), registry
