"""Calibration: raw scores -> [0, 1], monotone, and the same meaning for every model."""

from __future__ import annotations

import numpy as np
import pytest

from alertd.detect.calibration import Calibrator, fit_gpd
from alertd.detect.pyod_models import build_model


def test_scores_stay_in_0_1_and_are_monotone():
    rng = np.random.default_rng(0)
    cal = Calibrator.fit(rng.exponential(size=3000))
    raw = np.concatenate([[-1e9, -5.0, 0.0], np.linspace(0, 50, 500), [1e6, 1e300, np.inf]])
    s = cal(raw)
    assert ((s >= 0) & (s <= 1)).all()
    assert (np.diff(s[3:-3]) >= 0).all()
    assert s[-1] == 1.0
    assert np.isnan(cal(np.array([np.nan]))[0])


def test_beyond_the_largest_training_score_the_tail_keeps_growing():
    rng = np.random.default_rng(1)
    cal = Calibrator.fit(rng.exponential(size=2000))
    top = cal.top
    s = cal(np.array([top, top + 1, top + 3, top + 6]))
    assert (np.diff(s) > 0).all() and s[-1] < 1.0  # not stuck at n/(n+1)
    # exponential data: a GPD shape near 0 and P(X > top + 3) about e^-3 of P(X > top)
    assert abs(cal.xi) < 0.15
    assert np.exp(-4.5) < (1 - s[2]) / (1 - s[0]) < np.exp(-1.5)


def test_ties_are_normal_and_any_excess_over_a_constant_is_certain():
    cal = Calibrator.fit(np.zeros(1000))
    assert cal(np.array([0.0]))[0] == pytest.approx(0.5, abs=0.01)
    assert cal(np.array([1e-6]))[0] == 1.0
    assert Calibrator.fit(np.array([]))(np.array([3.0]))[0] == 1.0  # untrained: nothing is normal


def test_gpd_fit_recovers_a_heavy_tail():
    rng = np.random.default_rng(2)
    sigma, xi = fit_gpd(rng.pareto(4.0, size=20000))  # Lomax: GPD with shape 1/4
    assert xi == pytest.approx(0.25, abs=0.08)


@pytest.mark.parametrize("model", ["KNN", "PCA", "HBOS", "IForest"])
def test_the_threshold_means_the_same_across_models(model):
    """On fresh normal data about 1 % of points reach a calibrated 0.99, whatever the model."""
    rng = np.random.default_rng(4)
    train, fresh = rng.normal(size=(2000, 3)), rng.normal(size=(10000, 3))
    m = build_model(model, {"n_estimators": 30} if model == "IForest" else {})
    m.fit(train)
    cal = Calibrator.fit(m.decision_scores_)
    share = float((cal(m.decision_function(fresh)) >= 0.99).mean())
    assert 0.004 <= share <= 0.025, share
