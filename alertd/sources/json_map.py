"""JSON documents -> samples, with JMESPath (for `http_json` and `command`).

A `JsonMetric` names one metric and says where its values are: `items` (optional) selects a
list of objects, one series each; `value`, `labels` and `timestamp` are JMESPath
expressions evaluated on each item (or on the whole document when there is no `items`).

    metrics:
      - name: psp_success_ratio
        items: providers[?enabled]
        value: stats.success_ratio
        labels: {provider: name, region: location.region}
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import jmespath
import jmespath.exceptions

from ..base import SourceError
from ..model import Sample, make_labels
from .common import excerpt, parse_timestamp, to_value


@functools.lru_cache(maxsize=1024)
def compile_path(expression: str):
    """A compiled JMESPath expression (cached); raises ValueError with a readable message."""
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        first = str(exc).splitlines()[0]
        raise ValueError(f'"{expression}" is not a JMESPath expression ({first}); see '
                         "https://jmespath.org for the syntax") from None


@dataclass(frozen=True)
class JsonMetric:
    """One metric read from a JSON document: its name and JMESPath expressions."""

    name: str
    value: str
    items: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    timestamp: str | None = None

    def check(self) -> None:
        for key, expr in (("value", self.value), ("items", self.items), ("timestamp", self.timestamp),
                          *((f"labels.{k}", v) for k, v in self.labels.items())):
            if expr is not None:
                try:
                    compile_path(expr)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None


def check_metrics(metrics) -> None:
    """Params.check helper: a source needs at least one metric."""
    if not metrics:
        raise ValueError('metrics is empty; add at least one {name: ..., value: ...} entry')


def _label(raw) -> str:
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, (int, float)):
        return f"{raw:g}" if isinstance(raw, float) else str(raw)
    return json.dumps(raw, separators=(",", ":"), sort_keys=True)


def _search(expression: str, data, where: str):
    try:
        return compile_path(expression).search(data)
    except jmespath.exceptions.JMESPathError as exc:
        raise SourceError(f"{where} {expression!r} failed on the answer: "
                          f"{str(exc).splitlines()[0]}", "bad_payload") from None


def extract(document, metrics, now: float, what: str = "the answer") -> list[Sample]:
    """Samples of every metric in `document`; SourceError when nothing at all was found.

    Items whose value is missing (null) are left out; values that are not numbers are kept
    as they are for the engine to drop and count.
    """
    out: list[Sample] = []
    misses: list[str] = []
    for i, m in enumerate(metrics):
        if m.items is None:
            items = [document]
        else:
            items = _search(m.items, document, f"metrics[{i}].items")
            if items is None:
                misses.append(f"metrics[{i}].items {m.items!r} found nothing")
                continue
            if not isinstance(items, list):
                raise SourceError(f"metrics[{i}].items {m.items!r} gave {excerpt(json.dumps(items), 40)}, "
                                  "not a list; select a list of objects (e.g. data[*])", "bad_payload")
        found = 0
        for item in items:
            raw = _search(m.value, item, f"metrics[{i}].value")
            if raw is None:
                continue
            labels = {k: _label(_search(expr, item, f"metrics[{i}].labels.{k}"))
                      for k, expr in m.labels.items()}
            ts = now
            if m.timestamp is not None:
                raw_ts = _search(m.timestamp, item, f"metrics[{i}].timestamp")
                try:
                    ts = parse_timestamp(raw_ts)
                except ValueError as exc:
                    raise SourceError(f"metrics[{i}].timestamp {m.timestamp!r}: {exc}", "bad_payload") from None
            out.append(Sample(m.name, make_labels(labels), ts, to_value(raw)))
            found += 1
        if not found:
            misses.append(f"metrics[{i}].value {m.value!r} found nothing")
    if not out and misses:
        raise SourceError(f"no values in {what}: {'; '.join(misses)} "
                          f"in {excerpt(json.dumps(document), 100)}", "empty")
    return out
