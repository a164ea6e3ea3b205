"""Which rule a backtest replays: one of a config's rules, or the built-in default detector.

A `spec` is plain data (config path, rule name, threshold), so `--jobs` worker processes
can rebuild the same rule; `rule_from_spec` raises `BacktestError` with one sentence.
"""

from __future__ import annotations

from ..config.load import load_with_plugins
from ..config.schema import suggest
from ..plugins import load_registry
from .replay import default_rule, with_threshold


class BacktestError(Exception):
    """A backtest cannot run as asked; the message says why in one sentence."""


def rule_spec(config: str | None, rule: str | None, threshold: float | None) -> dict:
    """What a worker process needs to rebuild the rule: config path, rule name, threshold."""
    return {"config": config if rule else None, "rule": rule, "threshold": threshold}


def rule_from_spec(spec: dict):
    """(rule, registry) for a `rule_spec` (used in this process and in worker processes)."""
    if spec["rule"]:
        config, registry = load_with_plugins(spec["config"])
        rules = {r.name: r for r in config.rules}
        if spec["rule"] not in rules:
            raise BacktestError(f'the config has no rule "{spec["rule"]}"{suggest(spec["rule"], rules)}')
        rule = rules[spec["rule"]]
    else:
        registry = load_registry([], entrypoints=True)
        rule = default_rule(registry)
    if spec["threshold"] is not None:
        try:
            rule = with_threshold(rule, spec["threshold"])
        except ValueError as exc:
            raise BacktestError(f"--threshold {spec['threshold']:g}: {exc}") from None
    return rule, registry
