"""Fixture plugins that misbehave, for the plugin-fault tests: a source that raises, one that
hangs, one that leaks memory; a detector that raises, one that hangs; a notifier that hangs."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import numpy as np

from alertd import hookimpl
from alertd.base import Detector, Notifier, Source
from alertd.config.schema import Duration
from alertd.model import Sample, Scores, Status, make_labels

LEAKED: list[bytes] = []  # what the leaking source holds on to


class RaisingSource(Source):
    """Every poll raises."""

    type_name = "test_raising"

    @dataclass(frozen=True)
    class Params:
        message: str = "boom"

    async def collect(self):
        raise RuntimeError(self.params.message)


class HangingSource(Source):
    """Every poll waits forever (the source's `timeout` ends it)."""

    type_name = "test_hanging"

    @dataclass(frozen=True)
    class Params:
        note: str = ""

    async def collect(self):
        await asyncio.Event().wait()


class LeakingSource(Source):
    """Keeps `kib` KiB more on every poll and returns one good sample."""

    type_name = "test_leaking"

    @dataclass(frozen=True)
    class Params:
        kib: int = 1024

    async def collect(self):
        LEAKED.append(bytes(self.params.kib * 1024))
        return [Sample("leak_polls", make_labels({}), self.context.now(), float(len(LEAKED)))]


class RaisingDetector(Detector):
    """Every score raises."""

    type_name = "test_raising"

    @dataclass(frozen=True)
    class Params:
        message: str = "detector bug"

    def score(self, batch):
        raise ValueError(self.params.message)


class HangingDetector(Detector):
    """`score` blocks until the test sets RELEASE (a detector stuck in a loop or a lock), then
    answers OK for every series; CALLS counts the calls, STARTED is set when one begins and
    RETURNED when one returns."""

    type_name = "test_hanging"
    STARTED = threading.Event()
    RELEASE = threading.Event()
    RETURNED = threading.Event()
    CALLS: list[int] = []

    @dataclass(frozen=True)
    class Params:
        note: str = ""

    def score(self, batch):
        HangingDetector.CALLS.append(len(batch))
        HangingDetector.STARTED.set()
        HangingDetector.RELEASE.wait()
        HangingDetector.RETURNED.set()
        n = len(batch)
        return Scores(np.full(n, Status.OK, dtype=np.int8), np.zeros(n), np.full(n, 0.5),
                      np.full(n, np.nan), np.full(n, np.nan))


class HangingNotifier(Notifier):
    """Every send waits forever; `timeout` is what the dispatcher reads for its own limit."""

    type_name = "test_hanging"

    @dataclass(frozen=True)
    class Params:
        timeout: Duration = Duration(0.2)

    async def send(self, notification):
        await asyncio.Event().wait()


@hookimpl
def register_sources(register):
    register(RaisingSource)
    register(HangingSource)
    register(LeakingSource)


@hookimpl
def register_detectors(register):
    register(RaisingDetector)
    register(HangingDetector)


@hookimpl
def register_notifiers(register):
    register(HangingNotifier)
