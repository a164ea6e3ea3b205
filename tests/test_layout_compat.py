"""Nothing breaks for users after the package layout change (issue 14): old import paths
work for one release with a DeprecationWarning, and models fitted and pickled by the previous
layout still load, so no rule warms up again after an upgrade."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from alertd._compat import MOVED
from alertd.base import PluginContext
from alertd.plugins import load_registry

GOLDEN = Path(__file__).parent / "golden" / "models"


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_module_path_imports_the_new_module_with_a_warning(old):
    code = (f"import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            f"try:\n    import {old}\nexcept DeprecationWarning as w:\n    print(w)\n")
    # a fresh interpreter: in this one the alias may already be imported (no second warning)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == (f"{old} moved to {MOVED[old]}: import it from there (the old path goes away "
                           "in the next release of alertd)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_the_names_a_site_plugin_copying_a_builtin_used_still_import():
    code = """
import warnings
warnings.simplefilter("ignore", DeprecationWarning)
from alertd.base import Source, Detector, Notifier, SourceError, RetryableError, PermanentError
from alertd.model import Sample, make_labels, Batch, Scores, Status, Notification
from alertd.schema import Duration, Secret, ParamError, parse_params
from alertd.render import Renderer, TemplateParams, mrkdwn_escape
from alertd.view import fmt_iso, status_of
from alertd.sources_util import excerpt, deadline, count, parse_timestamp, to_value
from alertd.httpfetch import HttpFetcher, HttpParams
from alertd.jsonmap import JsonMetric, extract
from alertd.promtext import parse_exposition
from alertd.tail import Tail, Position
from alertd.pushparse import parse_body
from alertd.memory import SeriesMemory
from alertd.features import DAY, WEEK, FEATURES
from alertd.anomaly_model import fit_anomaly_model
from alertd.pyod_models import MODELS
from alertd.default_plugins._http import HttpNotifier, check_url, safe_host
from alertd.default_plugins._payloads import alertd_payload, alertmanager_webhook
from alertd.default_plugins.zscore import ZScore, score_from_z, MAD_SCALE
from alertd.default_plugins.pyod_detector import PyODDetector, slot_text, utc_offset
from alertd.default_plugins.slack import SlackNotifier
from alertd.flapping import FlapSettings
from alertd.config import load_config
from alertd.daemon import Daemon
from alertd.engine import Engine
from alertd.backtest import replay, default_rule
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


def test_the_console_script_and_python_m_alertd_still_run():
    for argv in ([sys.executable, "-m", "alertd", "--version"], [sys.executable, "-m", "alertd.cli", "--version"],
                 [str(Path(sys.executable).parent / "alertd"), "--version"]):
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        assert out.startswith("alertd "), argv


@pytest.mark.parametrize("tag", sorted(json.loads((GOLDEN / "manifest.json").read_text())))
def test_a_model_pickled_under_the_old_module_paths_loads_without_a_warning(tag):
    """tests/golden/models holds models fitted and pickled by alertd 0.1 before the layout
    change (alertd.anomaly_model.AnomalyModel, alertd.default_plugins.seasonal.SlotBaseline, ...)."""
    spec = json.loads((GOLDEN / "manifest.json").read_text())[tag]
    blob = (GOLDEN / f"{tag}.pickle").read_bytes()
    assert b"alertd.anomaly_model" in blob or b"alertd.default_plugins.seasonal" in blob
    registry = load_registry([], entrypoints=False)
    cls = registry.get("detector", spec["detector"])
    from alertd.config.schema import parse_params

    detector = cls(parse_params(cls.Params, spec["params"]), PluginContext(name="golden", now=lambda: 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the remap, not the import aliases, finds the classes
        model = detector.load_model(blob)
    assert type(model).__module__.startswith(("alertd.detect.", "alertd.default_plugins.detectors."))
    detector.install(model)
    info = {k: v for k, v in detector.model_info().items() if k != "fit_seconds"}
    assert info == {k: v for k, v in spec["model_info"].items() if k != "fit_seconds"}
