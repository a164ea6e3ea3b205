"""A trainable detector's fit in the fit worker process (`Detector.fit_in_process`).

The trainer's thread hands the worker (alertd/detect/fit_worker.py) a `FitJob`: the store's
path, the rule, its series and the detector's class and params. The worker opens its own
read connection to the store (SQLite's WAL lets it read beside the daemon's writes), reads
the training data as the trainer's thread would (`training_set`: the latest points, minus
those inside firing incidents), builds a copy of the detector from the params, fits and dumps
the model. Only that blob and a few counts come back; the trainer's thread loads the blob and
the model is installed on the event loop as any other. So neither the reading of millions of
points nor the fit holds the daemon's GIL.

Nothing is written by the worker: the model is saved by the daemon when it is installed,
as before; a worker killed mid-fit leaves the previous model in use and the store as it was.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pickle
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


@dataclass(frozen=True)
class FitJob:
    """Everything the worker needs for one fit (pickled to it). The detector's class goes by
    name (module, qualified name, file) and its params as a pickle of their own: a plugin
    from a plugin directory (`alertd_site_plugins.NAME`) is not importable by name in another
    process, so the worker loads its file first, then unpickles the params."""

    store_path: str
    rule: str
    source: str | None
    keys: list
    labels: list
    now: float
    plan: TrainingPlan
    module: str
    qualname: str
    path: str | None
    params: bytes

    @classmethod
    def of(cls, detector, store_path: str, rule: str, source: str | None, keys, labels, now: float,
           plan: TrainingPlan) -> "FitJob":
        kind = type(detector)
        try:
            path = inspect.getfile(kind)
        except (TypeError, OSError):
            path = None
        return cls(store_path, rule, source, keys, labels, now, plan, kind.__module__, kind.__qualname__, path,
                   pickle.dumps(detector.params, protocol=pickle.HIGHEST_PROTOCOL))


def fit_in_worker(job: FitJob) -> tuple:
    """The trainer's thread: run `job` in the worker process and wait; (model blob, summary).
    A dead worker raises `WorkerDied` (one sentence; the next fit starts a new process)."""
    return fit_worker.run("fit", run_job, job)


def plugin_class(module: str, qualname: str, path: str | None) -> type:
    """A detector class by name, loading a plugin directory's file as the daemon did."""
    mod = sys.modules.get(module)
    if mod is None:
        if module.startswith(SITE_PACKAGE + ".") and path:
            mod = site_module(path)
        else:
            mod = importlib.import_module(module)
    found = mod
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def run_job(job: FitJob) -> tuple:
    """In the worker process: read, fit, dump."""
    from ..store import StoreReader
    from .training_data import training_set

    kind = plugin_class(job.module, job.qualname, job.path)
    detector = kind(pickle.loads(job.params), PluginContext(name=job.rule, now=lambda: job.now))
    with StoreReader(job.store_path) as reader:
        data = training_set(reader.samples, reader.incidents, job.rule, job.keys, job.labels, job.plan.points,
                            job.now, job.plan.span, job.source)
    model = detector.fit(data)
    blob = detector.dump_model(model) if model is not None else b""
    return blob, FitSummary(len(data), data.excluded, job.now, os.getpid())
