"""Replaying a NAB-layout corpus (`alertd backtest --nab`).

Each `DIR/data/<category>/<file>.csv` is replayed through the rule (alertd/backtest/replay.py),
and `OUT/<category>/<file>.csv` gets `timestamp,value,anomaly_score`, one row per input row
(the score where an anomaly starts, 0 elsewhere). The caller scores the corpus with NAB's
rules (alertd/backtest/nab.py).
"""

from __future__ import annotations

import csv
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import nab
from .replay import replay
from .rules import BacktestError, rule_from_spec


def replay_file(spec: dict, name: str, path: str, windows, results: str) -> dict:
    """Replay one corpus file, write its results CSV; returns what the corpus score needs."""
    rule, registry = rule_from_spec(spec)
    ts, values, texts = nab.read_series_csv(path)
    result = replay(rule, registry, ts, values)
    scores = result.nab_scores()
    out = Path(results) / name
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "anomaly_score"])
        for text, v, s in zip(texts, values, scores):
            w.writerow([text, "" if not np.isfinite(v) else repr(float(v)), f"{s:.6f}"])
    thr = result.threshold[np.isfinite(result.threshold)]
    return {"name": name, "scores": scores, "windows": nab.windows_to_rows(ts, windows),
            "seconds": result.seconds, "fits": result.fits, "rows": len(ts),
            "threshold": float(np.median(thr)) if len(thr) else 0.5}


@dataclass
class CorpusRun:
    """A replayed corpus: each file's scores and windows, and what the replay cost."""

    rule: object
    files: list  # nab.LabelledFile, in corpus order
    rows: int
    fits: int
    seconds: float
    threshold: float  # the detector's own threshold (or the spec's)


def replay_corpus(spec: dict, root, results, *, jobs: int = 1, progress=None) -> CorpusRun:
    """Replay every file of the NAB-layout folder `root` through the spec's rule, writing
    `results/<category>/<file>.csv`; BacktestError for a folder that is not a corpus."""
    root = Path(root)
    files, labels = nab.open_corpus(root, BacktestError)
    rule, _ = rule_from_spec(spec)  # fail early on a bad --rule or --threshold
    started = time.perf_counter()
    work = [(spec, name, str(path), labels.get(name, []), str(results)) for name, path in files]
    done = []
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(replay_file, *job) for job in work]:
                done.append(future.result())
                if progress:
                    progress(len(done), len(work), done[-1])
    else:
        for job in work:
            done.append(replay_file(*job))
            if progress:
                progress(len(done), len(work), done[-1])
    return CorpusRun(rule, [nab.LabelledFile(d["name"], d["scores"], d["windows"]) for d in done],
                     sum(d["rows"] for d in done), sum(d["fits"] for d in done),
                     time.perf_counter() - started, done[0]["threshold"])
