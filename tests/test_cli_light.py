"""The CLI is quick: `alertd --help`, `validate`, `incidents`, `silence`, `notifications` do
not import PyOD, numba, scikit-learn or SciPy (before issue 16 each took about 2 s and 270 MB
to parse the config: checking a `pyod` rule's model params imported PyOD). The params are
still checked: a PyOD model's parameters are read from its source file.
(Timings: bench/cli.py, docs/benchmarks.md.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from daemon_process import ROOT

HEAVY = ("pyod", "numba", "sklearn", "scipy", "torch")
PROBE = """
import sys
from alertd.cli.entry import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
print("HEAVY " + ",".join(heavy), file=sys.stderr)
sys.exit(code)
""" % (HEAVY,)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The demo config and its plugins, with a store holding an incident-free history."""
    where = tmp_path_factory.mktemp("site")
    shutil.copy(ROOT / "alertd.yaml", where / "alertd.yaml")
    shutil.copytree(ROOT / "plugins", where / "plugins")
    from alertd.store import Store
    Store(where / "alertd.db").close()
    return where


def cli(site, *args) -> tuple[int, str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=site,
                          timeout=60)
    heavy = [line for line in proc.stderr.splitlines() if line.startswith("HEAVY ")]
    return proc.returncode, proc.stdout + proc.stderr, heavy[-1][6:].split(",") if heavy and heavy[-1][6:] else []


@pytest.mark.parametrize("args", [["--help"], ["validate"], ["validate", "-v"], ["incidents"], ["incidents", "--all"],
                                  ["silence", "list"], ["notifications", "--attempts"], ["plugins"]])
def test_store_and_config_commands_load_no_detector_library(site, args):
    code, out, heavy = cli(site, *args)
    assert code == 0, out
    assert heavy == []


def test_a_bad_pyod_parameter_is_still_an_error_without_importing_pyod(site):
    text = (site / "alertd.yaml").read_text()
    bad = site / "bad.yaml"
    demo = "detector: {type: surprise, threshold: 0.06, short_points: 6, sustained: 1}"  # (the demo's since issue 15b)
    assert demo in text
    bad.write_text(text.replace(demo, "detector: {type: pyod, model: KNN, model_params: {n_neighbours: 5}}", 1))
    code, out, heavy = cli(site, "validate", "-c", str(bad))
    assert code == 1 and heavy == []
    assert 'the PyOD model "KNN" has no parameter "n_neighbours"; its parameters are' in out
    assert "n_neighbors" in out


def test_running_a_rule_still_uses_pyod(site):
    code = ("import json, sys; from alertd.detect.pyod_models import build_model; "
            "m = build_model('KNN', {'n_neighbors': 3}); print(json.dumps([type(m).__module__, 'pyod' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["pyod.models.knn", True]
