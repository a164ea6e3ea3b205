"""`alertd backtest --nab DIR [DIR...] --cross-validate`: leave one fold out over the folds
the corpora's README.md files define (alertd/backtest/cross_validate.py), printed as a table
or, with --json, as JSON."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .common import CommandError


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "alertd" / "cross-validate"


def run_cv(args) -> int:
    from ..backtest import cross_validate as cv
    from ..backtest.rules import BacktestError, rule_spec

    if args.results or args.threshold is not None:
        raise CommandError("--cross-validate chooses the threshold itself and writes no per-file results; "
                           "drop --results and --threshold")
    show = not args.quiet and sys.stderr.isatty()

    def progress(k, total):
        if show:
            sys.stderr.write(f"\rscoring {k}/{total} files\033[K" + ("\n" if k == total else ""))
            sys.stderr.flush()

    try:
        files = cv.load(args.nab)
        spec = rule_spec(args.config, args.rule, None)
        scores, quiets, detector = cv.file_scores(spec, files, Path(args.cache) if args.cache else default_cache(),
                                                  args.jobs, progress)
    except BacktestError as exc:
        raise CommandError(str(exc)) from None
    if len({f.fold for f in files}) < 2:
        raise CommandError("cross-validation needs at least two folds; the READMEs define one")
    result = cv.cross_validate(files, scores, quiets)
    print(cv.report_json(result, detector, args.nab) if args.json else cv.report_text(result, detector, len(files)))
    return 0
