"""The Numenta Anomaly Benchmark (NAB) scoring rules, and the NAB folder layout.

A detector emits one anomaly score in [0, 1] per row of each file; a row is a *detection*
when its score is at or above a threshold shared by the whole corpus. Each labelled window
earns a scaled reward for its earliest detection (full reward at the left edge, about 0 at
the right edge) or costs `fn` when missed; every detection outside a window costs up to
`fp`, less just after a window. The first `min(floor(0.15 N), 750)` rows of a file are a
probation period whose detections are ignored. The raw corpus score is normalised so that a
detector that never fires scores 0 and a perfect one 100.

`score_corpus` scores a fixed threshold; `best_threshold` sweeps every distinct score value
in one pass (O(rows log rows)) and returns the threshold with the best normalised score,
which is what NAB reports (an oracle on the scored data).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Profile:
    """Rewards and costs of one NAB application profile."""

    name: str
    tp: float
    fp: float
    fn: float


PROFILES = (Profile("standard", 1.0, 0.11, 1.0),
            Profile("reward_low_FP", 1.0, 0.22, 1.0),
            Profile("reward_low_FN", 1.0, 0.11, 2.0))


def sigmoid(y):
    """NAB's scaled sigmoid: 2 / (1 + e^(5y)) - 1, and -1 beyond y = 3."""
    y = np.asarray(y, dtype=float)
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, out)


def probation_rows(n: int) -> int:
    """Rows at the start of a file whose detections are not scored."""
    return min(int(math.floor(0.15 * n)), 750)


@dataclass(frozen=True)
class LabelledFile:
    """One scored series: its name, its scores per row, and its windows as row ranges."""

    name: str
    scores: np.ndarray  # (n,) anomaly score per row
    windows: tuple[tuple[int, int], ...]  # inclusive (first row, last row)

    def __post_init__(self):
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=float))


def windows_to_rows(timestamps: np.ndarray, windows) -> tuple[tuple[int, int], ...]:
    """Label windows given as (start, end) epoch seconds -> inclusive row index ranges.

    A window covers the rows whose timestamp lies within [start, end]; a window with no row
    inside is dropped (it cannot be detected or missed on this data).
    """
    ts = np.asarray(timestamps, dtype=float)
    out = []
    for start, end in windows:
        left = int(np.searchsorted(ts, start, side="left"))
        right = int(np.searchsorted(ts, end, side="right")) - 1
        if right >= left:
            out.append((left, right))
    return tuple(out)


def _row_values(n: int, windows, profile: Profile) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the window index it belongs to (-1: none) and what a detection there is worth.

    Inside a window the worth is the TP reward of that position; outside it is the (negative)
    FP cost, which depends on the distance to the previous window.
    """
    window_of = np.full(n, -1, dtype=np.int64)
    worth = np.full(n, -profile.fp)
    rows = np.arange(n)
    for k, (left, right) in enumerate(windows):
        width = right - left + 1
        inside = rows[left:right + 1]
        window_of[left:right + 1] = k
        y = -(right - inside + 1) / width
        worth[left:right + 1] = profile.tp * sigmoid(y) / sigmoid(-1.0)
        nxt = windows[k + 1][0] if k + 1 < len(windows) else n
        after = rows[right + 1:nxt]
        if len(after):
            y = np.abs(after - right) / max(width - 1, 1)
            worth[right + 1:nxt] = profile.fp * sigmoid(y)
    return window_of, worth


@dataclass(frozen=True)
class Result:
    """A NAB result: the normalised score and what it is made of."""

    profile: str
    threshold: float
    score: float  # normalised: 0 never fires, 100 perfect
    raw: float
    tp: int  # windows detected
    fn: int  # windows missed
    fp: int  # detections outside windows (rows)
    windows: int


def _normalise(raw: float, windows: int, profile: Profile) -> float:
    null, perfect = -profile.fn * windows, profile.tp * windows
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def score_corpus(files: list[LabelledFile], threshold: float, profile: Profile = PROFILES[0]) -> Result:
    """The NAB score of all files at one threshold (detections: score >= threshold)."""
    raw, tp, fn, fp, n_windows = 0.0, 0, 0, 0, 0
    for f in files:
        n = len(f.scores)
        window_of, worth = _row_values(n, f.windows, profile)
        detected = np.zeros(n, dtype=bool)
        with np.errstate(invalid="ignore"):
            detected[probation_rows(n):] = f.scores[probation_rows(n):] >= threshold
        n_windows += len(f.windows)
        for k in range(len(f.windows)):
            hits = np.flatnonzero(detected & (window_of == k))
            if len(hits):
                raw += worth[hits[0]]
                tp += 1
            else:
                raw -= profile.fn
                fn += 1
        outside = detected & (window_of < 0)
        raw += float(worth[outside].sum())
        fp += int(outside.sum())
    return Result(profile.name, float(threshold), _normalise(raw, n_windows, profile), raw, tp, fn, fp,
                  n_windows)


def best_threshold(files: list[LabelledFile], profile: Profile = PROFILES[0]) -> Result:
    """The threshold (one of the distinct score values) with the best normalised score.

    Lowering the threshold from above the top score adds detections one score value at a
    time; the raw score is updated incrementally (a window's value changes only when an
    earlier row of it is detected), so the sweep costs one sort of all rows.
    """
    n_windows = sum(len(f.windows) for f in files)
    score_parts, file_parts, row_parts, worth_parts, win_parts = [], [], [], [], []
    offset = 0
    for i, f in enumerate(files):
        n = len(f.scores)
        window_of, worth = _row_values(n, f.windows, profile)
        start = probation_rows(n)
        ok = np.isfinite(f.scores[start:])
        rows = np.arange(start, n)[ok]
        score_parts.append(f.scores[rows])
        file_parts.append(np.full(len(rows), i))
        row_parts.append(rows)
        worth_parts.append(worth[rows])
        win_parts.append(np.where(window_of[rows] >= 0, window_of[rows] + offset, -1))
        offset += len(f.windows)
    if not score_parts or not sum(len(s) for s in score_parts):
        raw = -profile.fn * n_windows
        return Result(profile.name, math.inf, _normalise(raw, n_windows, profile), raw, 0, n_windows, 0,
                      n_windows)
    scores = np.concatenate(score_parts)
    rows = np.concatenate(row_parts)
    worth = np.concatenate(worth_parts)
    window = np.concatenate(win_parts)
    order = np.argsort(-scores, kind="stable")
    scores, rows, worth, window = scores[order], rows[order], worth[order], window[order]

    best_row = np.full(n_windows, np.iinfo(np.int64).max)
    best_worth = np.full(n_windows, -profile.fn)
    raw = -profile.fn * n_windows
    tp = fp = 0
    best = (_normalise(raw, n_windows, profile), math.inf, raw, 0, 0)
    j, total = 0, len(scores)
    while j < total:
        level = scores[j]
        while j < total and scores[j] == level:
            w = window[j]
            if w < 0:
                raw += worth[j]
                fp += 1
            elif rows[j] < best_row[w]:
                if best_row[w] == np.iinfo(np.int64).max:
                    tp += 1
                raw += worth[j] - best_worth[w]
                best_row[w], best_worth[w] = rows[j], worth[j]
            j += 1
        norm = _normalise(raw, n_windows, profile)
        if norm > best[0]:
            best = (norm, float(level), raw, tp, fp)
    norm, thr, raw, tp, fp = best
    return Result(profile.name, thr, norm, raw, tp, n_windows - tp, fp, n_windows)


# -- the NAB folder layout ----------------------------------------------------------------------
def parse_time(text: str) -> float:
    """A NAB timestamp ("2014-04-10 07:15:00" or with ".000000"; UTC) -> epoch seconds."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return float(text)  # already a number of seconds
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def read_series_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A `timestamp,value` CSV -> (epoch seconds, values, the timestamp texts as written).

    Values that are not numbers become NaN (the detector skips them, the row is kept).
    Raises ValueError naming the file and line when a timestamp cannot be read.
    """
    ts, values, texts = [], [], []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return np.empty(0), np.empty(0), []
        cols = [h.strip().lower() for h in header]
        if "timestamp" not in cols or "value" not in cols:
            raise ValueError(f"{path}: the first line must be a header with timestamp and value columns, "
                             f"got {','.join(header)!r}")
        ti, vi = cols.index("timestamp"), cols.index("value")
        for lineno, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip():
                continue
            try:
                ts.append(parse_time(row[ti]))
            except (ValueError, IndexError):
                raise ValueError(f"{path}:{lineno}: {row[ti] if len(row) > ti else ''!r} is not a timestamp; "
                                 "write YYYY-MM-DD HH:MM:SS or epoch seconds") from None
            texts.append(row[ti].strip())
            try:
                values.append(float(row[vi]))
            except (ValueError, IndexError):
                values.append(math.nan)
    return np.asarray(ts, dtype=float), np.asarray(values, dtype=float), texts


def read_windows(path: str | Path) -> dict[str, list[tuple[float, float]]]:
    """A NAB `combined_windows.json` -> {"category/file.csv": [(start, end) epoch seconds]}."""
    with open(path, encoding="utf-8") as fh:
        raw = json.load(fh)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of file names to lists of [start, end] windows")
    out = {}
    for name, windows in raw.items():
        try:
            out[name] = [(parse_time(a), parse_time(b)) for a, b in windows]
        except (TypeError, ValueError):
            raise ValueError(f"{path}: the windows of {name} must be [start, end] timestamp pairs") from None
    return out


def corpus_files(root: str | Path) -> list[tuple[str, Path]]:
    """The ("category/file.csv", path) pairs of a NAB-layout folder, sorted."""
    data = Path(root) / "data"
    if not data.is_dir():
        raise ValueError(f"{root} has no data/ folder; expected the NAB layout data/<category>/<file>.csv")
    return sorted((p.relative_to(data).as_posix(), p) for p in data.glob("*/*.csv"))


def open_corpus(root: Path, error) -> tuple[list, dict]:
    """The files and label windows of the NAB-layout folder `root`; `error` (an exception
    class) with one sentence when it is not a corpus or holds no series."""
    try:
        files = corpus_files(root)
        labels = read_windows(root / "labels" / "combined_windows.json")
    except FileNotFoundError as exc:
        raise error(f"{root} is not a NAB folder: {exc.filename} is missing") from None
    except ValueError as exc:
        raise error(str(exc)) from None
    if not files:
        raise error(f"{root}/data has no <category>/<file>.csv files")
    return files, labels
