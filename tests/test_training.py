"""Training beside the hot path: schedule, incident exclusion, failures, persistence, threads."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from detect_data import daily

from alertd.config.load import load_config
from alertd.engine.tick import Engine
from alertd.engine.training import Trainer, training_set

real_set = training_set
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Incident, Sample, Status, fingerprint, make_labels
from alertd.store import Store

CONFIG = """\
sources:
  src: {{type: test_list, every: 60s}}
rules:
  - name: orders
    source: src
    series: orders{{region=~".+"}}
    detector: {{type: pyod, min_history: 100, train_points: 1000{extra}}}
receivers:
  rec: [{{type: test_record}}]
"""


class Rig:
    """An engine, trainer and store on a fake clock; `feed` ingests one point per series."""

    def __init__(self, config, registry, store, clock, **trainer_kw):
        self.store, self.clock = store, clock
        self.metrics = Metrics()
        self.engine = Engine(config, registry, store, clock, self.metrics, get_logger())
        self.trainer = Trainer(self.engine, store, clock, get_logger(), self.metrics, **trainer_kw)
        self.statuses: list = []
        self.engine.observers.append(lambda rt, b, s: self.statuses.append(np.asarray(s.status).copy()))

    def feed(self, ts, values, regions=("eu", "us"), poll=True):
        for t, v in zip(ts, values):
            self.clock.set(t)
            self.engine.ingest("src", [Sample("orders", make_labels({"region": r}), float(t), float(v) + i)
                                       for i, r in enumerate(regions)])
            if poll:
                self.trainer.poll()


@pytest.fixture
def config(write_config, registry):
    def make(extra=""):
        if "retrain" not in extra:
            extra += ", retrain_points: 150"
        return load_config(write_config(CONFIG.format(extra=extra)), registry, environ={})
    return make


def test_first_fit_at_min_history_then_on_new_points(config, registry, tmp_path, clock):
    rig = Rig(config(), registry, Store(tmp_path / "a.db"), clock, inline=True)
    rig.trainer.start()
    ts, v = daily(days=3)
    rig.feed(ts[:99], v[:99])
    (st,) = rig.trainer.rules
    assert st.fits == 0 and (rig.statuses[-1] == Status.WARMING_UP).all()
    assert rig.engine.rule_states()["orders"]["warming_up"] == 2
    rig.feed(ts[99:100], v[99:100])
    assert st.fits == 1 and st.last_reason == "first fit"
    rig.feed(ts[100:101], v[100:101])
    assert (rig.statuses[-1] == Status.OK).all()
    assert rig.engine.rule_states()["orders"]["warming_up"] == 0
    rig.feed(ts[101:250], v[101:250])
    assert st.fits == 2 and st.last_reason == "new points"
    assert rig.metrics.model_fits.labels("orders", "ok")._value.get() == 2


def test_time_schedule_uses_the_daemon_clock(config, registry, tmp_path, clock):
    rig = Rig(config(", retrain: 1h, retrain_points: null"), registry, Store(tmp_path / "a.db"), clock,
              inline=True)
    rig.trainer.start()
    ts, v = daily(days=2, step=60)
    rig.feed(ts[:150], v[:150])
    (st,) = rig.trainer.rules
    assert st.fits == 1  # first fit at 100 points; 50 minutes later not due yet
    rig.feed(ts[150:170], v[150:170])
    assert st.fits == 2 and st.last_reason == "schedule"


def test_points_inside_firing_incidents_are_left_out(tmp_path):
    store = Store(tmp_path / "a.db")
    labels = make_labels({"region": "eu"})
    ts = 1_750_000_000.0 + np.arange(100) * 60.0
    with store.atomic():
        store.samples.append([Sample("orders", labels, t, 1.0) for t in ts], "src")
    fp = fingerprint("orders", labels)
    store.incidents.save(Incident(fp, "orders", {}, "resolved", "warning", started_at=ts[10],
                                  fired_at=ts[12], resolved_at=ts[20]))
    store.incidents.save(Incident(fp, "orders", {}, "resolved", "warning", started_at=ts[50],
                                  fired_at=ts[50], resolved_at=ts[52]))  # a 2-point blip: kept
    store.incidents.save(Incident(fp, "orders", {}, "resolved", "warning", started_at=ts[60],
                                  resolved_at=ts[70]))  # never fired: kept
    key = 'orders{region="eu"}'
    data = training_set(store.samples, store.incidents, "orders", [key], [labels], 1000, 0.0)
    kept = data.ts[0]
    assert len(kept) == 90 and data.excluded == 10
    assert not ((kept >= ts[10]) & (kept < ts[20])).any() and ts[50] in kept and ts[65] in kept
    # an "incident" covering most of the history is the new normal: learn from it
    store.incidents.save(Incident(fp, "orders", {}, "firing", "warning", started_at=ts[30], fired_at=ts[31]))
    data = training_set(store.samples, store.incidents, "orders", [key], [labels], 1000, 0.0)
    assert len(data.ts[0]) == 100 and data.excluded == 0


def test_a_failing_fit_keeps_the_previous_model_and_is_counted(config, registry, tmp_path, clock):
    rig = Rig(config(), registry, Store(tmp_path / "a.db"), clock, inline=True)
    rig.trainer.start()
    ts, v = daily(days=3)
    rig.feed(ts[:120], v[:120])
    det = rig.engine.rules_by_source["src"][0].detector
    model = det.model
    det.fit = lambda data: 1 / 0
    rig.feed(ts[120:260], v[120:260])
    (st,) = rig.trainer.rules
    assert st.failures == 1 and "ZeroDivisionError" in st.last_error
    assert det.model is model and (rig.statuses[-1] != Status.WARMING_UP).all()
    assert rig.metrics.model_fits.labels("orders", "error")._value.get() == 1
    rig.feed(ts[260:300], v[260:300])
    assert st.failures == 1  # no retry storm: the next try waits for the schedule


def _trained(config, registry, clock, path):
    """A store at `path` with 200 points of two series and a fitted model; the data."""
    rig = Rig(config(), registry, Store(path), clock, inline=True)
    rig.trainer.start()
    ts, v = daily(days=3)
    rig.feed(ts[:200], v[:200])
    assert rig.store.models.load("orders").size > 0
    rig.store.close()
    return ts, v


def test_a_restart_reuses_the_stored_model_and_changed_params_refit(config, registry, tmp_path, clock):
    path = tmp_path / "a.db"
    ts, v = _trained(config, registry, clock, path)

    again = Rig(config(), registry, Store(path), clock, inline=True)
    again.trainer.start()  # restores the model
    again.feed(ts[200:201], v[200:201], poll=False)  # no fit: the stored model scores at once
    assert (again.statuses[-1] == Status.OK).all()
    assert again.trainer.rules[0].fits == 0
    again.store.close()

    changed = Rig(config(", threshold: 0.99"), registry, Store(path), clock, inline=True)
    changed.trainer.start()
    changed.feed(ts[201:202], v[201:202], poll=False)
    assert (changed.statuses[-1] == Status.WARMING_UP).all()  # the old model is not reused
    changed.trainer.poll()
    changed.feed(ts[202:203], v[202:203])
    assert (changed.statuses[-1] == Status.OK).all()
    changed.store.close()


def test_a_restart_does_not_refit_the_model_it_restored(config, registry, tmp_path, clock):
    path = tmp_path / "a.db"
    ts, v = _trained(config, registry, clock, path)

    again = Rig(config(), registry, Store(path), clock, inline=True)
    again.trainer.start()
    again.feed(ts[200:210], v[200:210])  # polls the trainer after every tick
    assert again.trainer.rules[0].fits == 0  # the restored model is used, not fitted again
    again.feed(ts[210:400], v[210:400])  # retrain_points (150) new points: the schedule goes on
    assert again.trainer.rules[0].fits >= 1
    again.store.close()


def test_fits_run_in_a_worker_thread_and_swap_in_on_the_loop(config, registry, tmp_path, clock):
    async def main():
        rig = Rig(config(), registry, Store(tmp_path / "a.db"), clock)
        rig.trainer.start()
        assert rig.trainer.executor is not None
        ts, v = daily(days=3)
        rig.feed(ts[:100], v[:100])
        (st,) = rig.trainer.rules
        future = st.in_flight
        assert future is not None  # submitted, not run on the loop
        rig.feed(ts[100:101], v[100:101])  # the tick does not wait for the fit
        await asyncio.wrap_future(future)
        await asyncio.sleep(0)  # let the loop run the scheduled install
        assert st.fits == 1 and st.in_flight is None
        rig.feed(ts[101:102], v[101:102])
        assert (rig.statuses[-1] == Status.OK).all()
        await rig.trainer.stop()
        rig.store.close()

    asyncio.run(main())


def test_a_reload_keeps_the_training_state_of_kept_rules_and_refits_changed_ones(config, registry, tmp_path, clock):
    rig = Rig(config(), registry, Store(tmp_path / "a.db"), clock, inline=True)
    rig.trainer.start()
    ts, v = daily(days=3)
    rig.feed(ts[:200], v[:200])
    kept = rig.trainer.rules[0]
    assert kept.fits >= 1

    rig.engine.apply_config(config())  # the same rule: nothing to refit
    rig.trainer.sync(rig.engine)
    assert rig.trainer.rules == [kept] and not kept.detached

    rig.engine.apply_config(config(", threshold: 0.99"))  # changed params: a new model
    rig.trainer.sync(rig.engine)
    changed = rig.trainer.rules[0]
    assert changed is not kept and kept.detached and changed.fits == 0
    assert changed.runtime is rig.engine.runtimes()[0]
    rig.feed(ts[200:201], v[200:201])  # the new runtime starts from the store's history
    assert changed.fits == 1 and rig.store.models.load("orders").version == changed.runtime.detector.model_version()
    rig.store.close()


REGIONS = ("eu", "us", "ap", "sa", "af", "oc")


def _back_log(write_config, registry, clock, path):
    """A store with 300 points of six series, written by a daemon that never saved a model."""
    config = load_config(write_config(CONFIG.format(extra="").replace(
        "{type: pyod, min_history: 100, train_points: 1000}", "{type: surprise}")), registry, environ={})
    first = Rig(config, registry, Store(path), clock, inline=True)
    ts, v = daily(days=3)
    first.feed(ts[:300], v[:300], regions=REGIONS, poll=False)
    first.store.close()
    return config, ts, v


def _counting_saves(store):
    saved = []
    save = store.models.save
    store.models.save = lambda model: (saved.append(model.series), save(model))
    return saved


def test_a_back_log_is_replayed_in_slices_and_the_whole_model_saved_once(write_config, registry, tmp_path,
                                                                         clock, monkeypatch):
    import alertd.default_plugins.detectors.surprise as plugin

    path = tmp_path / "a.db"
    config, ts, v = _back_log(write_config, registry, clock, path)
    monkeypatch.setattr(plugin, "REPLAY_POINTS", 2 * 10080)  # two series a slice
    rig = Rig(config, registry, Store(path), clock, inline=True)
    saved = _counting_saves(rig.store)
    rig.trainer.start()  # no stored model
    rig.feed(ts[300:301], v[300:301], regions=REGIONS, poll=False)
    assert (rig.statuses[-1] == Status.WARMING_UP).all()  # six series await their history
    rig.trainer.poll()
    (st,) = rig.trainer.rules
    assert st.fits == 4 and st.last_reason == "catch-up"  # three slices of two, then the full fit
    assert saved == [6]  # only the whole model is saved
    assert rig.store.models.load("orders").series == 6
    rig.feed(ts[301:302], v[301:302], regions=REGIONS)
    assert not (rig.statuses[-1] == Status.WARMING_UP).any()
    assert st.fits == 4  # caught up: nothing more due
    rig.store.close()


def test_a_catch_up_in_slices_goes_on_in_the_worker_thread_without_waiting_for_ticks(
        write_config, registry, tmp_path, clock, monkeypatch):
    import alertd.default_plugins.detectors.surprise as plugin

    path = tmp_path / "a.db"
    config, ts, v = _back_log(write_config, registry, clock, path)
    monkeypatch.setattr(plugin, "REPLAY_POINTS", 2 * 10080)

    async def main():
        rig = Rig(config, registry, Store(path), clock)
        saved = _counting_saves(rig.store)
        rig.trainer.start()
        rig.feed(ts[300:301], v[300:301], regions=REGIONS)  # polls the trainer once
        (st,) = rig.trainer.rules
        while st.in_flight is not None:  # each slice's install submits the next on the loop
            await asyncio.wrap_future(st.in_flight)
            await asyncio.sleep(0)
        assert st.fits == 4 and saved == [6]
        await rig.trainer.stop()
        rig.store.close()

    asyncio.run(main())


def test_a_stop_saves_the_live_state_so_a_restart_scores_as_if_it_never_stopped(write_config, registry,
                                                                                 tmp_path, clock, monkeypatch):
    config, ts, v = _back_log(write_config, registry, clock, tmp_path / "unused.db")

    def run(path, start, end, trainer_started=True):
        rig = Rig(config, registry, Store(path), clock, inline=True)
        scores = []
        rig.engine.observers.append(lambda rt, b, s: scores.append(np.asarray(s.score).copy()))
        rig.trainer.start()
        rig.feed(ts[start:end], v[start:end], regions=REGIONS)
        return rig, scores

    import alertd.engine.training as training

    reads = []
    monkeypatch.setattr(training, "training_set", lambda *a, **k: reads.append(a[5]) or real_set(*a, **k))
    never, expected = run(tmp_path / "never.db", 0, 400)  # scheduled saves every 6 h
    (st,) = never.trainer.rules
    assert st.fits >= 3 and len(reads) == 1  # the first fit read the history; the saves read nothing
    never.store.close()
    first, _ = run(tmp_path / "a.db", 0, 300)
    assert first.trainer.save_snapshots() == 1
    assert first.store.models.load("orders").series == len(REGIONS)
    first.store.close()
    again, got = run(tmp_path / "a.db", 300, 400)
    assert again.trainer.rules[0].last_reason == "schedule"  # restored (a scheduled save later), no catch-up
    assert np.array_equal(np.array(got), np.array(expected[300:]), equal_nan=True)
    again.store.close()
