"""The `logfile` source: tail a log file and turn regex matches into per-poll counts or values.

Each entry of `metrics` has a regular expression; its named groups become labels, except the
one named by `value`, whose number is aggregated (`sum`, `avg`, `min`, `max`, `last`).
Without `value`, the metric counts matching lines. Counts are emitted as 0 for label sets
seen before, so a quiet interval reads 0, not "no data".

    sources:
      nginx:
        type: logfile
        every: 1m
        path: /var/log/nginx/access.log
        metrics:
          - name: http_5xx_responses
            regex: '" (?P<status>5\\d\\d) .* upstream=(?P<upstream>[^ ]+)'
          - name: upstream_response_seconds
            regex: 'upstream=(?P<upstream>[^ ]+) .*urt=(?P<seconds>[0-9.]+)'
            value: seconds
            aggregate: avg

The file is followed across rotation and truncation (`alertd.sources.follow`); the read position is
committed in the store with the samples and only then moved on in memory, so neither a
restart nor a tick that fails (store full or locked) re-reads or skips lines. A path that is
a symbolic link is refused unless `follow_symlinks: true` (a link put where the log was must
not make alertd read another file). Lines that are not UTF-8 are counted and logged once per
poll, and still matched with the bad bytes replaced.

Regexes run on RE2 (`alertd.regex`): linear time whatever the line, Python's syntax without
backreferences and lookaround (refused, with one sentence, when the config is read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from alertd import hookimpl
from alertd import regex as re2
from alertd.base import Source, SourceError
from alertd.model import Sample, make_labels
from alertd.sources.common import count, excerpt
from alertd.sources.follow import Position, SymlinkRefused, Tail

Aggregate = Literal["count", "sum", "avg", "min", "max", "last"]


@dataclass(frozen=True)
class LogMetric:
    """One metric from matching lines: a regex, an optional value group and an aggregate."""

    name: str
    regex: str
    value: str | None = None
    aggregate: Aggregate | None = None  # default: count without value, sum with one

    def check(self) -> None:
        rx = re2.compile(self.regex)  # RegexError (a ValueError): one sentence, at the line
        if self.value is not None and self.value not in rx.groupindex:
            raise ValueError(f'value "{self.value}" is not a named group of the regex; write '
                             f"(?P<{self.value}>[0-9.]+) in it")
        if self.value is None and self.aggregate not in (None, "count"):
            raise ValueError(f'aggregate "{self.aggregate}" needs "value", the named group holding the number')
        if self.value is not None and self.aggregate == "count":
            raise ValueError('aggregate "count" counts lines; remove "value" or choose sum, avg, min, max or last')


class _Agg:
    """Running count/sum/min/max/last of one label set during one poll."""

    __slots__ = ("n", "total", "low", "high", "last")

    def __init__(self):
        self.n, self.total, self.low, self.high, self.last = 0, 0.0, float("inf"), float("-inf"), 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        self.low = min(self.low, x)
        self.high = max(self.high, x)
        self.last = x

    def result(self, how: str) -> float:
        return {"count": self.n, "sum": self.total, "avg": self.total / self.n if self.n else 0.0,
                "min": self.low, "max": self.high, "last": self.last}[how]


class LogFile(Source):
    """Tails one log file; counts or aggregates regex matches per poll."""

    type_name = "logfile"
    empty_ok = True  # an interval without matching lines is normal

    @dataclass(frozen=True)
    class Params:
        """`start_at: end` skips what the file holds the first time it is seen (as tail -f)."""

        path: str
        metrics: list[LogMetric]
        start_at: Literal["end", "beginning"] = "end"
        max_read: int = 64 << 20
        max_series: int = 1000
        follow_symlinks: bool = False

        def check(self) -> None:
            if not self.metrics:
                raise ValueError("metrics is empty; add at least one {name: ..., regex: ...} entry")
            if self.max_read < 4096:
                raise ValueError("max_read must be at least 4096 bytes")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.tail = Tail(params.path, params.start_at, params.max_read, follow_symlinks=params.follow_symlinks)
        self.rules = [(m.name, m.value, m.aggregate or ("sum" if m.value else "count")) for m in params.metrics]
        # per metric: the regex's search, index of the value group in its groups, (index, name)
        # of label groups, and a cache from group tuples to labels (a match costs no dict or sort)
        self._matchers = []
        for m in params.metrics:
            rx = re2.compile(m.regex)
            names = sorted((j - 1, n) for n, j in rx.groupindex.items() if n != m.value)
            value_at = rx.groupindex[m.value] - 1 if m.value else None
            self._matchers.append((rx.search, value_at, names, {}))
        # with several metrics, one pass tells which of them match a line at all
        self._any = re2.RegexSet([m.regex for m in params.metrics]).matching if len(params.metrics) > 1 else None
        self.seen: list[set] = [set() for _ in self.rules]  # label sets that report 0 when quiet
        for i, m in enumerate(params.metrics):
            if self.rules[i][2] == "count" and not self._matchers[i][2]:
                self.seen[i].add(())
        self._pending: tuple | None = None
        self._kv = f"logfile:{context.name}"

    async def start(self) -> None:
        store = self.context.store
        saved = store.get_kv(self._kv) if store is not None else None
        if saved and saved.get("path") == self.params.path:
            self.tail.position = Position.from_dict(saved)
            for i, (name, *_rest) in enumerate(self.rules):
                self.seen[i].update(tuple(map(tuple, ls)) for ls in saved.get("seen", {}).get(name, ()))

    async def collect(self) -> list[Sample]:
        # reads from the committed position and moves nothing: the position moves on in
        # `committed()`, once the tick that stores these samples has committed
        run = self.context.run_blocking
        chunk, found = await run(self._read_and_match) if run else self._read_and_match()
        self._pending = (chunk.position, [set(s) for s in self.seen])
        now = self.context.now()
        out = []
        for i, (name, _, how) in enumerate(self.rules):
            for labels in self.seen[i] - found[i].keys() if how == "count" else ():
                out.append(Sample(name, labels, now, 0.0))
            for labels, agg in found[i].items():
                out.append(Sample(name, labels, now, float(agg.result(how))))
        return out

    def commit(self) -> None:
        if self._pending is None or self.context.store is None:
            return
        position, seen = self._pending
        self.context.store.set_kv(self._kv, {
            "path": self.params.path, **position.as_dict(),
            "seen": {name: sorted(seen[i]) for i, (name, *_r) in enumerate(self.rules) if seen[i]}})

    def committed(self) -> None:
        if self._pending is not None:
            self.tail.advance(self._pending[0])  # the next poll goes on from here
            self._pending = None

    async def close(self) -> None:
        self.tail.close()

    # -- in a worker thread ----------------------------------------------------------------
    def _read_and_match(self):
        try:
            chunk = self.tail.read()
        except FileNotFoundError:
            raise SourceError(f"the log file {self.params.path} does not exist; check path", "missing") from None
        except SymlinkRefused as exc:
            raise SourceError(str(exc), "symlink") from None
        except OSError as exc:
            raise SourceError(f"cannot read the log file {self.params.path}: {exc.strerror or exc}",
                              "read") from None
        for event in chunk.events:
            if event != "lost":
                count(self.context, "logfile_reopens", self.context.name, event)
        if "lost" in chunk.events and self.context.log is not None:
            self.context.log.warning("logfile_rotated_unseen", source=self.context.name, path=self.params.path,
                                     error="the file was rotated while alertd was stopped and the old "
                                     "file was not found beside it; its unread lines are skipped")
        return chunk, self.match(chunk.data)

    def match(self, blocks: list[bytes]) -> list[dict]:
        """Per metric, {labels: _Agg} over the whole lines in `blocks`."""
        found: list[dict] = [{} for _ in self.rules]
        matched = unmatched = bad = dropped = 0
        first_bad = None
        matchers, which, every = self._matchers, self._any, range(len(self._matchers))
        for block in blocks:
            if not block:
                continue
            try:
                if not block.isascii():
                    block.decode("utf-8")  # RE2 wants UTF-8: check once per block
                lines = block.split(b"\n")
            except UnicodeDecodeError:
                lines, n_bad, first = _decode_lines(block)
                bad += n_bad
                first_bad = first_bad or first
            if lines and lines[-1] == b"":
                lines.pop()
            for line in lines:
                hit = False
                for i in which(line) if which is not None else every:
                    search, value_at, names, cache = matchers[i]
                    groups = search(line)
                    if groups is None:
                        continue
                    hit = True
                    if value_at is not None:
                        try:
                            x = float(groups[value_at])
                        except (TypeError, ValueError):
                            continue
                    else:
                        x = 1.0
                    labels = cache.get(groups if value_at is None else groups[:value_at] + groups[value_at + 1:])
                    if labels is None:
                        labels = self._labels(i, groups)
                    agg = found[i].get(labels)
                    if agg is None:
                        if labels not in self.seen[i] and len(self.seen[i]) >= self.params.max_series:
                            dropped += 1
                            continue
                        agg = found[i][labels] = _Agg()
                        if self.rules[i][2] == "count":
                            self.seen[i].add(labels)
                    agg.add(x)
                if hit:
                    matched += 1
                else:
                    unmatched += 1
        name = self.context.name
        count(self.context, "logfile_lines", name, "matched", amount=matched)
        count(self.context, "logfile_lines", name, "unmatched", amount=unmatched)
        count(self.context, "logfile_lines", name, "undecodable", amount=bad)
        if bad and self.context.log is not None:
            self.context.log.warning("logfile_undecodable_lines", source=name, path=self.params.path,
                                     count=bad, excerpt=excerpt(first_bad, 80),
                                     error="lines that are not UTF-8 were matched with the bad bytes replaced")
        if dropped and self.context.log is not None:
            self.context.log.warning("logfile_too_many_series", source=name, dropped=dropped,
                                     error=f"matches with new label sets beyond max_series "
                                     f"({self.params.max_series}) were ignored; use fewer label groups")
        return found

    def _labels(self, i: int, groups: tuple):
        """Labels of a match from its groups (named ones only, the value group left out)."""
        search, value_at, names, cache = self._matchers[i]
        labels = make_labels({name: groups[j].decode("utf-8", "replace") for j, name in names
                              if groups[j] is not None})
        key = groups if value_at is None else groups[:value_at] + groups[value_at + 1:]
        if len(cache) < 100_000:
            cache[key] = labels
        return labels


def _decode_lines(block: bytes) -> tuple[list[bytes], int, bytes | None]:
    """Lines of a block with some non-UTF-8 bytes, those replaced by U+FFFD: (lines, how many
    were bad, the first bad one as it was)."""
    lines, bad, first = [], 0, None
    for raw in block.split(b"\n"):
        try:
            raw.decode("utf-8")
            lines.append(raw)
        except UnicodeDecodeError:
            bad += 1
            first = first or raw
            lines.append(raw.decode("utf-8", errors="replace").encode("utf-8"))
    return lines, bad, first


@hookimpl
def register_sources(register):
    register(LogFile)
