"""A trainable detector's fit in the fit worker process (`Detector.fit_in_process`).

The trainer's thread hands the worker (alertd/detect/fit_worker.py) a `FitJob`: the store's
path, the rule, its series and the detector's class and params. The worker opens its own
read connection to the store (SQLite's WAL lets it read beside the daemon's writes), reads
the training data as the trainer's thread would (`training_set`: the latest points, minus
those inside firing incidents), builds a copy of the detector from the params and fits. Only
the model (a forecast's paths: a few hundred bytes a series) and a few counts come back
through the pool's pipe; the trainer's thread dumps it for the store and the model is
installed on the event loop as any other. So neither the reading of millions of points nor
the fit holds the daemon's GIL.

Nothing is written by the worker: the model is saved by the daemon when it is installed,
as before; a worker killed mid-fit leaves the previous model in use and the store as it was.
"""

from __future__ import annotations

import inspect
import os
import sys
from dataclasses import dataclass

from ..base import PluginContext, TrainingPlan
from ..detect import fit_worker
from ..plugins import SITE_PACKAGE, site_module


@dataclass(frozen=True)
class FitSummary:
    """What a fit read and where it ran: series and points left out (incidents), the daemon
    clock at its start, the process id."""

    series: int
    excluded: int
    now: float
    pid: int


class PluginModule:
    """The module of a detector from a plugin directory (`alertd_site_plugins.NAME`), which
    another process cannot import by name: unpickled, it loads the file as the daemon did.
    It goes first in a `FitJob`, so the detector's class and params that follow resolve."""

    def __init__(self, module: str, path: str | None):
        self.module, self.path = module, path

    def __reduce__(self):
        return load_plugin, (self.module, self.path)


def load_plugin(module: str, path: str | None) -> None:
    """Import a plugin directory's file under its module name, unless it is already."""
    if module not in sys.modules and module.startswith(SITE_PACKAGE + ".") and path:
        site_module(path)


@dataclass(frozen=True)
class FitJob:
    """Everything the worker needs for one fit (pickled to it, in this order)."""

    plugin: PluginModule
    store_path: str
    rule: str
    source: str | None
    keys: list
    labels: list
    now: float
    plan: TrainingPlan
    detector: type
    params: object

    @classmethod
    def of(cls, detector, store_path: str, rule: str, source: str | None, keys, labels, now: float,
           plan: TrainingPlan) -> "FitJob":
        kind = type(detector)
        try:
            path = inspect.getfile(kind)
        except (TypeError, OSError):
            path = None
        return cls(PluginModule(kind.__module__, path), store_path, rule, source, keys, labels, now, plan, kind,
                   detector.params)


def fit_in_worker(job: FitJob) -> tuple:
    """The trainer's thread: run `job` in the worker process and wait; (model, summary).
    A dead worker raises `WorkerDied` (one sentence; the next fit starts a new process)."""
    return fit_worker.run("fit", run_job, job)


def run_job(job: FitJob) -> tuple:
    """In the worker process: read, fit; the model goes back through the pool's pipe."""
    from ..store import StoreReader
    from .training_data import training_set

    detector = job.detector(job.params, PluginContext(name=job.rule, now=lambda: job.now))
    with StoreReader(job.store_path) as reader:
        data = training_set(reader.samples, reader.incidents, job.rule, job.keys, job.labels, job.plan.points,
                            job.now, job.plan.span, job.source, job.plan.history_keys)
    model, summary = detector.fit(data), FitSummary(len(data), data.excluded, job.now, os.getpid())
    del data
    fit_worker.release_memory()  # the process stays for the next fit: not with the week's points
    return model, summary
