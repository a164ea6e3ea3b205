"""Helpers for source tests: build a source from plain params, as the daemon would."""

from __future__ import annotations

import asyncio

from alertd.base import PluginContext
from alertd.config.schema import parse_params
from alertd.log import get_logger
from alertd.metrics import Metrics


def make_source(registry, type_name: str, params: dict, clock, *, name: str = "src", store=None,
                http=None, timeout: float = 5.0, interval: float | None = 10.0, metrics=None):
    """A source instance of `type_name` with validated params and a daemon-like context."""
    cls = registry.get("source", type_name)
    context = PluginContext(name=name, now=clock.now, log=get_logger(source=name), http=http,
                            store=store, run_blocking=asyncio.to_thread, timeout=timeout,
                            interval=interval, metrics=metrics if metrics is not None else Metrics())
    return cls(parse_params(cls.Params, params), context)


def counter(metrics, attr: str, *labels) -> float:
    """The value of one labelled counter of a Metrics instance."""
    return getattr(metrics, attr).labels(*labels)._value.get()
