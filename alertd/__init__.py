"""alertd: a plugin-based alerting daemon.

Everything a plugin author needs is one import away (llm's `__init__.__all__` is the model):

    from alertd import hookimpl, Source, Detector, Notifier, Sample, make_labels, Duration

`hookimpl` is loaded at once (it is tiny); every other name is imported on first use, so
`alertd --help` and the CLI's store commands do not pay for numpy, Jinja2 or httpx.
"""

from __future__ import annotations

import importlib

from . import _compat
from .hookspecs import hookimpl

__version__ = "0.1.0"

# name -> the module that defines it
_API = {
    # plugin base classes and what they receive (alertd/base.py)
    "Plugin": "alertd.base", "Source": "alertd.base", "Detector": "alertd.base", "Notifier": "alertd.base",
    "PluginContext": "alertd.base", "NoParams": "alertd.base", "TrainingPlan": "alertd.base",
    "TrainingSet": "alertd.base", "RuleSetting": "alertd.base",
    "SourceError": "alertd.base", "DeliveryError": "alertd.base", "RetryableError": "alertd.base",
    "PermanentError": "alertd.base",
    # the data between stages (alertd/model.py)
    "Sample": "alertd.model", "Labels": "alertd.model", "make_labels": "alertd.model",
    "series_key": "alertd.model", "fingerprint": "alertd.model", "Batch": "alertd.model",
    "Scores": "alertd.model", "Status": "alertd.model", "Verdict": "alertd.model",
    "Incident": "alertd.model", "Notification": "alertd.model",
    # typed params: durations, secrets, a key-specific error (alertd/config/schema.py)
    "Duration": "alertd.config.schema", "Secret": "alertd.config.schema",
    "CredentialURL": "alertd.config.schema", "ParamError": "alertd.config.schema",
    "parse_params": "alertd.config.schema",
    # kits: notifiers that POST and render, detectors that keep per-series state
    "HttpNotifier": "alertd.http_notifier", "HttpParams": "alertd.http_notifier",
    "Renderer": "alertd.render.renderer", "TemplateParams": "alertd.render.renderer",
    "SeriesMemory": "alertd.detect.series_memory",
}

__all__ = ["hookimpl", "__version__", *_API]

_compat.install()  # old module paths keep working for one release (alertd/_compat.py)


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'alertd' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
