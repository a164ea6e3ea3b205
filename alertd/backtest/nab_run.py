"""`alertd backtest --nab`: replay every file of a NAB-layout folder and score the corpus.

Each `DIR/data/<category>/<file>.csv` is replayed through the rule (see `alertd.backtest`),
and `OUT/<category>/<file>.csv` gets `timestamp,value,anomaly_score`, one row per input row
(the score where an anomaly starts, 0 elsewhere). Then the corpus is scored with NAB's rules
(`alertd.nab`) for the three profiles: at the detector's own threshold (or `--threshold`),
and at the threshold that is best on this data (NAB's sweep, an oracle).
"""

from __future__ import annotations

import csv
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from . import nab
from ..cli.common import CommandError


def replay_file(spec: dict, name: str, path: str, windows, results: str) -> dict:
    """Replay one corpus file, write its results CSV; returns what the corpus score needs."""
    from .replay import replay
    from ..cli.backtest import rule_from_spec

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


def run_nab(args, spec: dict) -> int:
    """The command: replay, write results, print the NAB scores; exit code 0."""
    root = Path(args.nab)
    try:
        files = nab.corpus_files(root)
        labels = nab.read_windows(root / "labels" / "combined_windows.json")
    except FileNotFoundError as exc:
        raise CommandError(f"{root} is not a NAB folder: {exc.filename} is missing") from None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if not files:
        raise CommandError(f"{root}/data has no <category>/<file>.csv files")
    from ..cli.backtest import rule_from_spec
    rule, _ = rule_from_spec(spec)  # fail early on a bad --rule or --threshold
    started = time.perf_counter()
    jobs = [(spec, name, str(path), labels.get(name, []), args.results) for name, path in files]
    done = []
    show = not args.quiet and sys.stderr.isatty()
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(replay_file, *job) for job in jobs]
            for k, future in enumerate(futures):
                done.append(future.result())
                _progress(show, k + 1, len(jobs), done[-1])
    else:
        for k, job in enumerate(jobs):
            done.append(replay_file(*job))
            _progress(show, k + 1, len(jobs), done[-1])
    elapsed = time.perf_counter() - started
    corpus = [nab.LabelledFile(d["name"], d["scores"], d["windows"]) for d in done]
    threshold = done[0]["threshold"]
    rows = sum(d["rows"] for d in done)
    print(f"replayed {len(done)} files ({rows} rows) through rule {rule.name} ({rule.detector.type}) in "
          f"{elapsed:.0f}s, {sum(d['fits'] for d in done)} model fits; results in {args.results}")
    print(f"{'profile':<15} {'score at ' + format(threshold, 'g'):>16} {'best':>8} {'at threshold':>14}"
          f"  windows found, false positives (at {threshold:g})")
    for profile in nab.PROFILES:
        fixed = nab.score_corpus(corpus, threshold, profile)
        best = nab.best_threshold(corpus, profile)
        print(f"{profile.name:<15} {fixed.score:>16.1f} {best.score:>8.1f} {best.threshold:>14.6g}"
              f"  {fixed.tp}/{fixed.windows}, {fixed.fp}")
    by_cat: dict[str, list] = {}
    for f in corpus:
        by_cat.setdefault(f.name.split("/")[0], []).append(f)
    print(f"standard profile by category at {threshold:g} (raw score; windows found; false positives):")
    for cat, items in by_cat.items():
        r = nab.score_corpus(items, threshold)
        print(f"  {cat:<24} {r.raw:7.2f}  {r.tp}/{r.windows}  {r.fp}")
    return 0


def _progress(show: bool, k: int, total: int, d: dict) -> None:
    if show:
        sys.stderr.write(f"\r[{k}/{total}] {d['name']} ({d['rows']} rows, {d['seconds']:.1f}s)\033[K")
        if k == total:
            sys.stderr.write("\n")
        sys.stderr.flush()
