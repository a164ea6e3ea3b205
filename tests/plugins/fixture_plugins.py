"""Fixture plugins for tests: a source fed by the test and a detector with a fixed answer."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alertd import hookimpl
from alertd.base import Detector, Notifier, RetryableError, Source, TrainingPlan
from alertd.model import Scores, Status


class ListSource(Source):
    """Returns whatever the test put in `pending` (samples, or an exception to raise)."""

    type_name = "test_list"

    @dataclass(frozen=True)
    class Params:
        note: str = ""

    def __init__(self, params, context):
        super().__init__(params, context)
        self.pending = []

    async def collect(self):
        items, self.pending = self.pending, []
        if isinstance(items, Exception):
            raise items
        return items


class AboveDetector(Detector):
    """Anomalous when value > limit; no warm-up."""

    type_name = "test_above"

    @dataclass(frozen=True)
    class Params:
        limit: float = 0.0

    def score(self, batch):
        n = len(batch)
        anomalous = batch.values > self.params.limit
        status = np.where(anomalous, Status.ANOMALOUS, Status.OK).astype(np.int8)
        return Scores(status, anomalous.astype(float), np.full(n, 0.5),
                      np.full(n, -np.inf), np.full(n, self.params.limit))


@hookimpl
def register_sources(register):
    register(ListSource)


class WarmDetector(AboveDetector):
    """Like test_above, but wants `window` earlier points and `min_history` before a verdict
    (so back-fill has something to fill)."""

    type_name = "test_warm"

    @dataclass(frozen=True)
    class Params:
        limit: float = 0.0
        window: int = 5
        min_history: int = 5

    def __init__(self, params, context):
        super().__init__(params, context)
        self.window, self.min_history = params.window, params.min_history

    def score(self, batch):
        scores = super().score(batch)
        warming = self.warming_up(batch)
        status = np.where(warming, Status.WARMING_UP, scores.status).astype(np.int8)
        return Scores(status, scores.score, scores.threshold, scores.lower, scores.upper)


SENT_EVENT = threading.Event()  # set by test_record at each notification it delivers
GATE_CALLS: list = []  # test_gate: (series in the call, whether a notification was out when it ended)
GATE_ARMED = threading.Event()  # test_gate holds calls only while this is set


class GateDetector(AboveDetector):
    """Like test_above, but while GATE_ARMED is set a call with more than `hold_over` series
    waits (in the detector's worker thread, up to 10 s) until test_record has delivered a
    notification: it can only end early if the event loop delivers while the tick waits."""

    type_name = "test_gate"

    @dataclass(frozen=True)
    class Params:
        limit: float = 0.0
        hold_over: int = 1000

    def score(self, batch):
        if GATE_ARMED.is_set() and len(batch) > self.params.hold_over:
            GATE_CALLS.append((len(batch), SENT_EVENT.wait(10)))
        else:
            GATE_CALLS.append((len(batch), None))
        return super().score(batch)


class HeldFitDetector(AboveDetector):
    """A trainable detector fitted in the worker process (`fit_in_process`): its model is the
    mean of each series and the id of the process that fitted it. While the file `hold` in
    the directory `gate` exists, a fit writes its pid to `gate/started` and waits there (up
    to 60 s) for the test to remove `hold` or kill the process."""

    type_name = "test_held_fit"
    trainable = True
    fit_in_process = True

    @dataclass(frozen=True)
    class Params:
        limit: float = 0.0
        gate: str = ""

    def __init__(self, params, context):
        super().__init__(params, context)
        self.min_history, self.model = 5, None

    def training_plan(self):
        return TrainingPlan(points=100, every=3600.0)

    def fit(self, data):
        gate = Path(self.params.gate)
        if (gate / "hold").exists():
            (gate / "started").write_text(str(os.getpid()))
            deadline = time.monotonic() + 60
            while (gate / "hold").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return {"pid": os.getpid(), "mean": {k: float(np.mean(v)) for k, v in zip(data.keys, data.values)}}

    def install(self, model):
        self.model = model

    def model_info(self):
        return {} if self.model is None else {"series": len(self.model["mean"])}


@hookimpl
def register_detectors(register):
    register(AboveDetector)
    register(WarmDetector)
    register(GateDetector)
    register(HeldFitDetector)


SENT: list = []  # every notification the test_record notifier delivered, in order


class RecordNotifier(Notifier):
    """Appends each notification to SENT; `fail_times` first raises RetryableError."""

    type_name = "test_record"

    @dataclass(frozen=True)
    class Params:
        fail_times: int = 0

    def __init__(self, params, context):
        super().__init__(params, context)
        self.failures_left = params.fail_times

    async def send(self, notification):
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RetryableError("test receiver is down")
        SENT.append(notification)
        SENT_EVENT.set()
        return "recorded"


@hookimpl
def register_notifiers(register):
    register(RecordNotifier)
