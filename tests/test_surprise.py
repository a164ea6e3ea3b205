"""The `surprise` detector (the default anomaly detector): its core is causal and batched, the
plugin scores exactly what the core scores, explanations are true (domain, direction,
resolving), and its state survives a restart and catches up on stored history."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from detect_data import T0, daily

from alertd.backtest.replay import default_rule, replay
from alertd.base import TrainingSet
from alertd.config.types import DetectorConfig
from alertd.default_plugins.detectors.surprise import DEFAULT_THRESHOLD, Surprise
from alertd.detect.surprise import Core, SurpriseState
from alertd.detect.surprise_run import events, run_many, run_series
from alertd.model import Batch, Status
from alertd.testing import make_context, params_of, registry_with, score_series


def _orders(days=4, step=120.0, seed=0):
    rng = np.random.default_rng(seed)
    ts = T0 + np.arange(int(days * 86400 / step)) * step
    hour = (ts % 86400) / 3600
    rate = 20 + 60 * np.exp(-0.5 * ((hour - 19) / 3) ** 2)
    return ts, rng.poisson(rate).astype(float)


def test_lockstep_equals_each_series_alone_and_skips_what_the_engine_skips():
    a, b = daily(days=3, step=300, seed=1), daily(days=2, step=600, seed=2)
    ts_c = np.array([0, 60, 60, 120, 90, 180, 240, 300, 360, 420.0]) + T0  # a repeat, one out of order
    c = (ts_c, np.array([5, 6, 100, 7, 100, 6, 5, 7, 6, 5.0]))
    together = run_many([a, b, c])
    for (ts, v), s in zip([a, b, c], together):
        assert np.array_equal(s, run_series(ts, v))
    keep = np.array([1, 1, 0, 1, 0, 1, 1, 1, 1, 1], bool)
    assert np.array_equal(together[2][keep], run_series(ts_c[keep], c[1][keep]))


def test_missing_points_leave_a_series_alone():
    ts, v = daily(days=1, step=300)
    state = SurpriseState(2)
    for t, x in zip(ts, v):
        state.update(np.array([x, x]), np.array([t, t]))
        r = state.update(np.array([np.nan, np.nan]), np.array([t + 1, t + 1]))
        assert (r.score == 0).all()
    assert np.array_equal(state.st[0], state.st[1])


def test_scores_warm_up_then_stay_in_the_unit_interval_and_flag_a_drop():
    ts, v = _orders(days=4)
    i = len(ts) - 200
    v[i:i + 15] *= 0.5  # a 50 % drop for 30 minutes
    out = run_series(ts, v, full=True, threshold=DEFAULT_THRESHOLD)
    assert (out["score"][:Core().min_points] == 0).all()
    assert ((out["score"] >= 0) & (out["score"] <= 1)).all()
    first = np.flatnonzero(out["score"][i:] >= DEFAULT_THRESHOLD)[0]
    assert first <= 8 and out["side"][i + first] == -1  # 16 minutes at the default threshold


def test_events_need_quiet_rows_before_a_new_one():
    s = np.array([0, .5, .5, 0, .5, 0, 0, 0, .5, 0])
    assert np.flatnonzero(events(s, .3, 2)).tolist() == [1, 8]
    assert np.flatnonzero(events(s, .3, 0)).tolist() == [1, 2, 4, 8]  # NAB's plain rule: every row


def test_the_plugin_scores_what_the_core_scores():
    ts, v = _orders(days=4)
    i = 3 * 720 + 570  # day 4, 19:00
    v[i:i + 10] = 0
    r = score_series(Surprise, v, ts=ts)
    core = run_series(ts, v, threshold=DEFAULT_THRESHOLD)
    judged = (r.status == Status.OK) | (r.status == Status.ANOMALOUS)
    assert judged[10:].all()
    assert np.array_equal(r.score[judged], core[judged])
    assert r.anomalous()[i:i + 3].any()


def test_ranges_respect_the_domain_and_read_as_a_range():
    ts, v = _orders(days=3)
    v[-300:-280] = 0
    r = score_series(Surprise, v, ts=ts)
    lo = r.lower[np.isfinite(r.lower)]
    assert len(lo) and (lo >= 0).all()
    reasons = [x for x in r.reasons if x]
    assert reasons and all("expected -" not in x and " to " not in x for x in reasons)
    assert any("below the expected range" in x for x in reasons)
    rng = np.random.default_rng(3)
    ratio = np.clip(0.98 + rng.normal(0, 0.005, len(ts)), 0, 1)
    ratio[-300:-280] = 0.6
    r = score_series(Surprise, ratio, ts=ts)
    hi = r.upper[np.isfinite(r.upper)]
    assert len(hi) and (hi <= 1).all()
    r = score_series(Surprise, ratio, ts=ts, params={"min": 0.5, "max": 0.99})
    assert (r.upper[np.isfinite(r.upper)] <= 0.99).all() and (r.lower[np.isfinite(r.lower)] >= 0.5).all()


@pytest.mark.parametrize("direction", ["up", "down"])
def test_a_rule_watching_one_side_fires_and_explains_only_that_side(direction):
    ts, v = _orders(days=3)
    v[-400:-390] *= 3
    v[-200:-190] = 0
    r = score_series(Surprise, v, ts=ts, params={"direction": direction})
    hits = np.flatnonzero(r.anomalous())
    assert len(hits)
    side = "above" if direction == "up" else "below"
    other = "below" if direction == "up" else "above"
    assert all(side in r.reasons[i] and other not in r.reasons[i] for i in hits)
    assert all((v[i] > r.upper[i]) if direction == "up" else (v[i] < r.lower[i]) for i in hits)
    if direction == "up":
        assert np.isnan(r.lower).all()
    else:
        assert np.isnan(r.upper).all()


def test_an_incident_resolves_once_values_are_back_inside_the_range_for_clear_for():
    ts, v = _orders(days=5)
    i = 4 * 720 + 420  # day 5, 14:00
    v[i:i + 15] = np.round(v[i:i + 15] * 0.3)
    reg = registry_with(Surprise)
    params = params_of(Surprise, {"threshold": 0.06, "short_points": 6})  # the demo's orders rule
    rule = dataclasses.replace(default_rule(reg), for_=240.0, clear_for=360.0,
                               detector=DetectorConfig("surprise", params))
    r = replay(rule, reg, ts, v)
    fired = [t.incident for t in r.incidents if t.kind == "firing" and ts[i] <= t.incident.fired_at <= ts[i + 15]]
    assert len(fired) == 1
    resolved = [t.incident for t in r.incidents
                if t.kind == "resolved" and t.incident.started_at == fired[0].started_at]
    back = i + 15  # the first normal point
    below = v < r.lower
    assert below[i + 4:back].mean() > 0.7 and not below[back:back + 10].any()
    # resolved at the first point clear_for after the values came back inside the range
    assert len(resolved) == 1 and resolved[0].resolved_at == pytest.approx(ts[back] + 360.0, abs=121)


def _batch(keys, ts, values, seen):
    n = len(keys)
    return Batch(list(keys), [()] * n, np.full(n, ts), np.asarray(values, float), np.zeros((n, 0)),
                 np.zeros((n, 0)), np.asarray(seen), np.zeros(n, bool))


def test_state_survives_a_restart_through_the_saved_model():
    ts, v = _orders(days=2)
    one = Surprise(params_of(Surprise, {}), make_context())
    for k, (t, x) in enumerate(zip(ts[:1000], v[:1000])):
        one.score(_batch(["s"], t, [x], [k + 1]))
    blob = one.dump_model(one.fit(TrainingSet(["s"], [()], [ts[999:1000]], [v[999:1000]], now=ts[999])))
    two = Surprise(params_of(Surprise, {}), make_context())
    two.install(two.load_model(blob))
    for k, (t, x) in enumerate(zip(ts[1000:], v[1000:])):
        a = one.score(_batch(["s"], t, [x], [1001 + k]))
        b = two.score(_batch(["s"], t, [x], [1]))
        assert a.score[0] == b.score[0] and a.status[0] == b.status[0]


def test_a_series_with_stored_history_waits_for_its_replay_then_scores_as_if_it_saw_it_live():
    ts, v = _orders(days=2)
    live = Surprise(params_of(Surprise, {}), make_context())
    for k, (t, x) in enumerate(zip(ts[:800], v[:800])):
        live.score(_batch(["s"], t, [x], [k + 1]))
    late = Surprise(params_of(Surprise, {}), make_context())
    first = late.score(_batch(["s"], ts[800], [v[800]], [801]))  # a back-filled series appears
    assert first.status[0] == Status.WARMING_UP and late.fit_wanted and late.training_plan().points >= 800
    late.install(late.fit(TrainingSet(["s"], [()], [ts[:801]], [v[:801]], now=ts[800])))
    live.score(_batch(["s"], ts[800], [v[800]], [801]))
    assert not late.fit_wanted and late.training_plan().points == 0
    for k in range(801, 900):
        a = live.score(_batch(["s"], ts[k], [v[k]], [k + 1]))
        b = late.score(_batch(["s"], ts[k], [v[k]], [k + 1]))
        assert a.score[0] == b.score[0]


def test_bad_params_get_one_sentence():
    from alertd.config.schema import ConfigError

    for bad, says in (({"threshold": 1.5}, "between 0 and 1"), ({"min": 5, "max": 1}, "must be below max"),
                      ({"min_history": 0}, "at least 1 point"), ({"sustained": -1}, "from 0 \\(off\\)"),
                      ({"sustained": 1, "sustained_k": 0}, "allowance above 0")):
        with pytest.raises(ConfigError, match=says):
            params_of(Surprise, bad)


def test_the_sustained_view_is_off_by_default_and_changes_nothing_then():
    ts, v = _orders(days=4, seed=3)
    base = run_series(ts, v, full=True, threshold=0.06)
    off = run_series(ts, v, Core(sus_weight=0.0, sus_k=2.0), full=True, threshold=0.06)
    for key in ("score", "low", "high", "side"):
        assert np.array_equal(base[key], off[key], equal_nan=True)


def test_the_sustained_view_finds_a_steady_night_drop_sooner_and_leaves_single_points_alone():
    ts, v = _orders(days=5, seed=4)
    on, off = Core(short_max_pts=6, sus_weight=1.0), Core(short_max_pts=6)
    hour = (ts % 86400) / 3600
    night = np.flatnonzero((hour >= 4) & (ts >= ts[0] + 4 * 86400))[0]  # the 5th night, 04:00
    drop = v.copy()
    drop[night:night + 20] = np.round(drop[night:night + 20] * 0.5)  # about 20 a minute to 10, 40 minutes
    first = {}
    for name, core in (("on", on), ("off", off)):
        out = run_series(ts, drop, core, full=True, threshold=0.06)
        flagged = (out["score"] >= 0.06) & (drop < out["low"]) & (out["side"] == -1)
        hits = np.flatnonzero(flagged[night:night + 20])
        first[name] = hits[0] if len(hits) else 99
    assert first["on"] <= 3 < first["off"]  # within 6 minutes, where the short mean alone lags
    # one odd point: the sustained view adds at most sus_zmax - sus_k spreads: no alarm
    spike = v.copy()
    spike[night] = 0.0
    a = run_series(ts, spike, on, full=True, threshold=0.06)
    b = run_series(ts, spike, off, full=True, threshold=0.06)
    assert b["score"][night] <= a["score"][night] < 0.06  # at most the short mean's or what one point adds


def test_the_sustained_view_takes_the_way_back_from_a_spike_for_no_drop():
    """After a 20-minute x3 spike the time-of-day offset and the week's factor are still high
    (learned while it lasted): the values back to normal sit below the predictions. The up
    side drains first; the down side adds nothing until it has, so no drop is found."""
    ts, v = _orders(days=9, seed=5)
    hour = (ts % 86400) / 3600
    at = np.flatnonzero((hour >= 20.5) & (ts >= ts[0] + 8 * 86400))[0]  # the 9th evening, past its peak
    v[at:at + 10] *= 3
    state = SurpriseState(1, Core(short_max_pts=6, sus_weight=1.0))
    up, down, drop_side = [], [], []
    for j in range(at + 40):  # the spike, then an hour of ordinary values
        r = state.update(v[j:j + 1], ts[j:j + 1], threshold=0.06)
        up.append(state.column("cus_u")[0])
        down.append(state.column("cus_d")[0])
        drop_side.append(r.score[0] >= 0.06 and r.side[0] == -1 and v[j] < r.low[0])
    up, down = np.array(up), np.array(down)
    assert up[at + 9] > 10  # the spike added up
    back = slice(at + 10, at + 40)
    draining = np.flatnonzero(up[back] > 0)
    assert len(draining) >= 2 and (down[back][draining] == 0).all()  # below the predictions, yet no drop
    assert not ((up > 0) & (down > 0)).any()
    assert not any(drop_side[at + 10:])  # the way back is no drop


def test_a_back_log_of_series_is_replayed_in_slices_each_as_the_whole_replay_would(monkeypatch):
    import alertd.default_plugins.detectors.surprise as plugin

    series = {f"s{i}": _orders(days=2, seed=i) for i in range(5)}
    keys = [*series, "empty"]  # "empty": stored as seen, but the store has no points of it
    ts = series["s0"][0]

    def arrive(det):
        first = det.score(_batch(keys, ts[800], [series[k][1][800] if k in series else 1.0 for k in keys],
                                 [801] * len(keys)))
        assert (first.status == Status.WARMING_UP).all()

    def data_of(names):
        names = sorted(names)
        return TrainingSet(names, [()] * len(names), [series[k][0][:801] if k in series else np.zeros(0) for k in names],
                           [series[k][1][:801] if k in series else np.zeros(0) for k in names], now=ts[800])

    whole = Surprise(params_of(Surprise, {}), make_context())
    arrive(whole)
    whole.install(whole.fit(data_of(keys)))

    monkeypatch.setattr(plugin, "REPLAY_POINTS", 2 * 10080)  # two series a slice
    sliced = Surprise(params_of(Surprise, {}), make_context())
    arrive(sliced)
    slices = []
    while (plan := sliced.training_plan()).history_keys:
        assert plan.points == 10080 and len(plan.history_keys) <= 2
        slices.append(plan.history_keys)
        part = sliced.fit(data_of(plan.history_keys))
        assert sorted(part.keys) == sorted(k for k in plan.history_keys if k in series)  # the slice alone
        sliced.install(part)
    assert len(slices) == 3 and set().union(*slices) == set(keys)
    assert not sliced.pending and sliced.training_plan().points == 0  # caught up ("empty" too)
    for k in range(801, 900):
        values = [series[name][1][k] if name in series else 1.0 for name in keys]
        a = whole.score(_batch(keys, ts[k], values, [k + 1] * len(keys)))
        b = sliced.score(_batch(keys, ts[k], values, [k + 1] * len(keys)))
        assert np.array_equal(a.score, b.score, equal_nan=True) and np.array_equal(a.status, b.status)
    assert (b.status[:5] != Status.WARMING_UP).all()


def test_forgotten_series_give_their_rows_to_new_ones_and_the_others_score_as_before():
    ts, v = _orders(days=1)
    kept, gone, new = ["k0", "k1"], ["g0", "g1", "g2"], ["n0", "n1", "n2"]
    det = Surprise(params_of(Surprise, {}), make_context())
    alone = Surprise(params_of(Surprise, {}), make_context())  # only ever saw the kept series
    for k in range(300):
        det.score(_batch(kept + gone, ts[k], [v[k]] * 5, [k + 1] * 5))
        alone.score(_batch(kept, ts[k], [v[k]] * 2, [k + 1] * 2))
    rows = len(det.state)
    det.forget_series(gone)
    assert set(det.index) == set(kept)
    for k in range(300, 400):
        first = k == 300
        out = det.score(_batch(kept + new, ts[k], [v[k]] * 5, [k + 1] * 2 + [k - 299] * 3))
        ref = alone.score(_batch(kept, ts[k], [v[k]] * 2, [k + 1] * 2))
        assert np.array_equal(out.score[:2], ref.score, equal_nan=True)
        if first:  # the new series start from a reset row: warming up, like any new series
            assert (out.status[2:] == Status.WARMING_UP).all()
    assert len(det.state) == rows and not det.free  # the three rows were reused, none added
