"""The `csv_replay` source: replay a `timestamp,value[,labels...]` CSV at a chosen speed.

For demos, backtests and load tests. Data time runs `speed` times faster than the daemon's
clock from the moment the replay starts; each poll emits the rows whose data time has
come. With `timestamps: shift` (the default) the first row is moved to the start of the
replay and all rows keep their spacing; `original` keeps the file's timestamps. With `loop`
the file starts over when it ends, later by one span each time so time keeps increasing.

A header line names the columns (`timestamp,value,region`): columns after the value are
labels. Without a header a file has exactly two columns. Timestamps are epoch seconds or
milliseconds, or ISO 8601 / `2014-04-01 00:00:00` (taken as UTC), rows in time order. Where
the replay stands survives a restart (kept in the store).

    sources:
      nab:
        type: csv_replay
        every: 1s
        path: ../shared/data/nab-dev/data/realTraffic/occupancy_6005.csv
        name: occupancy
        speed: 300
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alertd import hookimpl
from alertd.base import Source, SourceError
from alertd.model import Sample, make_labels
from alertd.sources.common import excerpt, parse_timestamp


class CsvReplay(Source):
    """Replays a CSV of timestamped values at `speed` times real time."""

    type_name = "csv_replay"
    future_tolerance = None  # replayed at speed, its timestamps run ahead of the clock

    @dataclass(frozen=True)
    class Params:
        """`name` is the metric name (default: the source name)."""

        path: str
        name: str | None = None
        speed: float = 1.0
        loop: bool = False
        timestamps: Literal["shift", "original"] = "shift"
        max_rows_per_poll: int = 100_000

        def check(self) -> None:
            if not (self.speed > 0 and math.isfinite(self.speed)):
                raise ValueError(f"speed must be above 0 (1 is real time), got {self.speed:g}")
            if self.max_rows_per_poll < 1:
                raise ValueError("max_rows_per_poll must be at least 1")

    @classmethod
    def data_interval(cls, params, every: float | None) -> float | None:
        """The file's own spacing (the median gap between a series' rows among the first
        rows): each poll brings every row whose time has come, so consecutive points of a
        series are that far apart in data time whatever `every` and `speed` are. What a
        poll covers (`every` x `speed`) when the file cannot be read now."""
        spacing = _file_spacing(params.path)
        if spacing is not None:
            return spacing
        return every * params.speed if every else None

    def __init__(self, params, context):
        super().__init__(params, context)
        self._kv = f"csv_replay:{context.name}"
        self._file = None
        self._reader = None
        self._columns: list[str] = []
        self._next: tuple[float, object, tuple] | None = None
        self._line = 0
        self.first_ts: float | None = None
        self.span = 0.0
        self.anchor: float | None = None  # clock time at which the replay started
        self.round = 0  # passes through the file done (with loop)
        self.rows_done = 0  # data rows of this pass already sent
        self._skip = 0

    # -- the file --------------------------------------------------------------------------
    def _open(self) -> None:
        path = Path(self.params.path)
        try:
            self._file = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
        except OSError as exc:
            raise SourceError(f"cannot open the CSV file {path}: {exc.strerror or exc}", "missing") from None
        self._reader = csv.reader(self._file)
        self._line = 0
        self.rows_done = 0
        first = self._row()
        if first is None:
            raise SourceError(f"the CSV file {path} is empty", "bad_payload")
        if _is_header(first):
            self._columns = [c.strip() for c in first]
            if len(self._columns) < 2:
                raise SourceError(f"the header of {path} must name at least timestamp and value", "bad_payload")
            first = self._row()
        elif len(first) != 2:
            raise SourceError(f"line 1 of {path} has {len(first)} columns but no header names them; "
                              "add a header line like timestamp,value,region", "bad_payload")
        else:
            self._columns = ["timestamp", "value"]
        self._next = self._parse(first) if first is not None else None
        if self._next is None:
            raise SourceError(f"the CSV file {path} has no data rows", "bad_payload")
        if self.first_ts is None:
            self.first_ts = self._next[0]

    def _row(self):
        try:
            for row in self._reader:
                self._line += 1
                if row and any(cell.strip() for cell in row):
                    ",".join(row).encode()  # bytes that are not UTF-8 are surrogates here
                    return row
        except (UnicodeEncodeError, csv.Error) as exc:
            reason = "is not UTF-8" if isinstance(exc, UnicodeEncodeError) else f"is not CSV ({exc})"
            raise SourceError(f"line {self._line + (not isinstance(exc, UnicodeEncodeError))} of "
                              f"{self.params.path} {reason}; fix the file", "bad_payload") from None
        return None

    def _parse(self, row) -> tuple[float, object, tuple]:
        if len(row) != len(self._columns):
            raise SourceError(f"line {self._line} of {self.params.path} has {len(row)} columns, the header "
                              f"{len(self._columns)}: {excerpt(','.join(row), 60)}", "bad_payload")
        try:
            ts = parse_timestamp(row[0])
        except ValueError as exc:
            raise SourceError(f"line {self._line} of {self.params.path}: {exc}", "bad_payload") from None
        try:
            value = float(row[1])
        except ValueError:
            value = row[1]  # the engine drops it and counts it as not a number
        labels = make_labels(dict(zip(self._columns[2:], (c.strip() for c in row[2:]))))
        return ts, value, labels

    def _rows_until(self, data_now: float, limit: int):
        """The next rows with file time <= data_now (in file order), at most `limit`."""
        out = []
        while self._next is not None and len(out) < limit and self._next[0] <= data_now:
            out.append(self._next)
            self._advance()
        return out

    def _advance(self) -> None:
        row = self._row()
        self._next = self._parse(row) if row is not None else None
        self.rows_done += 1

    # -- polling ---------------------------------------------------------------------------
    async def start(self) -> None:
        store = self.context.store
        saved = store.get_kv(self._kv) if store is not None else None
        if saved and saved.get("path") == self.params.path and saved.get("speed") == self.params.speed:
            self.anchor = float(saved["anchor"])
            self.round, self._skip = int(saved.get("round", 0)), int(saved.get("rows_done", 0))

    async def collect(self) -> list[Sample]:
        now = self.context.now()
        run = self.context.run_blocking
        return await run(self._collect, now) if run else self._collect(now)

    def commit(self) -> None:
        if self.context.store is not None and self.anchor is not None:
            self.context.store.set_kv(self._kv, {"path": self.params.path, "speed": self.params.speed,
                                                 "anchor": self.anchor, "round": self.round,
                                                 "rows_done": self.rows_done})

    def _collect(self, now: float) -> list[Sample]:
        if self._reader is None:
            try:
                self._open()
                self.span = self._span()
            except SourceError:  # the next poll opens the file again
                self._reader = None
                if self._file is not None:
                    self._file.close()
                raise
            while self._skip > 0 and self._next is not None:  # rows sent before a restart
                self._advance()
                self._skip -= 1
        if self.anchor is None:
            self.anchor = now
        elapsed = (now - self.anchor) * self.params.speed
        out: list[Sample] = []
        limit = self.params.max_rows_per_poll
        while len(out) < limit:
            round_, offset = divmod(elapsed, self.span) if self.params.loop and self.span else (0, elapsed)
            if round_ > self.round:  # the file ended in an earlier round: send the rest, then rewind
                out.extend(self._samples(self._rows_until(math.inf, limit - len(out)), self.round))
                if self._next is not None:
                    break
                self._rewind()
                continue
            out.extend(self._samples(self._rows_until(self.first_ts + offset, limit - len(out)), self.round))
            break
        return out

    def _samples(self, rows, round_: int) -> list[Sample]:
        if not rows:
            return []
        name = self.params.name or self.context.name
        shift = round_ * self.span
        if self.params.timestamps == "shift":
            shift += self.anchor - self.first_ts
        return [Sample(name, labels, ts + shift, value) for ts, value, labels in rows]

    def _span(self) -> float:
        """Length of one pass through the file, plus one average step (for `loop`)."""
        if not self.params.loop:
            return 0.0
        stamps = []  # of the rows that parse: the replay itself reports the others by line
        with Path(self.params.path).open(newline="", encoding="utf-8-sig", errors="replace") as f:
            try:
                for row in csv.reader(f):
                    if row and not _is_header(row):
                        stamps.append(parse_timestamp(row[0]))
            except csv.Error:
                pass
        if len(stamps) < 2:
            return 1.0
        return (stamps[-1] - stamps[0]) * len(stamps) / (len(stamps) - 1)

    def _rewind(self) -> None:
        self._file.close()
        self._reader = None
        self._open()
        self.round += 1

    async def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _file_spacing(path: str, rows: int = 200) -> float | None:
    """The median gap between consecutive rows of one series among the file's first `rows`
    data rows (series told apart by their label columns); None if there is none to read."""
    last: dict[tuple, float] = {}
    gaps: list[float] = []
    try:
        with Path(path).open(newline="", encoding="utf-8-sig", errors="replace") as f:
            for i, row in enumerate(csv.reader(f)):
                if i > rows or len(row) < 2:
                    break
                try:
                    ts = parse_timestamp(row[0])
                except ValueError:
                    continue  # the header
                key = tuple(c.strip() for c in row[2:])
                if key in last and ts > last[key]:
                    gaps.append(ts - last[key])
                last[key] = ts
    except (OSError, csv.Error):
        return None
    return statistics.median(gaps) if gaps else None


def _is_header(row) -> bool:
    try:
        parse_timestamp(row[0])
        float(row[1])
        return False
    except (ValueError, IndexError):
        return True


@hookimpl
def register_sources(register):
    register(CsvReplay)
