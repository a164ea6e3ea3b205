"""Which PyOD models alertd can run, how to build them, and how each one scores a stream.

PyOD's models differ in ways that matter for streaming detection:

- *tabular* models score each row independently of the others in the call (KNN, IForest,
  HBOS, PCA, ...): all series of a rule are scored in one call;
- *row-wise* models compute scores relative to the whole batch they are given (ECOD and
  COPOD re-estimate their ECDFs on training + batch): each row gets its own call, so a score
  never depends on other series or on later points;
- *stream* models score a sequence (SpectralResidual): they get the series' recent
  window and the score of its last point is used;
- some need the optional `torch` extra, labels, or extra packages; naming them gives a
  config error that says so.

`check_model(name, params)` validates a model name and its parameters (against the class
signature) without importing PyOD: the signature is read from the model's source file, so
`alertd validate`, `incidents` or `silence` do not pay for PyOD, scikit-learn, SciPy and numba
(about 2 s and 200 MB); `build_model(name, params)` imports and makes an unfitted model.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TABULAR, ROWWISE, STREAM = "tabular", "row-wise", "stream"


@dataclass(frozen=True)
class ModelInfo:
    """How to import a PyOD model and how it can score."""

    name: str
    module: str
    kind: str = TABULAR
    needs: str | None = None  # an optional package it needs ("torch", "combo")
    univariate: bool = False  # takes exactly one feature


def _m(name, module, kind=TABULAR, needs=None, univariate=False):
    return ModelInfo(name, f"pyod.models.{module}", kind, needs, univariate)


MODELS = {m.name: m for m in (
    _m("ABOD", "abod"), _m("CBLOF", "cblof"), _m("GMM", "gmm"), _m("HBOS", "hbos"),
    _m("IForest", "iforest"), _m("INNE", "inne"), _m("KDE", "kde"), _m("KNN", "knn"),
    _m("KPCA", "kpca"), _m("LODA", "loda"), _m("LOF", "lof"), _m("MCD", "mcd"),
    _m("OCSVM", "ocsvm"), _m("PCA", "pca"), _m("QMCD", "qmcd"), _m("Sampling", "sampling"),
    _m("HDBSCAN", "hdbscan"), _m("MAD", "mad", univariate=True),
    _m("ECOD", "ecod", ROWWISE), _m("COPOD", "copod", ROWWISE), _m("LMDD", "lmdd", ROWWISE),
    _m("ROD", "rod", ROWWISE), _m("SOS", "sos", ROWWISE), _m("CD", "cd", ROWWISE),
    _m("FeatureBagging", "feature_bagging", needs="combo"),
    _m("SpectralResidual", "ts_spectral_residual", STREAM),
    _m("AutoEncoder", "auto_encoder", needs="torch"), _m("VAE", "vae", needs="torch"),
    _m("DeepSVDD", "deep_svdd", needs="torch"), _m("AnoGAN", "anogan", needs="torch"),
    _m("ALAD", "alad", needs="torch"), _m("AE1SVM", "ae1svm", needs="torch"),
    _m("SO_GAAL", "so_gaal", needs="torch"), _m("MO_GAAL", "mo_gaal", needs="torch"),
    _m("DIF", "dif", needs="torch"), _m("LUNAR", "lunar", needs="torch"),
    _m("LSTMAD", "ts_lstm", STREAM, needs="torch"),
)}

# PyOD models that cannot score a stream, and why (named in the config error).
UNSUPPORTED = {
    "XGBOD": "it is supervised and needs labelled anomalies",
    "DevNet": "it is supervised and needs labelled anomalies",
    "MatrixProfile": "it is transductive and cannot score points it was not fitted on",
    "COF": "it cannot score a single point",
    "SOD": "it cannot score a single point",
    "LOCI": "it rescans all training data for every point (far too slow for a stream)",
    "RGraph": "it rescans all training data for every point (far too slow for a stream)",
    "LSCP": "it needs a list of base detectors, which a config cannot express",
    "SUOD": "it needs a list of base detectors, which a config cannot express",
    "KShape": "it clusters whole sequences and cannot score a stream point by point",
    "SAND": "it clusters whole sequences and cannot score a stream point by point",
    "TimeSeriesOD": "it needs long windows per point; use a tabular model with alertd's features",
}


def model_names() -> list[str]:
    """Every supported model name, sorted."""
    return sorted(MODELS)


def _available(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def _class(info: ModelInfo):
    return getattr(importlib.import_module(info.module), info.name)


def check_model(name: str, params: dict) -> ModelInfo:
    """The ModelInfo for `name`; ValueError with one sentence if it or `params` cannot work."""
    info = MODELS.get(name)
    if info is None:
        if name in UNSUPPORTED:
            raise ValueError(f'the PyOD model "{name}" cannot be used here: {UNSUPPORTED[name]}')
        close = difflib.get_close_matches(str(name), model_names(), n=1, cutoff=0.6) or \
            [n for n in MODELS if n.lower() == str(name).lower()]
        hint = f'; did you mean "{close[0]}"?' if close else ";"
        raise ValueError(f'unknown PyOD model "{name}"{hint} the valid models are {", ".join(model_names())}')
    if info.needs and not _available(info.needs):
        extra = "alertd[torch]" if info.needs == "torch" else info.needs
        raise ValueError(f'the PyOD model "{name}" needs the optional package "{info.needs}"; '
                         f"install it (pip install '{extra}') or pick a model that does not")
    try:
        accepted, takes_kwargs = _parameters(info)
    except ImportError as exc:
        raise ValueError(f'the PyOD model "{name}" cannot be imported: {exc}') from None
    for key in params:
        if key not in accepted and not takes_kwargs:
            raise ValueError(f'the PyOD model "{name}" has no parameter "{key}"; '
                             f"its parameters are {', '.join(sorted(accepted - {'kwargs'}))}")
    return info


def _parameters(info: ModelInfo) -> tuple[frozenset, bool]:
    """The keyword parameters of the model's `__init__` and whether it takes **kwargs: from
    its source file when the class defines `__init__` there (no import), else by importing."""
    found = _parameters_from_source(info.module, info.name)
    if found is not None:
        return found
    signature = inspect.signature(_class(info).__init__)
    return (frozenset(p for p in signature.parameters if p != "self"),
            any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()))


@lru_cache(maxsize=None)
def _parameters_from_source(module: str, name: str) -> tuple[frozenset, bool] | None:
    top, _, rest = module.partition(".")
    spec = importlib.util.find_spec(top)  # a top-level package is found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"No module named '{top}'")
    path = Path(spec.submodule_search_locations[0], *rest.split(".")).with_suffix(".py")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    a = item.args
                    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs) if x.arg != "self"]
                    return frozenset(names), a.kwarg is not None
    return None  # inherited __init__: ask the class itself


def build_model(name: str, params: dict, seed: int | None = 0):
    """A new, unfitted PyOD model (`check_model` first for clear errors).

    Models that take a `random_state` get `seed` unless params set one, so fits (and so
    replays) are reproducible.
    """
    cls = _class(MODELS[name])
    params = dict(params)
    if seed is not None and "random_state" not in params and \
            "random_state" in inspect.signature(cls.__init__).parameters:
        params["random_state"] = seed
    return cls(**params)
