"""The `prometheus` source: PromQL instant queries over Prometheus' HTTP API.

Each poll evaluates every query at the daemon's clock time (`/api/v1/query`); vector and
scalar results become samples with their labels. On first start, and for rules added
later, the daemon asks `backfill` for history, answered with range queries
(`/api/v1/query_range`) at the source's interval, so anomaly detectors start warm.

    sources:
      prom:
        type: prometheus
        every: 30s
        url: http://127.0.0.1:9090
        queries:
          orders_per_minute: sum by (region) (rate(shop_orders_total[5m])) * 60
          http_5xx_rate: sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from alertd import hookimpl
from alertd.base import Source, SourceError
from alertd.config.schema import Duration
from alertd.model import Sample, make_labels
from alertd.sources.common import deadline, excerpt
from alertd.sources.http_fetch import HttpFetcher, HttpParams

_MAX_POINTS = 10_000  # Prometheus refuses range queries of more than 11,000 points per series


class Prometheus(Source):
    """Instant PromQL queries; back-fill with range queries. One series per result element."""

    type_name = "prometheus"

    @dataclass(frozen=True, kw_only=True)
    class Params(HttpParams):
        """`queries` maps metric names to PromQL; or one `query` (named by `name`, or by each
        result's `__name__`, or by the source name)."""

        queries: dict[str, str] = field(default_factory=dict)
        query: str | None = None
        name: str | None = None
        step: Duration | None = None  # back-fill resolution; default: the source's `every`

        def check(self) -> None:
            self.check_http()
            if bool(self.queries) == bool(self.query):
                raise ValueError('give either "query" (one PromQL expression) or "queries" '
                                 "(metric name: PromQL), not both and not neither")
            if self.name is not None and not self.query:
                raise ValueError('"name" names the result of "query"; with "queries" the keys are the names')
            for metric, expr in self.queries.items():
                if not str(expr).strip():
                    raise ValueError(f'queries.{metric} is empty; write a PromQL expression')
            if self.step is not None and self.step <= 0:
                raise ValueError("step must be a positive duration such as 60s")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.fetch = HttpFetcher(params, context)
        self.base = params.url.rstrip("/")
        if params.query:
            self.queries = [(params.name, params.query)]
        else:
            self.queries = list(params.queries.items())

    # -- polling ---------------------------------------------------------------------------
    async def collect(self) -> list[Sample]:
        now = self.context.now()
        results = await asyncio.gather(*(self._instant(name, expr, now) for name, expr in self.queries))
        return [s for samples in results for s in samples]

    async def _instant(self, name: str | None, expr: str, now: float) -> list[Sample]:
        data = await self._api("query", expr, {"query": expr, "time": f"{now:.3f}",
                                               "timeout": f"{deadline(self.context):.3f}"})
        kind, result = data.get("resultType"), data.get("result")
        if kind == "scalar":
            return [self._sample(name, {}, result, expr)]
        if kind == "vector":
            return [self._sample(name, item.get("metric", {}), item.get("value"), expr)
                    for item in _series(result, expr)]
        if kind == "matrix":  # a range selector in an instant query: take each series' last point
            return [self._sample(name, item.get("metric", {}), _last(item.get("values"), expr), expr)
                    for item in _series(result, expr) if item.get("values")]
        raise SourceError(f"the query {excerpt(expr, 60)} returns a {kind}, not numbers; "
                          "make it return a vector or a scalar", "bad_payload")

    # -- back-fill -------------------------------------------------------------------------
    async def backfill(self, start: float, end: float) -> list[Sample]:
        """Range queries over [start, end) at `step` (default: the source's interval)."""
        step = float(self.params.step or self.context.interval or 60.0)
        out: list[Sample] = []
        for name, expr in self.queries:
            chunk_start = start
            while chunk_start < end:
                chunk_end = min(end, chunk_start + step * _MAX_POINTS)
                data = await self._api("query_range", expr, {
                    "query": expr, "start": f"{chunk_start:.3f}", "end": f"{chunk_end:.3f}",
                    "step": f"{step:g}"})
                if data.get("resultType") != "matrix":
                    raise SourceError(f"the range query {excerpt(expr, 60)} returned a "
                                      f"{data.get('resultType')}, not a matrix", "bad_payload")
                for item in _series(data.get("result"), expr):
                    labels = item.get("metric", {})
                    points = _list(item.get("values") or [], expr)
                    out.extend(s for s in (self._sample(name, labels, v, expr) for v in points)
                               if not _number_ts(s) or s.ts < end)
                chunk_start = chunk_end + step
        return out

    # -- the API ---------------------------------------------------------------------------
    async def _api(self, endpoint: str, expr: str, form: dict) -> dict:
        answer = await self.fetch.request("POST", f"{self.base}/api/v1/{endpoint}", data=form)
        if answer.status >= 400 and not answer.content_type.startswith("application/json"):
            answer.raise_for_status()
        doc = answer.json()
        if not isinstance(doc, dict) or "status" not in doc:
            raise SourceError(f"{answer.url} answered {excerpt(answer.body)}, which is not a "
                              "Prometheus API response; check the url", "bad_payload")
        if doc["status"] != "success":
            raise SourceError(f"Prometheus at {answer.url} rejected the query {excerpt(expr, 60)}: "
                              f"{doc.get('errorType', 'error')}: {excerpt(doc.get('error', ''), 160)}",
                              "query")
        for warning in doc.get("warnings") or ():
            if self.context.log is not None:
                self.context.log.warning("prometheus_warning", query=expr[:200], warning=str(warning)[:200])
        data = doc.get("data")
        if not isinstance(data, dict):
            raise SourceError(f"{answer.url} answered success without data: {excerpt(answer.body)}",
                              "bad_payload")
        return data

    def _sample(self, name: str | None, metric: dict, point, expr: str) -> Sample:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise SourceError(f"the query {excerpt(expr, 60)} gave a malformed point {excerpt(str(point), 40)}",
                              "bad_payload")
        if not isinstance(metric, dict):
            raise SourceError(f"the query {excerpt(expr, 60)} gave the labels {excerpt(str(metric), 40)}, "
                              "not an object", "bad_payload")
        labels = {k: v for k, v in metric.items() if k != "__name__"}
        metric_name = name or str(metric.get("__name__") or "") or self.context.name
        # an unreadable time or value reaches the engine as it is: it drops and counts it
        return Sample(metric_name, make_labels(labels), _number(point[0]), _number(point[1]))

    async def close(self) -> None:
        await self.fetch.close()


def _number(text):
    """Prometheus sends values as strings ("1.5", "NaN", "+Inf"); NaN/Inf and anything
    unreadable reach the engine as they are, which drops and counts them."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def _number_ts(sample: Sample) -> bool:
    return isinstance(sample.ts, float)


def _series(result, expr: str) -> list[dict]:
    """The series of a vector or matrix result; SourceError when one is not an object."""
    items = _list(result, expr)
    for item in items:
        if not isinstance(item, dict):
            raise SourceError(f"the query {excerpt(expr, 60)} gave {excerpt(str(item), 40)} where a series "
                              'object {"metric": ..., "value": ...} belongs', "bad_payload")
    return items


def _last(values, expr: str):
    return _list(values, expr)[-1]


def _list(result, expr: str) -> list:
    if not isinstance(result, list):
        raise SourceError(f"the query {excerpt(expr, 60)} gave {excerpt(str(result), 40)}, not a list "
                          "of series", "bad_payload")
    return result


@hookimpl
def register_sources(register):
    register(Prometheus)
