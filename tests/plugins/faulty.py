"""Fixture plugins that misbehave, for the plugin-fault tests: a source that raises, one that
hangs, one that leaks memory; a detector that raises; a notifier that hangs."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from alertd import hookimpl
from alertd.base import Detector, Notifier, Source
from alertd.model import Sample, make_labels
from alertd.schema import Duration

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


@hookimpl
def register_notifiers(register):
    register(HangingNotifier)
