"""`alertd backtest`: replay a CSV, a stored series or a NAB corpus through a rule's detector.

    alertd backtest -c alertd.yaml --rule orders_anomaly --csv orders.csv \\
        [--labels windows.json] [--plot out.png] [--out scores.csv] [--threshold 0.999]
    alertd backtest -c alertd.yaml --rule orders_anomaly --series 'orders_per_minute{region="eu"}' \
        [--source shop] [--out scores.csv]
    alertd backtest --nab DIR --results OUT [-c alertd.yaml --rule NAME] [--threshold T] [--jobs 2]
    alertd backtest --nab DIR [DIR...] --cross-validate [--json] [--cache DIR] [-c alertd.yaml --rule NAME]
    alertd backtest --sim-week [-c alertd.yaml] [--rule NAME] [--labels-out labels.json] [--json]

The replay runs the daemon's own engine and trainer (see `alertd.backtest`). Without
`--rule`, the built-in default anomaly detector is used (`surprise` with its defaults), except
with `--sim-week`, which replays every rule of the config that reads its shop simulator and
judges them by incidents (alertd/cli/backtest_week.py prints it).
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from .common import CommandError

NAME = "backtest"
HELP = "replay a CSV, a stored series or a NAB corpus through a rule's detector and score it"


def configure(parser) -> None:
    parser.add_argument("-c", "--config", default=os.environ.get("ALERTD_CONFIG", "alertd.yaml"),
                        help="the config file holding --rule (default: $ALERTD_CONFIG or alertd.yaml)")
    parser.add_argument("--rule", help="the rule whose detector to replay (default: the built-in default)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--csv", help="a CSV with timestamp,value columns")
    what.add_argument("--series", help="a stored series key, such as 'orders_per_minute{region=\"eu\"}'")
    what.add_argument("--nab", metavar="DIR", nargs="+", help="a NAB-layout folder: data/<category>/<file>.csv and "
                      "labels/combined_windows.json (several with --cross-validate)")
    what.add_argument("--sim-week", action="store_true", help="replay the shop simulator's labelled week through "
                      "every rule of the config (or --rule) and report incident precision and recall")
    parser.add_argument("--store", help="the store to read --series from (default: the config's store)")
    parser.add_argument("--labels", help="label windows as JSON: [[start, end], ...] or NAB's "
                        "{\"file.csv\": [[start, end], ...]}")
    parser.add_argument("--plot", help="draw a PNG: series, score, threshold, labels, detections")
    parser.add_argument("--out", help="write per-row scores to this CSV (default with --csv: <input>.scores.csv "
                        "beside it; with --series: none)")
    parser.add_argument("--results", help="with --nab: the folder to write <category>/<file>.csv results to")
    parser.add_argument("--threshold", type=float, help="replay with this threshold instead of the rule's")
    parser.add_argument("--jobs", type=int, default=1, help="with --nab: files replayed in parallel; with "
                        "--sim-week: worker processes the rules are shared out over")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--cross-validate", action="store_true", help="with --nab: leave one fold out over the "
                        "folds the corpora's README.md define (threshold chosen on the others, the fold scored)")
    parser.add_argument("--cache", help="with --cross-validate: the folder for per-file scores "
                        "(default: ~/.cache/alertd/cross-validate)")
    from .backtest_week import configure as configure_week
    configure_week(parser)


def run(args) -> int:
    from ..backtest.replay import Progress

    if args.sim_week:
        from .backtest_week import run as run_week
        return run_week(args)
    from .backtest_week import reject_week_options
    reject_week_options(args)
    if args.cross_validate or args.cache:
        if not args.nab:
            raise CommandError("--cross-validate and --cache go with --nab DIR [DIR...]")
        from .backtest_cv import run_cv
        return run_cv(args)
    if args.nab:
        if len(args.nab) > 1:
            raise CommandError("--nab takes one folder, or several with --cross-validate")
        args.nab = args.nab[0]
        if not args.results:
            raise CommandError("--nab needs --results OUT, the folder for the per-file scores")
        return _run_nab(args)
    rule, registry = _rule(args)
    ts, values, name = _input(args, rule)
    if len(ts) == 0:
        raise CommandError(f"{name} has no rows to replay")
    from ..backtest.replay import replay
    progress = None if args.quiet else Progress(f"replaying {Path(name).name}")
    result = replay(rule, registry, ts, values, progress=progress)
    windows = _windows(args, ts, name)
    # beside the CSV; a stored series has no file to sit beside, and the working directory
    # (often /, or the store's) is no place for it: only where --out says
    out = args.out or (f"{Path(args.csv).with_suffix('')}.scores.csv" if args.csv else None)
    if out is not None:
        _write_scores(out, result)
    _report(result, rule, name, windows, out)
    if args.plot:
        from ..backtest.plot import plot_replay
        plot_replay(result, args.plot, title=f"{Path(name).name}: rule {rule.name}", windows=windows or ())
        print(f"plot: {args.plot}")
    return 0


# -- inputs -----------------------------------------------------------------------------------
def _rule_spec(args) -> dict:
    from ..backtest.rules import rule_spec

    return rule_spec(args.config, args.rule, args.threshold)


def _rule(args):
    from ..backtest.rules import BacktestError, rule_from_spec

    try:
        return rule_from_spec(_rule_spec(args))
    except BacktestError as exc:
        raise CommandError(str(exc)) from None


def _input(args, rule):
    from ..backtest.nab import read_series_csv

    if args.csv:
        try:
            ts, values, _ = read_series_csv(args.csv)
        except FileNotFoundError:
            raise CommandError(f"{args.csv} does not exist; pass a CSV with timestamp,value columns") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return ts, values, args.csv
    from .common import open_store
    store = open_store(args)
    try:
        source = args.source or (rule.source if args.rule else None)
        sources = store.samples.sources_of(args.series)
        if source is None and len(sources) > 1:
            raise CommandError(f"the sources {', '.join(sources)} each have a series {args.series}; "
                               "pick one with --source")
        if source is not None and sources and source not in sources:
            raise CommandError(f"the source {source} has no series {args.series}; the sources that have "
                               f"it: {', '.join(sources)} (pick one with --source)")
        ts, values = store.samples.history(args.series, source=source)
    finally:
        store.close()
    if not len(ts):
        raise CommandError(f"the store has no points of {args.series}; check the key with the "
                           "series labels in quotes, e.g. 'orders_per_minute{region=\"eu\"}'")
    return ts, values, args.series


def _windows(args, ts, name):
    from ..backtest.nab import parse_time, windows_to_rows

    if not args.labels:
        return None
    try:
        raw = json.loads(Path(args.labels).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CommandError(f"{args.labels} cannot be read as JSON: {exc}") from None
    if isinstance(raw, dict):
        base = Path(name).name
        match = [v for k, v in raw.items() if Path(k).name == base] or (list(raw.values()) if len(raw) == 1 else [])
        if not match:
            raise CommandError(f"{args.labels} has no windows for {base}; its keys are file names")
        raw = match[0]
    try:
        pairs = [(parse_time(str(a)), parse_time(str(b))) for a, b in raw]
    except (TypeError, ValueError):
        raise CommandError(f"{args.labels}: windows must be [start, end] pairs of timestamps") from None
    return list(windows_to_rows(ts, pairs))


# -- outputs ----------------------------------------------------------------------------------
def _write_scores(path: str, result) -> None:
    from ..model import Status

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["timestamp", "value", "score", "threshold", "status", "lower", "upper", "anomaly_score",
                    "reason"])
        nab = result.nab_scores()
        for i in range(len(result.ts)):
            w.writerow([f"{result.ts[i]:.0f}", _num(result.values[i]), _num(result.score[i]),
                        _num(result.threshold[i]), Status(int(result.status[i])).name.lower(),
                        _num(result.lower[i]), _num(result.upper[i]), _num(nab[i]), result.reasons[i]])


def _num(x) -> str:
    import numpy as np

    return "" if x is None or not np.isfinite(x) else f"{x:.6g}"


def _report(result, rule, name, windows, out) -> None:
    import numpy as np

    from ..backtest.nab import PROFILES, LabelledFile, best_threshold, score_corpus
    from ..backtest.replay import window_metrics
    from ..model import Status

    n = len(result.ts)
    counts = {s: int((result.status == s).sum()) for s in Status}
    onsets = result.onsets
    print(f"replayed {n} rows of {name} through rule {rule.name} ({rule.detector.type}) in "
          f"{result.seconds:.1f}s ({n / max(result.seconds, 1e-9):,.0f} rows/s), {result.fits} model fits")
    print(f"verdicts: {counts[Status.OK]} ok, {counts[Status.ANOMALOUS]} anomalous, "
          f"{counts[Status.WARMING_UP]} warming up, {counts[Status.SKIPPED]} skipped; "
          f"{int(onsets.sum())} detections (an anomaly starts), "
          f"{sum(1 for t in result.incidents if t.kind == 'firing')} incidents would have fired")
    if windows is not None:
        m = window_metrics(onsets, windows)
        print(f"labelled windows: {m['windows']}, found {m['windows_found']}; detections {m['detections']}: "
              f"precision {m['precision']:.2f}, recall {m['recall']:.2f}, F1 {m['f1']:.2f}")
        if windows:
            files = [LabelledFile(name, result.nab_scores(), tuple(windows))]
            thr = float(np.nanmedian(result.threshold)) if np.isfinite(result.threshold).any() else 0.5
            fixed = "  ".join(f"{p.name} {score_corpus(files, thr, p).score:.1f}" for p in PROFILES)
            best = "  ".join(f"{p.name} {(r := best_threshold(files, p)).score:.1f} (at {r.threshold:.6g})"
                             for p in PROFILES)
            print(f"NAB score at threshold {thr:g}: {fixed}")
            print(f"NAB score at the best threshold on this data: {best}")
    print(f"scores: {out}" if out else "per-row scores: not written (pass --out FILE to write them)")


# -- a NAB corpus -------------------------------------------------------------------------------
def _run_nab(args) -> int:
    """Replay the corpus, then print the NAB scores of the three profiles: at the detector's
    own threshold (or --threshold) and at the best threshold on this data (an oracle)."""
    from ..backtest import nab
    from ..backtest.nab_run import replay_corpus
    from ..backtest.rules import BacktestError

    show = not args.quiet and sys.stderr.isatty()
    try:
        run = replay_corpus(_rule_spec(args), args.nab, args.results, jobs=args.jobs,
                            progress=_progress if show else None)
    except BacktestError as exc:
        raise CommandError(str(exc)) from None
    rule, corpus, threshold = run.rule, run.files, run.threshold
    print(f"replayed {len(corpus)} files ({run.rows} rows) through rule {rule.name} ({rule.detector.type}) in "
          f"{run.seconds:.0f}s, {run.fits} model fits; results in {args.results}")
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


def _progress(k: int, total: int, d: dict) -> None:
    sys.stderr.write(f"\r[{k}/{total}] {d['name']} ({d['rows']} rows, {d['seconds']:.1f}s)\033[K")
    if k == total:
        sys.stderr.write("\n")
    sys.stderr.flush()
