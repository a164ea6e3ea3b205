"""Forecasts by statsforecast (`model: AutoETS | AutoTheta | MSTL | AutoARIMA`, the
`alertd[forecast]` extra, installed by the test extra): fitted for real in the worker process."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from configs import detector_rule_text
from detect_data import daily

from alertd.backtest.replay import replay
from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.detect import forecast_library
from alertd.detect.forecast_library import fit_library
from alertd.model import Status


def series(days: float = 8, seed: int = 2):
    ts, v = daily(days=days, step=300, seed=seed)
    ramp_ts = ts.copy()
    ramp = 10 + 0.01 * np.arange(len(ts)) + np.random.default_rng(seed).normal(0, 0.3, len(ts))
    return ["orders", "queue"], [ts, ramp_ts], [v, ramp]


@pytest.mark.parametrize("model", ["AutoETS", "MSTL", "AutoTheta", "AutoARIMA"])
def test_each_library_model_forecasts_the_rhythm_and_the_ramp_in_the_worker(model):
    keys, ts_list, values = series()
    cut = len(ts_list[0]) - 24  # two hours held out
    train_ts = [t[:cut] for t in ts_list]
    train_v = [v[:cut] for v in values]
    end = float(train_ts[0][-1])
    fitted = fit_library(model, keys, train_ts, train_v, end=end, span=7 * 86400.0, horizon=4 * 3600.0)
    assert fitted.model == model and fitted.keys == keys and fitted.name_of(0) == model
    assert fitted.seasons == ["daily", ""]  # the rhythm is found by the default model's rule
    assert fitted.cpu_seconds > 0 and fitted.spreads.shape == fitted.path.shape
    assert (fitted.spreads[:, 1:] > 0).all() and (fitted.spreads[:, 0] == 0).all()
    u = (ts_list[0][cut:] - fitted.origin) / fitted.knot
    for i in range(2):
        path = fitted.at(np.array([i]), u[None, :])[0]
        truth = values[i][cut:]
        naive = np.full(len(truth), values[i][cut - 1])
        if i == 0:  # the daily rhythm: closer than the last value (and than the noise allows twice)
            assert np.mean(np.abs(truth - path)) < min(np.mean(np.abs(truth - naive)), 2 * 3.0)
        else:  # the ramp (+0.12 an hour) goes on
            assert np.mean(np.abs(truth - path)) < 0.5


def test_a_rule_with_a_library_model_flags_a_spike_and_names_the_model(write_config, registry):
    config = load_config(write_config(detector_rule_text(
        "{type: forecast, model: AutoETS, min_history: 200, retrain: 12h}")), registry, environ={})
    ts, v = daily(days=5, step=300, seed=9)
    spike = len(v) - 30
    v = v.copy()
    v[spike] += 50.0
    r = replay(config.rules[0], registry, ts, v)
    assert r.fits >= 3
    assert r.status[spike] == Status.ANOMALOUS and "(forecast by AutoETS)" in r.reasons[spike]
    last_day = slice(len(v) - 288, None)
    assert (r.status[last_day] == Status.ANOMALOUS).sum() <= 6


def test_a_worker_that_dies_fails_one_fit_with_a_sentence_and_the_next_fit_starts_a_new_one():
    keys, ts_list, values = series(days=3)
    settings = dict(end=float(ts_list[0][-1]), span=2 * 86400.0, horizon=3600.0)
    fit_library("AutoETS", keys, ts_list, values, **settings)
    pool = forecast_library.worker()
    (pid,) = list(pool._processes)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the pool has noticed
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    with pytest.raises(RuntimeError, match=r"the AutoETS worker process stopped during a fit .* the next fit "
                                           r"starts a new one"):
        for _ in range(50):  # (the pool may take a moment to mark itself broken)
            fit_library("AutoETS", keys, ts_list, values, **settings)
            time.sleep(0.1)
    again = fit_library("AutoETS", keys, ts_list, values, **settings)
    assert again.keys == keys and pid not in forecast_library.worker()._processes


def test_a_library_model_without_statsforecast_is_a_config_error_at_its_line(write_config, registry, monkeypatch):
    from alertd.default_plugins.detectors.forecast import params

    monkeypatch.setattr(params, "library_available", lambda: False)  # as on a machine without the extra
    with pytest.raises(ConfigError) as err:
        load_config(write_config(detector_rule_text("{type: forecast, model: MSTL}")), registry, environ={})
    assert str(err.value).endswith("/alertd.yaml:7: rules[r].detector.model: model MSTL is fitted by statsforecast, "
                                   "which is not installed; run pip install 'alertd[forecast]' or use model: profile")
