"""Leave-one-fold-out cross-validation over NAB-layout corpora (`alertd backtest --nab DIR...
--cross-validate`).

Each corpus's README.md defines its folds in a "Cross-validation folds" table (a `fold`
column, and a `categories` column where a fold joins several categories; else the fold is
the category of that name). For each fold: the threshold θ is chosen on the other folds'
files together (NAB's sweep: the best normalised standard score), then the held-out fold is
scored with that θ unchanged. Reported: every fold's held-out score and θ, their mean over
all folds and per corpus; the frozen θ is the median of the folds' choices.

Detections are what the daemon would page on at θ: for `surprise`, a row whose score reaches
θ after the detector's cooldown of rows below it (the same rule as `--nab` replays); for
other detectors, the `--nab` onset column swept as NAB does. Scores per file are cached
(keyed by the file, the detector's type and params, and alertd's detector code), so a rerun
only re-scores.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import nab
from .rules import BacktestError, rule_from_spec

GRID = 4000  # candidate thresholds at most (all distinct values when fewer)


@dataclass
class CVFile:
    """One labelled series of a corpus, with its fold."""

    corpus: str
    name: str  # category/file.csv
    fold: str
    path: Path
    ts: np.ndarray
    values: np.ndarray
    windows: tuple


def read_folds(root: Path) -> dict[str, str]:
    """{category: fold} from the "Cross-validation folds" table of `root`/README.md."""
    readme = root / "README.md"
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        raise BacktestError(f"{readme} is missing; --cross-validate reads the folds from its "
                            "'Cross-validation folds' table") from None
    part = re.split(r"^#+\s*Cross-validation folds\s*$", text, flags=re.M | re.I)
    rows = [ln for ln in (part[1].splitlines() if len(part) > 1 else []) if ln.strip().startswith("|")]
    if len(rows) < 3:
        raise BacktestError(f"{readme} has no 'Cross-validation folds' table (a heading, then a table "
                            "with a fold column)")
    head = [c.strip().lower() for c in rows[0].strip().strip("|").split("|")]
    if "fold" not in head:
        raise BacktestError(f"{readme}: the folds table has no 'fold' column")
    folds = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != len(head):
            continue
        fold = cells[head.index("fold")]
        cats = cells[head.index("categories")].split("+") if "categories" in head else [fold]
        for cat in cats:
            folds[cat.strip()] = fold
    return folds


def load(roots) -> list[CVFile]:
    """Every file of every corpus, with its fold; BacktestError when a category has none."""
    out = []
    for root in map(Path, roots):
        names, labels = nab.open_corpus(root, BacktestError)
        folds = read_folds(root)
        for name, path in names:
            cat = name.split("/")[0]
            if cat not in folds:
                raise BacktestError(f"{root}: category {cat} is in no fold of README.md's folds table; "
                                    "add it to a fold")
            ts, values, _ = nab.read_series_csv(path)
            out.append(CVFile(root.name, name, folds[cat], path, ts, values,
                              nab.windows_to_rows(ts, labels.get(name, []))))
    return out


# -- scores -------------------------------------------------------------------------------------
def _code_version() -> str:
    here = Path(__file__).resolve().parent.parent
    text = "".join((here / p).read_text(encoding="utf-8") for p in
                   ("detect/surprise.py", "detect/surprise_range.py", "detect/surprise_run.py",
                    "default_plugins/detectors/surprise.py"))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _key(spec_text: str, f: CVFile) -> str:
    st = f.path.stat()
    text = f"{spec_text}|{f.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{_code_version()}"
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def file_scores(spec: dict, files: list[CVFile], cache: Path | None, jobs: int = 1, progress=None):
    """(scores per file, quiet rows per file, detector type). Detections at θ: score >= θ
    after `quiet` rows below it."""
    rule, _ = rule_from_spec(spec)
    det = rule.detector
    spec_text = f"{det.type}:{det.params!r}"
    out: list = [None] * len(files)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(files):
            p = cache / f"{_key(spec_text, f)}.npy"
            if p.exists():
                out[i] = np.load(p)
    todo = [i for i, s in enumerate(out) if s is None]
    if todo:
        if det.type == "surprise":
            computed = _surprise_scores(det.params, [files[i] for i in todo], progress)
        else:
            computed = _replayed_scores(spec, [files[i] for i in todo], jobs, progress)
        for i, s in zip(todo, computed):
            out[i] = s
            if cache is not None:
                np.save(cache / f"{_key(spec_text, files[i])}.npy", s)
    if det.type == "surprise":
        from ..detect.surprise_run import quiet_rows
        quiet = [quiet_rows(f.ts, 2, float(det.params.cooldown)) for f in files]
    else:
        quiet = [0] * len(files)  # the onset column already holds only the detections
    return out, quiet, det.type


def _surprise_scores(params, files, progress):
    """The daemon's scores of `surprise`, all files in lockstep through its core (identical
    to replaying each through the engine: tests/test_surprise.py)."""
    from ..default_plugins.detectors.surprise import core_of
    from ..detect.surprise_run import run_many

    core = core_of(params)
    if progress:
        progress(0, len(files))
    scores = run_many([(f.ts, f.values) for f in files], core, threshold=params.threshold)
    if progress:
        progress(len(files), len(files))
    return scores


def _replayed_scores(spec, files, jobs, progress):
    """Any other detector: each file replayed through the engine (nab_run), the onset column."""
    import tempfile

    from .nab_run import replay_file

    with tempfile.TemporaryDirectory() as tmp:
        out = []
        for k, f in enumerate(files):
            out.append(replay_file(spec, f.name, str(f.path), [], tmp)["scores"])
            if progress:
                progress(k + 1, len(files))
    return out


# -- the threshold sweep -------------------------------------------------------------------------
def _prev_max(s: np.ndarray, quiet: int) -> np.ndarray:
    """max(s[t-quiet .. t-1]) per row (-inf where there is none, or quiet == 0)."""
    if quiet <= 0:
        return np.full(len(s), -np.inf)
    padded = np.concatenate([np.full(quiet, -np.inf), s])
    return np.lib.stride_tricks.sliding_window_view(padded, quiet)[:-1].max(axis=1)


@dataclass
class Sweep:
    """Per file, the raw NAB score (standard profile) at every candidate threshold."""

    thetas: np.ndarray  # descending
    raw: np.ndarray  # (files, thetas)
    windows: np.ndarray  # (files,)


def sweep(scores, quiets, files, profile=nab.PROFILES[0]) -> Sweep:
    hi, lo, worth, win, fid = [], [], [], [], []
    n_win = np.array([len(f.windows) for f in files])
    offset = 0
    for i, (s, q, f) in enumerate(zip(scores, quiets, files)):
        s = np.nan_to_num(np.asarray(s, dtype=float))
        n = len(s)
        prev = _prev_max(s, q)
        window_of, w = nab._row_values(n, f.windows, profile)
        keep = (np.arange(n) >= nab.probation_rows(n)) & (s > prev) & (s > 0)
        hi.append(s[keep])
        lo.append(prev[keep])
        worth.append(w[keep])
        win.append(np.where(window_of[keep] >= 0, window_of[keep] + offset, -1))
        fid.append(np.full(int(keep.sum()), i))
        offset += len(f.windows)
    hi, lo, worth, win, fid = map(np.concatenate, (hi, lo, worth, win, fid))
    u = np.unique(hi)[::-1]
    thetas = u if len(u) <= GRID else np.concatenate([u[:1000], u[1000:][np.linspace(0, len(u) - 1001, GRID - 1000)
                                                                          .astype(int)]])
    raw = np.zeros((len(files), len(thetas)))
    raw -= (profile.fn * n_win)[:, None]
    for k, th in enumerate(thetas):
        det = (hi >= th) & (lo < th)
        out = det & (win < 0)
        raw[:, k] += np.bincount(fid[out], weights=worth[out], minlength=len(files))
        ins = np.flatnonzero(det & (win >= 0))
        if len(ins):
            _, first = np.unique(win[ins], return_index=True)  # rows are in order: the earliest
            j = ins[first]
            raw[:, k] += np.bincount(fid[j], weights=worth[j] + profile.fn, minlength=len(files))
    return Sweep(thetas, raw, n_win)


def _normalised(raw, windows, profile=nab.PROFILES[0]):
    null, perfect = -profile.fn * windows, profile.tp * windows
    return 100.0 * (raw - null) / max(perfect - null, 1e-12)


def choose(sw: Sweep, rows: np.ndarray) -> tuple[float, float]:
    """(θ, training score) best on the files `rows` (ties: the highest θ)."""
    norm = _normalised(sw.raw[rows].sum(axis=0), sw.windows[rows].sum())
    k = int(np.argmax(norm))
    return float(sw.thetas[k]), float(norm[k])


def exact(scores, quiets, files, rows, theta: float) -> nab.Result:
    """The held-out figure from NAB's own scorer on the detection column at θ."""
    from ..detect.surprise_run import events

    lf = [nab.LabelledFile(files[i].name, events(scores[i], theta, quiets[i]).astype(float), files[i].windows)
          for i in rows]
    return nab.score_corpus(lf, 0.5)


def cross_validate(files: list[CVFile], scores, quiets) -> dict:
    """Every fold's held-out result, the means, the frozen θ and its figure on every fold."""
    sw = sweep(scores, quiets, files)
    order = list(dict.fromkeys(f.fold for f in files))
    fold_of = np.array([order.index(f.fold) for f in files])
    folds = []
    for k, name in enumerate(order):
        train, test = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        theta, train_score = choose(sw, train)
        r = exact(scores, quiets, files, test, theta)
        folds.append({"fold": name, "corpus": files[test[0]].corpus, "files": len(test), "theta": theta,
                      "train_score": round(train_score, 2), "score": round(r.score, 2), "windows": r.windows,
                      "found": r.tp, "false_positives": r.fp})
    frozen = float(f"{np.median([f['theta'] for f in folds]):.4g}")  # as a default is written
    for k, f in enumerate(folds):
        r = exact(scores, quiets, files, np.flatnonzero(fold_of == k), frozen)
        f["score_at_frozen"] = round(r.score, 2)
    corpora = list(dict.fromkeys(f["corpus"] for f in folds))
    return {"folds": folds, "mean": round(float(np.mean([f["score"] for f in folds])), 2),
            "by_corpus": {c: round(float(np.mean([f["score"] for f in folds if f["corpus"] == c])), 2)
                          for c in corpora},
            "lowest": round(float(min(f["score"] for f in folds)), 2),
            "frozen_theta": frozen, "frozen_rule": "the median of the folds' thresholds, to 4 digits",
            "mean_at_frozen": round(float(np.mean([f["score_at_frozen"] for f in folds])), 2)}


def report_text(res: dict, detector: str, n_files: int) -> str:
    lines = [f"leave-one-fold-out over {len(res['folds'])} folds ({n_files} files), detector {detector}, "
             "standard profile: θ chosen on the other folds, the held-out fold scored at it",
             f"{'fold':<36} {'corpus':<10} {'held-out':>8} {'θ chosen':>10} {'train':>6} {'found':>8} {'FP':>5}"]
    for f in res["folds"]:
        lines.append(f"{f['fold']:<36} {f['corpus']:<10} {f['score']:>8.1f} {f['theta']:>10.4g} "
                     f"{f['train_score']:>6.1f} {f['found']:>4}/{f['windows']:<3} {f['false_positives']:>5}")
    per = "; ".join(f"{c} {m:.1f}" for c, m in res["by_corpus"].items())
    lines.append(f"mean over {len(res['folds'])} folds {res['mean']:.1f}; {per}; lowest fold {res['lowest']:.1f}")
    lines.append(f"frozen threshold {res['frozen_theta']:.4g} ({res['frozen_rule']}); at it every fold "
                 f"(not a held-out figure) averages {res['mean_at_frozen']:.1f}: "
                 + ", ".join(f"{f['fold']} {f['score_at_frozen']:.1f}" for f in res["folds"]))
    return "\n".join(lines)


def report_json(res: dict, detector: str, roots) -> str:
    return json.dumps({"detector": detector, "corpora": [str(r) for r in roots], **res}, indent=2)
