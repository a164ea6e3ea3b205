"""The `seasonal`, `absent`, `rate`, `all` and `any` detectors, and their config errors."""

from __future__ import annotations

import numpy as np
import pytest
from configs import detector_rule_text
from detect_data import daily

from alertd.backtest.replay import replay
from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.engine.tick import Engine
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Sample, Status, make_labels
from alertd.store import Store


def rule_of(write_config, registry, detector: str, timing: str = ""):
    config = load_config(write_config(detector_rule_text(detector, timing=timing)), registry, environ={})
    return config.rules[0], config


# -- seasonal --------------------------------------------------------------------------------------
def test_seasonal_is_quiet_on_a_normal_weekly_cycle_and_fires_on_a_collapse(write_config, registry):
    rule, _ = rule_of(write_config, registry, "{type: seasonal, k: 5, min_slot_points: 2}")
    ts, v = daily(days=35, step=3600, weekly=True, seed=5)
    r = replay(rule, registry, ts, v)
    judged = r.status != Status.WARMING_UP
    assert judged[: 24 * 13].sum() == 0  # no baseline until two weeks of history
    assert (r.status[24 * 15:] == Status.OK).mean() > 0.99  # weekends and nights are normal
    collapsed = v.copy()
    tuesday_noon = 24 * 29 + 12  # day 29 is a Tuesday
    collapsed[tuesday_noon:tuesday_noon + 3] *= 0.2
    r = replay(rule, registry, ts, collapsed)
    assert (r.status[tuesday_noon:tuesday_noon + 3] == Status.ANOMALOUS).all()
    assert "for Tue 12:00" in r.reasons[tuesday_noon] and "expected" in r.reasons[tuesday_noon]
    # the same low value on a Saturday night would be normal: the baseline is per slot
    assert r.lower[tuesday_noon] > r.lower[24 * 33 + 2]


# -- rate --------------------------------------------------------------------------------------------
def test_rate_fires_on_a_fast_drop_not_a_slow_one(write_config, registry):
    rule, _ = rule_of(write_config, registry, "{type: rate, drop: 5}")
    ts = 1_750_000_000.0 + np.arange(40) * 60.0
    v = np.r_[np.linspace(100, 70, 20), 20.0, np.full(19, 20.0)]  # -1.6/min, then -50 in a minute
    r = replay(rule, registry, ts, v)
    assert r.status[0] == Status.WARMING_UP and (r.status[1:20] == Status.OK).all()
    assert r.status[20] == Status.ANOMALOUS and r.lower[20] == pytest.approx(v[19] - 5)
    assert np.isnan(r.upper[20])  # only drops are bounded
    relative, _ = rule_of(write_config, registry, "{type: rate, rise: 0.5, relative: true, over: 5m}")
    r = replay(relative, registry, ts, np.r_[np.full(30, 10.0), np.full(10, 40.0)])
    assert r.status[30] == Status.ANOMALOUS  # +300 % in 5 minutes = 60 %/min > 50 %/min


# -- all / any ---------------------------------------------------------------------------------------
def test_all_needs_every_part_and_any_needs_one(write_config, registry):
    parts = "detectors: [{type: threshold, below: 50}, {type: zscore, window: 20, threshold: 4}]"
    both, _ = rule_of(write_config, registry, f"{{type: all, {parts}}}")
    either, _ = rule_of(write_config, registry, f"{{type: any, {parts}}}")
    ts = 1_750_000_000.0 + np.arange(60) * 60.0
    rng = np.random.default_rng(0)
    v = 40 + rng.normal(0, 1, 60)  # always below 50: the threshold part is always anomalous
    v[50] = 10.0  # also a z-score outlier
    a, o = replay(both, registry, ts, v), replay(either, registry, ts, v)
    assert a.status[40] == Status.OK and a.status[50] == Status.ANOMALOUS
    assert o.status[40] == Status.ANOMALOUS and o.status[50] == Status.ANOMALOUS
    assert a.threshold[50] == 0.5 and 0.5 <= a.score[50] <= 1 and a.score[40] < 0.5


def test_all_trains_its_trainable_parts(write_config, registry):
    rule, _ = rule_of(write_config, registry, "{type: all, detectors: [{type: pyod, min_history: 100, "
                      "retrain_points: 150}, {type: threshold, below: 50}]}")
    ts, v = daily(days=3)
    v[300] = 1.0
    r = replay(rule, registry, ts, v)
    assert r.fits >= 1
    assert r.status[300] == Status.ANOMALOUS
    assert (r.status[101:300] == Status.OK).mean() > 0.95  # normal values are above 50 anyway


def test_nested_detector_errors_name_the_rule_and_key(write_config, registry):
    with pytest.raises(ConfigError) as err:
        rule_of(write_config, registry, "{type: all, detectors: [{type: pyod, model: KNNN}, "
                "{type: threshold}]}")
    text = str(err.value)
    assert 'rules[r].detector.detectors[0].model: unknown PyOD model "KNNN"; did you mean "KNN"?' in text
    assert "rules[r].detector.detectors[1]: a threshold needs above, below or both" in text
    with pytest.raises(ConfigError, match=r"rules\[r\].detector: list at least two detectors"):
        rule_of(write_config, registry, "{type: any, detectors: [{type: threshold, below: 1}]}")


@pytest.mark.parametrize("detector,message", [
    ("{type: pyod, threshold: 1.5}", r"rules\[r\].detector.threshold: the threshold is a calibrated score"),
    ("{type: pyod, model: AutoEncoder}", r'detector.model: the PyOD model "AutoEncoder" needs the optional '
                                         r'package "torch"'),
    ("{type: pyod, model: XGBOD}", r"detector.model: .* it is supervised and needs labelled anomalies"),
    ("{type: pyod, model: IForest, model_params: {trees: 3}}", r'detector.model_params: the PyOD model '
                                                              r'"IForest" has no parameter "trees"'),
    ("{type: pyod, features: [residual, wobble]}", r'detector.features: unknown feature "wobble"'),
    ("{type: pyod, window: 3}", r"detector.window: window must be at least 6 points"),
    ("{type: pyod, retrain: null, retrain_points: null}", r"detector.retrain: set retrain"),
    ("{type: pyod, timezone: Mars/Olympus}", r'detector.timezone: unknown timezone "Mars/Olympus"'),
    ("{type: pyod, model_scope: region}", r'detector.model_scope: .region. is not allowed'),
    ("{type: seasonal, slot: 7m13s}", r"detector.slot: slot must divide the weekly period"),
    ("{type: absent, after: 0s}", r"detector.after: after must be a duration above 0s"),
    ("{type: rate, drop: -3}", r"detector.drop: drop is a positive change per minute"),
])
def test_bad_detector_params_are_config_errors(write_config, registry, detector, message):
    with pytest.raises(ConfigError, match=message):
        rule_of(write_config, registry, detector)


# -- absent: evaluated when data does not arrive -------------------------------------------------
def test_absent_fires_on_silence_by_the_daemon_clock_and_resolves_on_data(write_config, registry, clock,
                                                                         tmp_path):
    rule, config = rule_of(write_config, registry, "{type: absent, after: 5m}")
    store = Store(tmp_path / "a.db")
    engine = Engine(config, registry, store, clock, Metrics(), get_logger(), integrations={"rec": []})
    labels = make_labels({})

    def point():
        return engine.ingest("src", [Sample("orders", labels, clock.now(), 1.0)])

    point()
    clock.advance(240)
    assert not engine.check_absent("src").transitions  # 4 minutes: still fine
    clock.advance(90)
    fired = engine.check_absent("src").transitions
    assert [t.kind for t in fired] == ["firing"]
    assert "no data for 5m30s (allowed: 5m)" in fired[0].incident.reason
    assert not engine.check_absent().transitions  # still silent: no second notice
    clock.advance(30)
    resolved = point().transitions
    assert [t.kind for t in resolved] == ["resolved"]
    store.close()

    # after a restart the series is known from the store, and silence counts from the start
    store = Store(tmp_path / "a.db")
    engine = Engine(config, registry, store, clock, Metrics(), get_logger(), integrations={"rec": []})
    assert not engine.check_absent().transitions
    clock.advance(301)
    assert [t.kind for t in engine.check_absent().transitions] == ["firing"]
    store.close()
