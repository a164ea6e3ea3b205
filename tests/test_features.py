"""Feature building: seasonal normalisation, causality, the two window paths agree."""

from __future__ import annotations

import numpy as np
from detect_data import daily

from alertd.detect.features import DAY, WEEK, fit_norm, point_features, series_features, sliding_windows


def test_a_daily_rhythm_is_found_and_noise_has_none():
    ts, v = daily(days=4)
    rng = np.random.default_rng(1)
    norm = fit_norm(["a", "b"], [(ts, v), (ts, rng.normal(100, 3, len(ts)))])
    assert list(norm.period) == [DAY, 0.0]
    assert norm.slots[0] == 144  # one slot per 10-minute point
    # residual spread is the noise (3), not the daily swing (~60)
    assert 2.0 < norm.rscale[0] < 4.5 and norm.scale[0] > 10


def test_a_weekly_rhythm_needs_two_weeks_and_wins_over_daily():
    ts, v = daily(days=15, step=1800, weekly=True)
    assert fit_norm(["a"], [(ts, v)]).period[0] == WEEK
    assert fit_norm(["a"], [(ts[: 48 * 10], v[: 48 * 10])]).period[0] == DAY  # 10 days: daily only
    assert fit_norm(["a"], [(ts, v)], seasonality="none").period[0] == 0


def test_the_expected_value_follows_the_same_slot_of_past_days():
    ts, v = daily(days=4, noise=0.0)
    norm = fit_norm(["a"], [(ts, v)])
    expected = norm.expected((ts[-144:] + DAY)[None, :])[0]  # tomorrow
    assert np.abs(expected - v[-144:]).max() < 1e-6


def test_features_of_a_point_use_only_the_past_and_both_paths_agree():
    ts, v = daily(days=3)
    norm = fit_norm(["a"], [(ts[:300], v[:300])])
    full = series_features(ts, v, norm, 12)
    prefix = series_features(ts[:350], v[:350], norm, 12)
    assert np.array_equal(full[:350], prefix)  # appending the future changes nothing
    # the daemon path: a batch's history (window) and the current point
    wv, wt = sliding_windows(ts, v, 12, 340, 341)
    tick = point_features(wv, wt, norm, np.array([0]))
    assert np.array_equal(tick[0], full[340])


def test_gaps_and_missing_values_give_finite_features():
    ts, v = daily(days=3)
    v = v.copy()
    v[100:105] = np.nan
    norm = fit_norm(["a"], [(ts, v)])
    feats = series_features(ts, v, norm, 12)
    assert np.isfinite(feats).all()
    constant = fit_norm(["c"], [(ts, np.full(len(ts), 5.0))])
    assert np.isfinite(series_features(ts, np.full(len(ts), 5.0), constant, 12)).all()
