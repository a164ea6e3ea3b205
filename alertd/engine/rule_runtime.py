"""What the engine keeps per rule (its detector and series windows) and per source (poll
health), and what one tick reports."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..incidents.tracker import Transition
from ..model import Sample, Status, fingerprint
from . import missing_data as nodata
from .windows import SeriesWindows


@dataclass
class TickResult:
    """What one `ingest` did, for logs, tests and benchmarks."""

    stored: int = 0
    skipped: int = 0
    scored: int = 0
    transitions: list[Transition] = field(default_factory=list)
    regrouped: bool = False  # groups changed without a transition (incidents resolved by hand)

    @property
    def grouped(self) -> bool:
        """Whether alert groups changed: the group timer should look at them now."""
        return bool(self.transitions) or self.regrouped


@dataclass(frozen=True)
class SeriesView:
    """One series of a rule as pages show it: labels, incident fingerprint, detections."""

    key: str
    labels: dict
    fingerprint: str
    open: bool
    detections: list


@dataclass(frozen=True)
class RuleView:
    """A rule and some of its series (those with open incidents first), for pages."""

    rule: object
    series: list[SeriesView]
    total: int


@dataclass
class SourceHealth:
    """How a source's polls are going: for /metrics, the status page and no-data states."""

    last_ok: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    consecutive_errors: int = 0


class RuleRuntime:
    """A rule with its detector instance and the history buffers of its series."""

    def __init__(self, rule, detector):
        self.rule = rule
        self.detector = detector
        self.windows = SeriesWindows(max(detector.window, 1))
        self.fingerprints: list[str] = []
        self.row_of_fp: dict[str, int] = {}
        self._matches: dict[str, bool] = {}
        self._selected: tuple = (None, None, None)  # last keys, picked indices, picked keys
        # The engine's memory of the last poll's key list (the same list object when a poll
        # brings the same series; windows never drop a row): its series are seeded, and
        # their window rows (distinct: as an array) are known.
        self.seeded_keys: list[str] | None = None
        self.layout: tuple = (None, None, None)  # (keys, rows, distinct rows array or None)
        self.missed: dict[int, int] = {}  # row -> polls in a row without a point
        self.last_data_ts: float | None = None  # newest data time seen, and the clock then
        self.last_data_at: float = 0.0
        self.nodata_fp = nodata.nodata_fingerprint(rule.name)
        self.has_unlabelled = False  # a real series without labels shares nodata_fp
        self.warming = np.zeros(0, dtype=bool)  # per row: the last verdict was WARMING_UP
        self.last_status = np.zeros(0, dtype=np.int8)  # per row: the last verdict's Status (-1: none)
        self.last_counts: dict[str, int] = {}  # verdicts of the last scored batch, by status
        self.known_seeded = False  # the series the store knows were added (absence rules)
        # for the rule's health (alertd/engine/rule_health.py): the daemon clock of the last
        # scored batch, the detector's last error, and how training goes (`note_fit`)
        self.last_evaluated_at: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.training: dict = {}
        self.polls = 0  # polls that brought this rule data, and the last of them each row was in
        self.seen_poll = np.zeros(0, dtype=np.int64)

    def add_series(self, key: str, labels, is_tracked, now: float | None = None, fp: str | None = None) -> int:
        """A new series of this rule: its window row, with its incident fingerprint (`fp`, if
        worked out already) and whether the alert stage tracks it (`is_tracked(fp)`); `now`:
        the poll."""
        row = self.windows.add(key, labels, now)
        fp = fingerprint(self.rule.name, labels) if fp is None else fp
        self.fingerprints.append(fp)
        self.row_of_fp[fp] = row
        self.has_unlabelled = self.has_unlabelled or not labels
        self.windows.active[row] = is_tracked(fp)
        return row

    def drop_silent(self, before: float) -> tuple[np.ndarray, list[str]]:
        """Forget the series not polled since `before` (daemon clock) that no incident
        tracks; returns the rows kept (old numbers, ascending) and the keys dropped."""
        win = self.windows
        n = len(win.keys)
        gone = (win.polled[:n] < before) & ~win.active[:n]
        if not gone.any():
            return np.arange(n), []
        kept = np.flatnonzero(~gone)
        dropped = [win.keys[r] for r in np.flatnonzero(gone)]
        win.keep(kept)
        renumber = {int(old): new for new, old in enumerate(kept)}
        self.fingerprints = [self.fingerprints[r] for r in kept]
        self.row_of_fp = {fp: row for row, fp in enumerate(self.fingerprints)}
        self.missed = {renumber[r]: k for r, k in self.missed.items() if r in renumber}
        warming = np.ones(n, dtype=bool)  # (rows past its end have not been judged: warming)
        warming[:min(n, len(self.warming))] = self.warming[:n]
        self.warming = warming[kept]
        self.last_status = _kept_rows(self.last_status, kept, n, -1)  # (the health's per-series state)
        self.seen_poll = _kept_rows(self.seen_poll, kept, n, 0)
        for key in dropped:
            self._matches.pop(key, None)
        self._selected, self.seeded_keys, self.layout = (None, None, None), None, (None, None, None)
        self.has_unlabelled = any(not labels for labels in win.labels)
        return kept, dropped

    def note_statuses(self, rows: np.ndarray, status: np.ndarray) -> tuple[int, int]:
        """Record a batch's verdicts; returns (series warming up before, after)."""
        n = len(self.windows.keys)
        if len(self.warming) < n:
            grown = np.ones(max(n, 2 * len(self.warming)), dtype=bool)  # new series start warming
            grown[:len(self.warming)] = self.warming
            self.warming = grown
        if len(self.last_status) < len(self.warming):
            grown = np.full(len(self.warming), -1, dtype=np.int8)
            grown[:len(self.last_status)] = self.last_status
            self.last_status = grown
        before = int(self.warming[:n].sum())
        self.warming[rows] = status == Status.WARMING_UP
        self.last_status[rows] = status
        counts = np.bincount(status.astype(np.int64), minlength=len(Status))
        self.last_counts = {s.name.lower(): int(counts[s]) for s in Status}
        return before, int(self.warming[:n].sum())

    def note_present(self, rows: np.ndarray) -> None:
        """A poll brought points of these rows (for the series' no-data state)."""
        self.polls += 1
        n = len(self.windows.keys)
        if len(self.seen_poll) < n:
            grown = np.zeros(max(n, 2 * len(self.seen_poll)), dtype=np.int64)
            grown[:len(self.seen_poll)] = self.seen_poll
            self.seen_poll = grown
        self.seen_poll[rows] = self.polls

    def polls_missed(self) -> np.ndarray:
        """Per row: polls with data for this rule in a row that did not have this series."""
        n = len(self.windows.keys)
        seen = np.zeros(n, dtype=np.int64)
        k = min(n, len(self.seen_poll))
        seen[:k] = self.seen_poll[:k]
        return np.where(seen > 0, self.polls - seen, 0)

    def note_scored(self, now: float, error: str | None = None) -> None:
        """A score call ended at `now`: answered (error None) or failed with `error`."""
        if error is None:
            self.last_evaluated_at, self.last_error = now, None
        else:
            self.last_error, self.last_error_at = error, now

    def note_fit(self, result: str, now: float, *, error: str | None = None, reason: str | None = None) -> None:
        """The trainer's news (ok, restored, skipped, error) for the rule's health."""
        t = self.training
        t["last_result"], t["last_attempt_at"], t["last_reason"] = result, now, reason
        if result in ("ok", "restored"):
            t["fitted_at"], t["last_error"] = now, None
            t["fits"] = t.get("fits", 0) + (result == "ok")
        elif result == "error":
            t["last_error"], t["failures"] = error, t.get("failures", 0) + 1
        elif result == "skipped":
            t["last_result"] = "skipped: no series has enough usable points yet"

    def state(self) -> dict:
        """What the rule is doing, for /metrics and the status page."""
        n = len(self.windows.keys)
        warming = int(self.warming[:n].sum()) if len(self.warming) >= n else n
        return {"series": n, "warming_up": warming, "min_history": getattr(self.detector, "min_history", 0),
                "last_tick": dict(self.last_counts), "model": self.detector.model_info()}

    def select(self, samples: list[Sample], keys: list[str]) -> tuple[list[Sample], list[str]]:
        """The samples (and their keys) of series this rule watches."""
        if keys != self._selected[0]:  # a poll usually brings the series of the last one
            cache = self._matches
            if len(cache) > 2 * len(keys) + 1000:  # keys of series that went (pods): not kept for ever
                cache.clear()
            for s, k in zip(samples, keys):
                if k not in cache:
                    cache[k] = self.rule.series.matches(s.name, dict(s.labels))
            picked = [i for i, k in enumerate(keys) if cache[k]]
            whole = len(picked) == len(keys)
            self._selected = (keys, None if whole else picked, keys if whole else [keys[i] for i in picked])
        _, picked, picked_keys = self._selected
        if picked is None:
            return samples, keys
        return [samples[i] for i in picked], picked_keys  # the same key list each poll


def _kept_rows(per_row: np.ndarray, kept: np.ndarray, n: int, missing) -> np.ndarray:
    """A per-row array after `drop_silent`: the rows `kept` (old numbers), renumbered; rows it
    had not reached yet hold `missing`."""
    full = np.full(n, missing, dtype=per_row.dtype)
    k = min(n, len(per_row))
    full[:k] = per_row[:k]
    return full[kept]
