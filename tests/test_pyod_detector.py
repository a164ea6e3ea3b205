"""The `pyod` detector through the daemon's own code path (engine + trainer + store)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from detect_data import daily

from alertd.backtest.replay import default_rule, replay
from alertd.config.schema import parse_params
from alertd.model import Status

SMALL = {"min_history": 100, "retrain_points": 150, "train_points": 1000}


def rule(registry, **params):
    r = default_rule(registry)
    cls = registry.get("detector", "pyod")
    return dataclasses.replace(r, detector=dataclasses.replace(r.detector, type="pyod", params=parse_params(
        cls.Params, {**SMALL, **params})))  # (the backtests' default rule is surprise's since issue 15)


def same(a, b) -> bool:
    return np.array_equal(a, b, equal_nan=True)


def test_appending_future_points_never_changes_an_earlier_score(registry):
    ts, v = daily(days=5)
    v[500] += 80  # an anomaly after the prefix ends is in the future of every prefix point
    short = replay(rule(registry), registry, ts[:450], v[:450])
    full = replay(rule(registry), registry, ts, v)
    assert full.fits > short.fits >= 2  # models were refitted along the way
    assert same(full.score[:450], short.score) and same(full.status[:450], short.status)
    assert same(full.lower[:450], short.lower)


def test_warm_up_then_verdicts(registry):
    ts, v = daily(days=2)
    r = replay(rule(registry), registry, ts, v)
    assert (r.status[:99] == Status.WARMING_UP).all()
    assert r.status[99] == Status.WARMING_UP  # the 100th point triggers the first fit
    assert (r.status[100:] != Status.WARMING_UP).all()
    assert np.isnan(r.score[:100]).all() and np.isfinite(r.score[100:]).all()


def test_calibrated_scores_stay_in_0_1_and_normal_data_rarely_crosses(registry):
    ts, v = daily(days=6)
    r = replay(rule(registry), registry, ts, v)
    s = r.score[np.isfinite(r.score)]
    assert ((s >= 0) & (s <= 1)).all()
    # once two days have taught it the daily rhythm, the cycle itself is normal (before
    # that, the first evening it ever sees is new to it: what back-fill is for)
    assert (r.score[2 * 144:] >= 0.999).mean() < 0.01


def test_a_collapse_and_a_spike_are_detected_with_an_explanation(registry):
    ts, v = daily(days=6)
    v[700:706] = 5.0  # orders collapse for an hour
    v[800] += 90
    r = replay(rule(registry), registry, ts, v)
    assert r.status[700] == Status.ANOMALOUS and r.status[800] == Status.ANOMALOUS
    assert r.onsets[700] and r.onsets[800]
    assert "for " in r.reasons[700] and "expected" in r.reasons[700]  # "expected 80-140 for 16:40"
    assert any(w in r.reasons[700] for w in ("below", "drop", "low")), r.reasons[700]
    assert any(w in r.reasons[800] for w in ("above", "rise", "high", "jump up")), r.reasons[800]
    assert r.lower[700] > 5.0
    assert any(t.kind == "firing" for t in r.incidents)


def test_direction_down_ignores_spikes(registry):
    ts, v = daily(days=4)
    v[450] += 90
    v[500:504] = 1.0
    r = replay(rule(registry, direction="down"), registry, ts, v)
    assert r.status[450] == Status.OK and r.status[500] == Status.ANOMALOUS
    assert np.isnan(r.upper[450]) and np.isfinite(r.lower[450])


def test_cooldown_merges_repeated_starts_into_one_detection(registry):
    ts, v = daily(days=4)
    for k in (400, 412, 424):  # one event that flickers
        v[k] += 90
    flicker = replay(rule(registry, cooldown=0), registry, ts, v)
    assert flicker.onsets[[400, 412, 424]].all()
    merged = replay(rule(registry, cooldown=30), registry, ts, v)
    assert merged.onsets[400] and not merged.onsets[[412, 424]].any()
    assert (merged.status[[412, 424]] == Status.ANOMALOUS).all()  # still anomalous for incidents


def test_bad_points_get_defined_verdicts(registry):
    ts, v = daily(days=3)
    v = v.copy()
    v[200] = np.nan
    ts = ts.copy()
    ts[250] = ts[249]  # repeated timestamp
    ts[300] = ts[298]  # out of order
    r = replay(rule(registry), registry, ts, v)
    assert r.status[200] == Status.SKIPPED and r.status[250] == Status.SKIPPED
    assert r.status[300] == Status.SKIPPED
    assert (r.status[101:] != Status.WARMING_UP).all()


def test_a_constant_series_does_not_crash_and_any_change_is_anomalous(registry):
    ts = 1_750_000_000.0 + np.arange(400) * 60.0
    v = np.full(400, 7.0)
    v[350] = 8.0
    r = replay(rule(registry), registry, ts, v)
    assert (r.status[100:350] == Status.OK).all()
    assert r.status[350] == Status.ANOMALOUS


@pytest.mark.parametrize("model,params", [("ECOD", {}), ("IForest", {"n_estimators": 20}), ("HBOS", {}),
                                          ("SpectralResidual", {}), ("PCA", {})])
def test_other_models_run_through_the_same_path(registry, model, params):
    ts, v = daily(days=3)
    v[380] += 150
    r = replay(rule(registry, model=model, model_params=params), registry, ts, v)
    s = r.score[np.isfinite(r.score)]
    assert len(s) > 300 and ((s >= 0) & (s <= 1)).all()
    assert r.score[380] > np.nanquantile(r.score[300:370], 0.95)


def test_univariate_model_with_one_feature(registry):
    ts, v = daily(days=3)
    v[380] += 100
    r = replay(rule(registry, model="MAD", model_params={}, features=["residual"]), registry, ts, v)
    assert r.status[380] == Status.ANOMALOUS
