"""Pickle fitted models with the code of commit 471404c (before the package layout change)."""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, "tests")
from detect_data import daily

from alertd.base import PluginContext, TrainingSet
from alertd.model import Batch, make_labels
from alertd.plugins import load_registry
from alertd.schema import parse_params

out = Path("tests/golden/models")
reg = load_registry([], entrypoints=False)
ts, v = daily(days=22, weekly=True)
keys = ['orders{region="eu"}', 'orders{region="us"}']
labels = [make_labels({"region": "eu"}), make_labels({"region": "us"})]
data = TrainingSet(keys, labels, [ts, ts], [v, v * 1.5 + 3], now=float(ts[-1]))
manifest = {}
for name, params in [("pyod", {"min_history": 100, "train_points": 400}), ("seasonal", {}),
                     ("pyod", {"min_history": 100, "train_points": 400, "model_scope": "series",
                               "model": "ECOD", "model_params": {}})]:
    cls = reg.get("detector", name)
    p = parse_params(cls.Params, params)
    det = cls(p, PluginContext(name="golden", now=lambda: float(ts[-1])))
    n = params.get("train_points")
    model = det.fit(data if n is None else TrainingSet(keys, labels, [t[-n:] for t in data.ts],
                                                        [x[-n:] for x in data.values], data.now))
    det.install(model)
    manifest_info = det.model_info()
    blob = det.dump_model(model)
    tag = f"{name}-{params.get('model_scope', 'rule')}"
    (out / f"{tag}.pickle").write_bytes(blob)
    manifest[tag] = {"detector": name, "params": params, "model_info": manifest_info}
    print(tag, len(blob), type(model))
(out / "README.md").write_text(
    "Fitted models pickled by alertd at commit 471404c, before the package layout change\n"
    "(issue 14), under the old module paths (alertd.anomaly_model, alertd.calibration, ...).\n"
    "tests/test_layout_compat.py loads them with today's code: a store written by an older\n"
    "alertd must keep its models, so no rule warms up again after an upgrade.\n\n"
    "Made by: `python tests/golden/models/make.py` at that commit; never regenerate them.\n")
(out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
