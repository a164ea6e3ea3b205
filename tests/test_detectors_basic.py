"""The built-in `threshold` and `zscore` detectors, on hand-built batches."""

from __future__ import annotations

import numpy as np
import pytest

from alertd.base import PluginContext
from alertd.config.schema import ConfigError, parse_params
from alertd.default_plugins.detectors.threshold import Threshold
from alertd.default_plugins.detectors.zscore import ZScore
from alertd.detect.robust import nan_median_rows, score_from_z
from alertd.model import Batch, Status, make_labels

T0 = 1_750_000_000.0


def make(cls, **params):
    return cls(parse_params(cls.Params, params), PluginContext("rule", lambda: T0))


def batch(values, history=None, seen=None, was=None, window=30) -> Batch:
    values = np.asarray(values, dtype=float)
    n = len(values)
    if history is None:
        history = np.full((n, window), np.nan)
    history = np.asarray(history, dtype=float).reshape(n, -1)
    w = history.shape[1]
    if seen is None:
        seen = np.count_nonzero(~np.isnan(history), axis=1) + 1
    return Batch(keys=[f"s{i}" for i in range(n)], labels=[make_labels({"i": i}) for i in range(n)],
                 ts=np.full(n, T0), values=values, history=history,
                 history_ts=np.tile(T0 - 60.0 * np.arange(w, 0, -1), (n, 1)),
                 seen=np.broadcast_to(np.asarray(seen, dtype=np.int64), (n,)).copy(),
                 was_anomalous=np.zeros(n, bool) if was is None else np.asarray(was, bool))


def statuses(scores):
    return [Status(int(s)) for s in scores.status]


# -- threshold ---------------------------------------------------------------------------------

def test_builtins_are_registered(registry):
    assert registry.get("detector", "threshold") is Threshold
    assert registry.get("detector", "zscore") is ZScore


def test_threshold_above_and_below():
    det = make(Threshold, above=100, below=10)
    scores = det.score(batch([5, 10, 50, 100, 101], seen=5))
    assert statuses(scores) == [Status.ANOMALOUS, Status.OK, Status.OK, Status.OK, Status.ANOMALOUS]
    assert list(scores.score) == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert (scores.threshold == 0.5).all()
    assert (scores.lower == 10).all() and (scores.upper == 100).all()
    assert scores.status.dtype == np.int8


def test_threshold_one_sided_range_is_nan_on_the_open_side():
    scores = make(Threshold, below=0.9).score(batch([0.5, 0.95], seen=3))
    assert statuses(scores) == [Status.ANOMALOUS, Status.OK]
    assert np.isnan(scores.upper).all() and (scores.lower == 0.9).all()


def test_threshold_hysteresis_uses_the_previous_verdict():
    det = make(Threshold, above=100, clear_above=80, below=10, clear_below=20)
    values = [90, 90, 79, 15, 15, 21]
    was = [False, True, True, False, True, True]
    scores = det.score(batch(values, seen=9, was=was))
    assert statuses(scores) == [Status.OK, Status.ANOMALOUS, Status.OK,
                                Status.OK, Status.ANOMALOUS, Status.OK]
    # the range shown is the line that fires, also while recovering (never the clear level)
    assert (scores.upper == 100).all() and (scores.lower == 10).all()


def test_threshold_notice_says_the_firing_level_as_expected():
    """`above: 0.8, clear_above: 0.6`: the reason says `expected <= 0.8`, not 0.6."""
    from alertd.model import Verdict
    det = make(Threshold, above=0.8, clear_above=0.6)
    b = batch([0.85, 0.7], seen=5, was=[False, True])
    scores = det.score(b)
    assert statuses(scores) == [Status.ANOMALOUS, Status.ANOMALOUS]  # 0.7 has not cleared yet
    for i in range(2):
        reason = Verdict.from_scores("r", b, scores, i, "load").reason
        assert "expected <= 0.8," in reason and "0.6" not in reason


def test_threshold_hysteresis_defaults_to_the_trigger_level():
    scores = make(Threshold, above=100).score(batch([100, 100.5], seen=3, was=[True, True]))
    assert statuses(scores) == [Status.OK, Status.ANOMALOUS]


def test_threshold_nan_is_skipped_and_min_history_warms_up():
    det = make(Threshold, above=1, min_history=3)
    scores = det.score(batch([np.nan, np.inf, 5, 5], seen=[9, 9, 2, 3]))
    assert statuses(scores) == [Status.SKIPPED, Status.SKIPPED, Status.WARMING_UP, Status.ANOMALOUS]
    assert np.isnan(scores.score[:3]).all()


@pytest.mark.parametrize("params, message", [
    ({}, "above, below or both"),
    ({"above": 10, "below": 20}, "must be less than above"),
    ({"above": 10, "clear_above": 12}, "must not exceed above"),
    ({"below": 10, "clear_below": 5}, "must not be under below"),
    ({"below": 10, "clear_above": 5}, "only makes sense with above"),
    ({"above": 10, "clear_below": 5}, "only makes sense with below"),
    ({"above": 10, "below": 5, "clear_above": 7, "clear_below": 8}, "could never clear"),
    ({"above": "lots"}, "expected a number"),
    ({"above": 1, "min_history": 0}, "min_history"),
])
def test_threshold_check_errors(params, message):
    with pytest.raises(ConfigError) as err:
        parse_params(Threshold.Params, params)
    assert message in str(err.value)


# -- zscore ------------------------------------------------------------------------------------

def noise_history(n, window=30, seed=1, loc=100.0, sd=5.0):
    return np.random.default_rng(seed).normal(loc, sd, size=(n, window))


def test_zscore_takes_window_and_min_history_from_params():
    det = make(ZScore, window=12, min_history=5)
    assert det.window == 12 and det.min_history == 5


def test_zscore_warms_up_until_min_history():
    det = make(ZScore, min_history=10)
    hist = np.full((3, 30), np.nan)
    hist[0, -8:] = 100  # seen 9 with the current point
    hist[1, -9:] = 100  # seen 10
    hist[2, -9:] = 100
    scores = det.score(batch([500, 500, 100], hist))
    assert statuses(scores) == [Status.WARMING_UP, Status.ANOMALOUS, Status.OK]
    assert np.isnan(scores.score[0]) and np.isnan(scores.lower[0])


def test_zscore_flags_a_spike_and_not_normal_noise():
    det = make(ZScore)
    hist = noise_history(2)
    scores = det.score(batch([160.0, 103.0], hist, seen=100))
    assert statuses(scores) == [Status.ANOMALOUS, Status.OK]
    assert scores.score[0] > 0.5 > scores.score[1]
    med = np.median(hist, axis=1)
    mad = np.median(np.abs(hist - med[:, None]), axis=1)
    assert scores.lower == pytest.approx(med - 4 * 1.4826 * mad)
    assert scores.upper == pytest.approx(med + 4 * 1.4826 * mad)
    assert scores.context[0] == "from the last 30 points"


def test_zscore_false_positive_rate_on_normal_noise_is_low():
    rng = np.random.default_rng(3)
    hist = rng.normal(0, 1, size=(5000, 30))
    scores = make(ZScore).score(batch(rng.normal(0, 1, 5000), hist, seen=50))
    assert (scores.status == Status.ANOMALOUS).mean() < 0.01


def test_zscore_constant_series_does_not_crash_or_fire_on_the_same_value():
    det = make(ZScore)
    hist = np.vstack([np.full(30, 7.0), np.full(30, 7.0), np.zeros(30), np.zeros(30)])
    with np.errstate(all="raise"):
        scores = det.score(batch([7.0, 9.0, 0.0, 1.0], hist, seen=40))
    assert statuses(scores) == [Status.OK, Status.ANOMALOUS, Status.OK, Status.ANOMALOUS]
    assert np.isfinite(scores.score).all() and scores.score[0] == 0.0


def test_zscore_constant_zero_with_no_mad_floor():
    det = make(ZScore, min_mad=0.0, min_mad_ratio=0.0)
    scores = det.score(batch([0.0, 1.0, -1.0], np.zeros((3, 30)), seen=40))
    assert statuses(scores) == [Status.OK, Status.ANOMALOUS, Status.ANOMALOUS]
    assert list(scores.score) == [0.0, 1.0, 1.0]


@pytest.mark.parametrize("direction, expected", [
    ("both", [Status.ANOMALOUS, Status.ANOMALOUS]),
    ("up", [Status.ANOMALOUS, Status.OK]),
    ("down", [Status.OK, Status.ANOMALOUS]),
])
def test_zscore_direction(direction, expected):
    det = make(ZScore, direction=direction)
    scores = det.score(batch([160.0, 40.0], noise_history(2, seed=5), seen=50))
    assert statuses(scores) == expected
    if direction == "up":
        assert np.isnan(scores.lower).all() and np.isfinite(scores.upper).all()
    if direction == "down":
        assert np.isnan(scores.upper).all() and np.isfinite(scores.lower).all()
        assert scores.score[0] == 0.0  # a rise is no evidence for a drop


def test_zscore_nan_current_value_is_skipped_and_nan_history_is_ignored():
    det = make(ZScore, min_history=5)
    hist = noise_history(3)
    hist[:, ::3] = np.nan  # gaps in the history
    hist[2, 0] = np.inf
    scores = det.score(batch([np.nan, np.inf, 101.0], hist, seen=50))
    assert statuses(scores) == [Status.SKIPPED, Status.SKIPPED, Status.OK]
    assert np.isnan(scores.score[:2]).all()


def test_zscore_vectorised_batch_matches_row_by_row():
    rng = np.random.default_rng(11)
    n, w = 10_000, 30
    hist = rng.normal(50, 3, size=(n, w))
    hist[rng.random((n, w)) < 0.05] = np.nan
    hist[:100, :20] = np.nan  # short histories
    values = rng.normal(50, 3, n)
    values[::97] += rng.choice([-40, 40], size=len(values[::97]))
    det = make(ZScore, window=w)
    before = hist.copy()
    scores = det.score(batch(values, hist, seen=100))
    np.testing.assert_array_equal(hist, before)  # the batch's history is not modified
    assert scores.status.shape == (n,) and scores.score.shape == (n,)
    med = np.nanmedian(hist, axis=1)
    mad = np.nanmedian(np.abs(hist - med[:, None]), axis=1)
    z = np.abs(values - med) / (1.4826 * mad)
    # fewer than min_history - 1 usable points in the history: still warming up
    warm = np.count_nonzero(~np.isnan(hist), axis=1) < 9
    assert 0 < warm.sum() < 100
    assert (scores.status[warm] == Status.WARMING_UP).all()
    np.testing.assert_allclose(scores.upper[~warm], (med + 4 * 1.4826 * mad)[~warm])
    assert ((scores.status == Status.ANOMALOUS) == (z > 4) & ~warm).all()
    assert (scores.status[::97][~warm[::97]] == Status.ANOMALOUS).all()


def test_zscore_score_is_calibrated_and_monotone():
    z = np.linspace(0, 50, 1001)
    s = score_from_z(z, 4.0)
    assert s[0] == 0.0 and ((0 <= s) & (s <= 1)).all()
    assert (np.diff(s) > 0).all()
    assert score_from_z(np.array([4.0]), 4.0)[0] == pytest.approx(0.5)
    # through the detector: further from the median scores higher, threshold is 0.5
    det = make(ZScore, threshold=3.0)
    hist = np.tile(noise_history(1, seed=2), (6, 1))
    scores = det.score(batch([100, 105, 110, 115, 120, 140], hist, seen=50))
    assert (np.diff(scores.score) > 0).all() and (scores.threshold == 0.5).all()
    assert ((scores.score > 0.5) == (scores.status == Status.ANOMALOUS)).all()


def test_nan_median_rows_matches_numpy():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(200, 9))
    a[rng.random(a.shape) < 0.3] = np.nan
    a[0] = np.nan
    med, counts = nan_median_rows(a)
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(a, axis=1)
    np.testing.assert_allclose(med, expected)
    assert counts[0] == 0


@pytest.mark.parametrize("params, message", [
    ({"window": 2}, "window"),
    ({"threshold": 0}, "threshold"),
    ({"direction": "sideways"}, "sideways"),
    ({"min_history": 0}, "min_history"),
    ({"min_mad": -1}, "min_mad"),
])
def test_zscore_check_errors(params, message):
    with pytest.raises(ConfigError) as err:
        parse_params(ZScore.Params, params)
    assert message in str(err.value)
