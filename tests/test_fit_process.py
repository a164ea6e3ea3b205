"""Fits in the worker process (`Detector.fit_in_process`): the worker reads the store itself,
the model is the one the trainer's thread would have fitted, and a worker killed mid-fit
costs one fit, one clear log line and a retry on the schedule, not the rule."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import numpy as np
import pytest
from configs import detector_rule_text
from detect_data import daily
from structlog.testing import capture_logs

from alertd.clock import FakeClock
from alertd.config.load import load_config
from alertd.detect import fit_worker
from alertd.engine import training
from alertd.engine.tick import Engine
from alertd.engine.training import Trainer
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Sample, make_labels
from alertd.store import Store


class Rig:
    """A file store, an engine and a trainer (its thread pool, the worker process) on a fake clock."""

    def __init__(self, config, registry, path, clock, **trainer_kw):
        self.store, self.clock = Store(path), clock
        self.engine = Engine(config, registry, self.store, clock, Metrics(), get_logger())
        self.trainer = Trainer(self.engine, self.store, clock, get_logger(), Metrics(), **trainer_kw)

    def feed(self, ts, values, hosts=("a", "b", "c")):
        for t, v in zip(ts, values):
            self.clock.set(float(t))
            self.engine.ingest("src", [Sample("orders", make_labels({"host": h}), float(t), float(v) + 5 * i)
                                       for i, h in enumerate(hosts)])

    async def fit(self):
        """Ask for a fit now and wait until it is installed (or failed); the rule's state."""
        assert self.trainer.poll() == 1
        (st,) = self.trainer.rules
        try:
            await asyncio.wrap_future(st.in_flight)
        except Exception:
            pass  # _finish logs it, on the loop
        await asyncio.sleep(0)  # the install, scheduled on the loop
        return st


def forecast_config(write_config, registry):
    text = detector_rule_text("{type: forecast, min_history: 30, retrain: 1h}", series="orders")
    return load_config(write_config(text), registry, environ={})


def test_a_forecast_fit_runs_in_the_worker_process_which_reads_the_store_itself(write_config, registry, tmp_path,
                                                                                clock, monkeypatch):
    config = forecast_config(write_config, registry)
    ts, v = daily(days=3, step=300, seed=4)

    async def fitted(processes: bool, path, clock):
        rig = Rig(config, registry, path, clock, processes=processes)
        rig.feed(ts, v)
        rig.trainer.start()
        with capture_logs() as logs:
            st = await rig.fit()
        await rig.trainer.stop()
        model = rig.engine.runtimes()[0].detector.model
        stored = rig.store.models.load("r")
        rig.store.close()
        return st, model, stored, [e for e in logs if e["event"] == "model_fitted"]

    # the daemon's process never reads the training data: the worker has its own copy of the module
    real = training.training_set
    monkeypatch.setattr(training, "training_set", lambda *a, **k: pytest.fail("history read in the daemon"))
    st, model, stored, logs = asyncio.run(fitted(True, tmp_path / "p.db", clock))
    assert st.fits == 1 and st.failures == 0, st.last_error
    assert st.fit_pid not in (None, os.getpid()) and st.fit_pid in fit_worker.pids()
    assert logs[0]["process"] == "worker" and logs[0]["series"] == 3
    assert len(model.keys) == 3
    assert stored is not None and stored.series == 3  # saved by the daemon, as a thread's fit is

    # the trainer's thread (processes off) fits the very same model from the same data
    monkeypatch.setattr(training, "training_set", real)
    st2, same, _, logs2 = asyncio.run(fitted(False, tmp_path / "t.db", FakeClock(clock.now())))
    assert st2.fit_pid == os.getpid() and logs2[0]["process"] == "daemon"
    assert same.keys == model.keys and same.seasons == model.seasons == ["daily"] * 3
    for name in ("path", "sigma", "alpha", "band", "period"):
        assert np.array_equal(getattr(same, name), getattr(model, name)), name
    assert (same.origin, same.knot, same.train_points) == (model.origin, model.knot, model.train_points)


def test_an_in_memory_store_keeps_its_fits_in_the_trainers_thread(write_config, registry, clock):
    config = forecast_config(write_config, registry)
    ts, v = daily(days=2, step=300, seed=4)

    async def main():
        rig = Rig(config, registry, ":memory:", clock)
        assert rig.trainer.inline and not rig.trainer.processes  # another process cannot read it
        rig.feed(ts, v)
        rig.trainer.start()
        rig.trainer.poll()
        (st,) = rig.trainer.rules
        assert st.fits == 1 and st.fit_pid == os.getpid()

    asyncio.run(main())


def held_fit_config(write_config, registry, tmp_path, extra: str = ""):
    """A config whose rule's fit (`test_held_fit`) waits while `gate/hold` exists; (config, gate)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    text = detector_rule_text(f"{{type: test_held_fit, {extra}gate: '{gate}'}}", series="orders")
    return load_config(write_config(text), registry, environ={}), gate


async def held_fit_started(rig, gate):
    """Start the trainer, ask for the fit with the gate held, and wait until the worker is in
    it (spawning and importing take a while); the rule's status."""
    rig.trainer.start()
    (gate / "hold").touch()
    assert rig.trainer.poll() == 1
    (st,) = rig.trainer.rules
    deadline = time.monotonic() + 120
    while not (gate / "started").exists():
        assert time.monotonic() < deadline, "the fit never started in the worker"
        await asyncio.sleep(0.05)
    return st


def test_a_worker_killed_mid_fit_fails_that_fit_in_one_line_and_the_schedule_retries(write_config, registry,
                                                                                    tmp_path, clock):
    config, gate = held_fit_config(write_config, registry, tmp_path, "limit: 1000, ")

    async def main():
        rig = Rig(config, registry, tmp_path / "a.db", clock)
        rig.feed(*daily(days=0.1, step=300))
        st = await held_fit_started(rig, gate)
        killed = int((gate / "started").read_text())
        assert killed != os.getpid()
        with capture_logs() as logs:
            os.kill(killed, signal.SIGKILL)
            with pytest.raises(fit_worker.WorkerDied):
                await asyncio.wrap_future(st.in_flight)
            await asyncio.sleep(0)
        (line,) = [e for e in logs if e["event"] == "model_fit_failed"]
        assert line["rule"] == "r" and line["retry"] == "in 1h (retrain)" and line["model"] == "none yet"
        assert line["error"] == ("WorkerDied: the fit worker process stopped during a fit (killed, or out of "
                                 "memory?); the next fit starts a new one")
        assert st.failures == 1 and st.fits == 0 and st.in_flight is None
        assert rig.trainer.poll() == 0  # not at once: on the schedule

        (gate / "hold").unlink()
        rig.feed([clock.now() + 3600], [50.0])
        st = await rig.fit()
        assert st.fits == 1 and st.last_reason == "retry", st.last_error
        assert st.fit_pid not in (killed, os.getpid())  # a new worker process
        model = rig.engine.runtimes()[0].detector.model
        assert model["pid"] == st.fit_pid and sorted(model["mean"]) == sorted(rig.engine.runtimes()[0].windows.keys)
        await rig.trainer.stop()
        rig.store.close()

    asyncio.run(main())


def test_stopping_the_trainer_stops_a_fit_running_in_the_worker(write_config, registry, tmp_path, clock):
    config, gate = held_fit_config(write_config, registry, tmp_path)

    async def main():
        rig = Rig(config, registry, tmp_path / "a.db", clock)
        rig.feed(*daily(days=0.1, step=300))
        st = await held_fit_started(rig, gate)
        future = st.in_flight
        await rig.trainer.stop()  # the daemon stops: it must not wait for the fit (held for 60 s)
        with pytest.raises(fit_worker.WorkerDied):
            await asyncio.wait_for(asyncio.wrap_future(future), 30)
        rig.store.close()

    asyncio.run(main())


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


def test_a_library_models_rule_is_fitted_whole_in_the_worker_its_chunks_in_place(write_config, registry, tmp_path,
                                                                                clock):
    text = detector_rule_text("{type: forecast, model: AutoETS, min_history: 30, retrain: 1h}", series="orders")
    config = load_config(write_config(text), registry, environ={})

    async def main():
        rig = Rig(config, registry, tmp_path / "a.db", clock)
        rig.feed(*daily(days=2, step=300, seed=6))
        rig.trainer.start()
        st = await rig.fit()
        assert st.fits == 1, st.last_error
        assert st.fit_pid not in (None, os.getpid())
        model = rig.engine.runtimes()[0].detector.model
        assert model.model == "AutoETS" and len(model.keys) == 3 and model.cpu_seconds > 0
        assert children(st.fit_pid) == []  # the worker did not start a pool of its own for the chunks
        await rig.trainer.stop()
        rig.store.close()

    asyncio.run(main())


def test_the_worker_runs_nicer_than_the_daemon(write_config, registry, tmp_path, clock):
    config = forecast_config(write_config, registry)

    async def main():
        fit_worker.shutdown()  # a new worker: the one spawned for this fit
        rig = Rig(config, registry, tmp_path / "a.db", clock)
        rig.feed(*daily(days=1, step=300))
        rig.trainer.start()
        st = await rig.fit()
        assert st.fits == 1 and st.fit_pid != os.getpid()
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, st.fit_pid) == min(mine + fit_worker.NICE, 19)
        await rig.trainer.stop()
        rig.store.close()

    asyncio.run(main())
