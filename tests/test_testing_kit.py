"""alertd.testing: a third-party plugin tested the way the built-ins are."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from alertd import Batch, Detector, Sample, Scores, Source, Status, hookimpl, make_labels
from alertd.config.schema import ConfigError
from alertd.testing import FakeClock, collect_once, params_of, registry_with, score_series


class Weather(Source):
    """A site plugin as docs/plugins.md writes one."""

    type_name = "weather_test"

    @dataclass(frozen=True)
    class Params:
        city: str = "Berlin"

    async def collect(self):
        return [Sample("temperature_c", make_labels({"city": self.params.city}), self.context.now(), 21.5)]


class Above(Detector):
    """Anomalous above `limit`, after `min_history` points."""

    type_name = "above_test"

    @dataclass(frozen=True)
    class Params:
        limit: float = 50.0
        min_history: int = 5

    def __init__(self, params, context):
        super().__init__(params, context)
        self.min_history = params.min_history

    def score(self, batch: Batch) -> Scores:
        v = np.asarray(batch.values, dtype=float)
        warm = np.asarray(batch.seen) < self.min_history
        status = np.where(warm, Status.WARMING_UP, np.where(v > self.params.limit, Status.ANOMALOUS, Status.OK))
        return Scores(status=status, score=np.where(v > self.params.limit, 1.0, 0.0),
                      threshold=np.full(len(v), 0.5), lower=np.full(len(v), np.nan),
                      upper=np.full(len(v), self.params.limit))


@hookimpl
def register_sources(register):
    register(Weather)


def test_collect_once_runs_a_source_with_a_fake_clock():
    clock = FakeClock(1_800_000_000.0)
    (sample,) = collect_once(Weather, {"city": "Oslo"}, clock=clock)
    assert sample == Sample("temperature_c", (("city", "Oslo"),), 1_800_000_000.0, 21.5)


def test_params_are_checked_as_the_config_loader_does():
    with pytest.raises(ConfigError, match='unknown key "cty"; did you mean "city"'):
        params_of(Weather, {"cty": "Oslo"})


def test_score_series_replays_through_the_engine_with_warm_up():
    values = [10.0] * 20 + [90.0] + [10.0] * 5
    result = score_series(Above, values, params={"limit": 50})
    assert (result.status[:4] == Status.WARMING_UP).all()
    assert np.flatnonzero(result.anomalous()).tolist() == [20]
    assert result.upper[20] == 50.0


def test_registry_with_adds_classes_beside_the_builtins(alertd_registry):
    registry = registry_with(Weather, Above)
    assert registry.get("source", "weather_test") is Weather and registry.get("detector", "above_test") is Above
    assert registry.get("detector", "threshold") is alertd_registry.get("detector", "threshold")


def test_the_pytest_fixtures_come_with_the_package(alertd_clock):
    start = alertd_clock.now()
    alertd_clock.advance(60)
    assert alertd_clock.now() == start + 60
