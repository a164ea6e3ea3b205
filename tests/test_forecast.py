"""The `forecast` detector: anomalies against the forecast's interval, early warnings
(`will_cross`) with the profile model, a flow, the `trend` line, and its config errors."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from configs import detector_rule_text
from detect_data import daily

from alertd.backtest.replay import replay
from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.detect.forecast import Line, about, crossing
from alertd.detect.forecast_fit import fit_profile
from alertd.detect.trend import line_fit, trend_crossing
from alertd.model import Status


def rule_of(write_config, registry, detector: str, timing: str = "", every: str = "60s", retention: str = "30d"):
    text = detector_rule_text(detector, timing=timing, series="stock", every=every, retention=retention)
    return load_config(write_config(text), registry, environ={}).rules[0]


def stock(days: float, step: float = 60.0, seed: int = 3, refill_at=(6, 18), capacity: float = 900.0,
          late: dict | None = None):
    """(ts, level): a stock sold with a daily rhythm (busy evenings), refilled to `capacity` at
    the hours `refill_at`; `late` maps a refill's index to the hours it comes late."""
    rng = np.random.default_rng(seed)
    ts = 1_750_032_000.0 + np.arange(int(days * 86400 / step)) * step  # a Monday 00:00 UTC
    hour = (ts % 86400) / 3600
    rate = 0.3 + 1.2 * np.exp(-0.5 * ((hour - 19) / 2.5) ** 2) + 0.5 * np.exp(-0.5 * ((hour - 12) / 2) ** 2)
    sold = rng.poisson(rate * step / 60.0)
    late = late or {}
    refills = [t for t in ts if (t % 86400) / 3600 in refill_at]
    due = {int(t + 3600 * late.get(i, 0.0)) for i, t in enumerate(refills)}
    level, out = capacity, np.empty(len(ts))
    for i, t in enumerate(ts):
        if int(t) in due:
            level = capacity
        level = max(level - sold[i], 0.0)
        out[i] = level
    return ts, out


# -- anomalies against the forecast's interval -------------------------------------------------------
def test_profile_forecast_is_quiet_on_the_rhythm_and_flags_a_point_outside_its_interval(write_config, registry):
    rule = rule_of(write_config, registry, "{type: forecast, min_history: 100}")
    ts, v = daily(days=9, step=300, seed=4)
    spiked = v.copy()
    spike = len(v) - 40  # an evening in the last day
    spiked[spike] += 60.0
    r = replay(rule, registry, ts, spiked)
    judged = (r.status == Status.OK) | (r.status == Status.ANOMALOUS)
    assert judged[-288:].all() and r.fits >= 2
    assert r.status[spike] == Status.ANOMALOUS
    assert "forecast by daily profile + smoothing" in r.reasons[spike]
    normal = np.ones(len(v), bool)
    normal[spike] = False
    steady = judged & normal & (np.arange(len(v)) >= len(v) - 4 * 288)  # once the rhythm is learnt
    assert (r.status[steady] == Status.ANOMALOUS).mean() < 0.015  # a 99 % interval, on new data
    # the expected range follows the day's rhythm: an evening band lies above a night band
    night, evening = len(v) - 288 + 3 * 12, len(v) - 288 + 19 * 12
    assert r.lower[evening] > r.upper[night]


def test_profile_fit_forecasts_the_next_hours_better_than_the_last_day_repeated():
    ts, v = daily(days=9, step=300, seed=7, noise=6.0)
    cut = len(ts) - 72  # 6 hours held out
    model = fit_profile(["a"], [ts[:cut]], [v[:cut]], end=float(ts[cut - 1]), span=7 * 86400.0, horizon=6 * 3600.0)
    assert model.seasons == ["daily"] and model.model == "profile"
    u = (ts[cut:] - model.origin) / model.knot
    path = model.at(np.array([0]), u[None, :])[0]
    snaive = v[cut - 288:cut - 288 + 72]
    assert np.mean(np.abs(v[cut:] - path)) < 0.9 * np.mean(np.abs(v[cut:] - snaive))
    # paths, not model objects: a stored model is a few arrays, and survives a pickle round trip
    again = pickle.loads(pickle.dumps(model))
    assert again.index == {"a": 0} and np.array_equal(again.path, model.path)
    assert model.path.dtype == np.float32 and model.path.nbytes < 1000


# -- early warnings ----------------------------------------------------------------------------------
def test_a_stock_out_is_warned_ahead_with_when_and_no_warning_when_the_delivery_comes(write_config, registry):
    rule = rule_of(write_config, registry,
                   "{type: forecast, flow: drops, will_cross: {below: 1, within: 1h}, retrain: 1h}",
                   timing="clear_for: 10m")
    ts, v = stock(days=10, late={17: 9.0})  # the 18:00 delivery of day 9 comes 9 hours late
    r = replay(rule, registry, ts, v)
    out = np.flatnonzero(v < 1)
    start = out[0]
    assert ts[start] > ts[0] + 8 * 86400  # the only stock-out is the late delivery's
    firing = [t.incident for t in r.incidents if t.kind == "firing"]
    assert len(firing) == 1, [(t.kind, t.incident.fired_at) for t in r.incidents]
    lead = ts[start] - firing[0].fired_at
    assert 30 * 60 <= lead <= 75 * 60
    fired = int(np.searchsorted(ts, firing[0].fired_at))
    assert np.isfinite(r.crossing_at[fired]) and abs(r.crossing_at[fired] - ts[start]) < 20 * 60
    reason = r.reasons[fired]
    assert reason.startswith("stock ") and "expected to reach 1 in about" in reason
    assert "forecast by daily profile + smoothing of its drops" in reason
    # the warning resolves at once when the line is crossed (the breach's rule takes over)
    assert r.status[start] == Status.OK and not np.isfinite(r.crossing_at[start])
    (resolved,) = [t.incident for t in r.incidents if t.kind == "resolved"]
    assert resolved.resolved_at == ts[start] and resolved.resolution == "crossed"


def test_trend_warns_when_a_steady_fill_reaches_the_line_and_says_when(write_config, registry):
    rule = rule_of(write_config, registry, "{type: forecast, model: trend, range: 1h, will_cross: {above: 0.9, within: 2h}}")
    ts = 1_750_000_000.0 + np.arange(600) * 60.0
    v = np.r_[np.full(300, 0.5), 0.5 + 0.001 * np.arange(300)]  # +0.06 an hour from row 300
    r = replay(rule, registry, ts, v)
    reach = 300 + 400  # 0.5 + 0.001 * 400 = 0.9, were it to go on
    warned = np.flatnonzero(r.status == Status.ANOMALOUS)
    assert warned[0] > 300 and ts[warned[0]] >= ts[0] + 300 * 60 + 3600 - 600  # once the line's slope shows
    i = warned[-1]
    expected_at = ts[0] + reach * 60.0
    assert abs(r.crossing_at[i] - expected_at) < 120
    assert f"expected to reach 0.9 in about {about(expected_at - ts[i])}" in r.reasons[i]
    assert "forecast by linear trend over 1h" in r.reasons[i]


def test_confidence_warns_earlier_than_the_central_path():
    ts = 1_750_000_000.0 + np.arange(61) * 60.0
    rng = np.random.default_rng(1)
    v = 100 - 0.5 * np.arange(61) + rng.normal(0, 2, 61)  # falls 30 an hour, noisy
    fit = line_fit(v[None, :], ts[None, :], ts[-1:], 3600.0)
    central, _ = trend_crossing(fit, ts[-1:], v[-1:], Line(0.0, True, 6 * 3600.0))
    cautious, _ = trend_crossing(fit, ts[-1:], v[-1:], Line(0.0, True, 6 * 3600.0, 0.9))
    assert math.isfinite(central[0]) and cautious[0] < central[0] - 60
    expected = ts[-1] + (0 - fit.intercept[0]) / fit.slope[0]
    assert abs(central[0] - expected) < 1e-6


def test_crossing_search_is_vectorised_and_interpolated_between_knots():
    ts = 1_750_000_000.0 + np.arange(3 * 288) * 300.0
    v = [np.full(len(ts), 50.0), 50.0 + 0.0 * ts]
    model = fit_profile(["a", "b"], [ts, ts], v, end=float(ts[-1]), span=3 * 86400.0, horizon=6 * 3600.0)
    model.path[1] = model.path[1, 0] - 10.0 * np.arange(model.path.shape[1])  # b falls 10 a knot
    now = np.full(2, float(ts[-1]))
    at, _ = crossing(model, np.array([0, 1]), now, np.array([50.0, 50.0]), np.zeros(2), Line(12.0, True, 3600.0))
    assert not math.isfinite(at[0])
    # 50 - 10 k = 12 at k = 3.8 knots from the path's origin
    assert abs(at[1] - (model.origin + 3.8 * model.knot)) < 1.0


# -- config errors at their line ---------------------------------------------------------------------
@pytest.mark.parametrize("detector, every, retention, message", [
    ("{type: forecast, model: trend, will_cross: {above: 0.9, within: 30s}}", "60s", "30d",
     "alertd.yaml:8: rules[r].detector.will_cross.within: within (30s) is shorter than the time between two "
     "points of the source (1m): the warning could only come after the line is crossed; make within at least 1m"),
    ("{type: forecast, seasonality: weekly, train_span: 21d}", "60s", "7d",
     "alertd.yaml:8: rules[r].detector.seasonality: a weekly season needs 14d of history, but the store keeps "
     "7d (retention); raise retention to at least 15d or use seasonality: auto"),
    ("{type: forecast, will_cross: {within: 2h}}", "60s", "30d",
     "alertd.yaml:8: rules[r].detector.will_cross.above: will_cross needs a line: add below: LEVEL (warn before "
     "the value falls under it) or above: LEVEL"),
    ("{type: forecast, will_cross: {below: 1}}", "60s", "30d",
     "alertd.yaml:8: rules[r].detector.will_cross.within: will_cross needs within: the horizon to warn ahead "
     "of (e.g. 2h)"),
    ("{type: forecast, flow: drops, will_cross: {above: 5, within: 1h}}", "60s", "30d",
     "alertd.yaml:8: rules[r].detector.flow: flow: drops warns before the value gets below a line; write "
     "will_cross.below"),
])
def test_wrong_settings_are_config_errors_at_their_line(write_config, registry, detector, every, retention, message):
    with pytest.raises(ConfigError) as err:
        rule_of(write_config, registry, detector, every=every, retention=retention)
    assert any(line.endswith("/" + message) for line in str(err.value).splitlines()), str(err.value)


def test_a_setting_on_its_own_line_is_reported_at_that_line(write_config, registry):
    text = """\
    sources:
      src: {type: test_list, every: 5m}
    rules:
      - name: r
        source: src
        series: disk
        detector:
          type: forecast
          model: trend
          range: 1h
          will_cross:
            above: 0.9
            within: 2m
    receivers:
      rec: [{type: test_record}]
    """
    with pytest.raises(ConfigError) as err:
        load_config(write_config(text), registry, environ={})
    (line,) = [x for x in str(err.value).splitlines() if "within" in x]
    assert "/alertd.yaml:13: rules[r].detector.will_cross.within: within (2m) is shorter" in line
    assert line.endswith("make within at least 5m")


@pytest.mark.parametrize("flow, below, confidence", [("none", False, None), ("none", True, 0.8),
                                                     ("drops", True, None), ("drops", True, 0.9)])
def test_the_reachability_filter_finds_the_same_crossings_as_searching_every_series(flow, below, confidence):
    from alertd.detect.forecast import _search

    rng = np.random.default_rng(8)
    n = 400
    ts = 1_750_000_000.0 + np.arange(3 * 288) * 300.0
    level = rng.uniform(20, 200, n)
    values = [lv + 10 * np.sin(2 * np.pi * ts / 86400) + rng.normal(0, 2, len(ts)) for lv in level]
    if flow == "drops":  # stocks: sold at varying paces, refilled each day
        values = [np.maximum(500 - np.cumsum(rng.poisson(lv / 100, len(ts))) % 500, 0).astype(float) for lv in level]
    model = fit_profile([str(i) for i in range(n)], [ts] * n, values, end=float(ts[-1]), span=3 * 86400.0,
                        horizon=4 * 3600.0, flow=flow)
    rows = np.arange(n)
    now = np.full(n, float(ts[-1]) + 120.0)
    x = np.array([v[-1] for v in values])
    offset = rng.normal(0, 3, n) if flow == "none" else np.zeros(n)
    line = Line(100.0 if flow == "none" else 50.0, below, 2 * 3600.0, confidence)
    fast, prob = crossing(model, rows, now, x, offset, line)
    full, full_prob = _search(model, rows, now, x, offset, line)
    assert 0 < np.isfinite(full).sum() < n  # some cross, some do not: the filter has work
    assert np.array_equal(np.isfinite(fast), np.isfinite(full))
    assert np.allclose(fast[np.isfinite(full)], full[np.isfinite(full)])
    assert (prob >= full_prob - 1e-9).all()  # a filtered series' chance is an upper bound of its own


def test_a_dropped_series_leaves_the_forecasts_per_series_memory(write_config, registry):
    from alertd.base import PluginContext

    rule = rule_of(write_config, registry, "{type: forecast, model: trend, range: 1h, will_cross: {above: 0.9, within: 2h}}")
    detector = registry.get("detector", "forecast")(rule.detector.params, PluginContext(name="r", now=lambda: 0.0))
    detector.memory.rows([f'disk{{pod="web-{i}"}}' for i in range(50)])  # what scoring does for each new series
    detector.forget_series([f'disk{{pod="web-{i}"}}' for i in range(40)])  # the prune job, for pods that went
    assert len(detector.memory) == 10
