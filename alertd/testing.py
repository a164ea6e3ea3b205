"""Test helpers for plugin authors: the same tools alertd's built-in plugins are tested with.

    from alertd.testing import FakeClock, collect_once, registry_with, score_series

    def test_weather_reports_the_city():
        samples = collect_once(Weather, {"city": "Oslo"})
        assert samples[0].labels == (("city", "Oslo"),)

    def test_my_detector_flags_a_spike():
        values = [10.0] * 300 + [90.0] + [10.0] * 20
        result = score_series(MyDetector, values, params={"limit": 50})
        assert result.anomalous()[300]

`score_series` replays the values through the daemon's own engine, store and trainer (the
code path of `alertd backtest`), so a trainable detector is fitted when the daemon would fit
it and scores only what it has seen. Installed alertd also registers this module as a
pytest plugin (datasette does the same): the fixtures `alertd_clock` and `alertd_registry`
are then available in any test suite without an import.
"""

from __future__ import annotations

import asyncio
import dataclasses
import types
from dataclasses import dataclass

from .base import Detector, Notifier, PluginContext, Source
from .clock import FakeClock
from .hookspecs import hookimpl

__all__ = ["FakeClock", "ScoredSeries", "collect_once", "make_context", "params_of", "registry_with",
           "score_series"]

T0 = 1_750_032_000.0  # a Monday 00:00 UTC: series generated in tests start here by default


def params_of(plugin_cls, values: dict | None = None):
    """`plugin_cls.Params` built from a dict as the config loader does (ConfigError if bad)."""
    from .config.schema import parse_params

    return parse_params(plugin_cls.Params, values or {})


def make_context(name: str = "test", clock=None, **extra) -> PluginContext:
    """A PluginContext for one plugin instance: its name, a clock's `now`, a quiet logger."""
    from .log import get_logger

    clock = clock or FakeClock(T0)
    return PluginContext(name=name, now=clock.now, log=get_logger().bind(plugin=name), **extra)


def registry_with(*classes, builtins: bool = True):
    """A registry holding the built-in plugins (unless `builtins=False`) and `classes`,
    registered through the same hooks as a plugin module's (a built-in class is there already)."""
    from .plugins import Registry

    registry = Registry()
    if builtins:
        registry.load_builtins()
    known = {info.cls for info in registry.all()}
    classes = [c for c in classes if c not in known]
    module = types.ModuleType("alertd_test_plugins")
    kinds = {"register_sources": Source, "register_detectors": Detector, "register_notifiers": Notifier}
    for hook, base in kinds.items():
        mine = [c for c in classes if issubclass(c, base)]
        if mine:
            setattr(module, hook, hookimpl(_registering(mine)))
    registry.add_module(module, "test", "alertd_test_plugins")
    return registry


def _registering(classes):
    def register_classes(register):
        for cls in classes:
            register(cls)
    return register_classes


def collect_once(source_cls, params: dict | None = None, *, clock=None, http=None, **context):
    """Start a source, collect one poll, commit, close; returns the samples."""
    async def run():
        client = http
        own = None
        if client is None:
            import httpx
            client = own = httpx.AsyncClient(timeout=10)
        source = source_cls(params_of(source_cls, params), make_context(clock=clock, http=client, **context))
        try:
            await source.start()
            samples = await source.collect()
            source.commit()
            source.committed()
            return samples
        finally:
            await source.close()
            if own is not None:
                await own.aclose()
    return asyncio.run(run())


@dataclass(frozen=True)
class ScoredSeries:
    """Per point of a scored series: status, score, threshold, expected range and reason."""

    ts: object
    values: object
    status: object
    score: object
    threshold: object
    lower: object
    upper: object
    reasons: list
    fits: int

    def anomalous(self):
        """A boolean array: which points were judged ANOMALOUS."""
        from .model import Status

        return self.status == Status.ANOMALOUS


def score_series(detector_cls, values, *, ts=None, step: float = 60.0, params: dict | None = None,
                 start: float = T0) -> ScoredSeries:
    """Replay `values` (one point every `step` seconds from `start`, or at `ts`) through a
    rule whose detector is `detector_cls` with `params`, as the daemon would score them."""
    import numpy as np

    from .backtest.replay import default_rule, replay
    from .config.types import DetectorConfig

    registry = registry_with(detector_cls)
    values = np.asarray(values, dtype=float)
    ts = np.asarray(ts, dtype=float) if ts is not None else start + step * np.arange(len(values))
    rule = default_rule(registry)
    rule = dataclasses.replace(rule, detector=DetectorConfig(detector_cls.type_name,
                                                             params_of(detector_cls, params)))
    r = replay(rule, registry, ts, values)
    return ScoredSeries(r.ts, r.values, r.status, r.score, r.threshold, r.lower, r.upper, r.reasons, r.fits)


# -- the pytest plugin (registered under the entry-point group pytest11) ----------------------
try:
    import pytest
except ImportError:  # pragma: no cover - alertd runs without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture
    def alertd_clock():
        """A FakeClock at a fixed Monday midnight UTC; move it with `advance(seconds)`."""
        return FakeClock(T0)

    @pytest.fixture
    def alertd_registry():
        """The built-in plugins, as the daemon loads them (no entry points, no site dirs)."""
        from .plugins import Registry

        registry = Registry()
        registry.load_builtins()
        return registry
