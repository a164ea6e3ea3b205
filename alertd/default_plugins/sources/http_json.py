"""The `http_json` source: GET or POST a JSON API and map the answer with JMESPath.

One request per poll; each entry of `metrics` turns the answer into series (see
`alertd.sources.json_map`), so one status page can give many series:

    sources:
      psp:
        type: http_json
        every: 30s
        url: https://status.example-psp.com/api/v2/components.json
        bearer_token: ${PSP_TOKEN}
        metrics:
          - name: psp_component_up
            items: components
            value: "status == 'operational'"      # true/false become 1/0
            labels: {component: name}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from alertd import hookimpl
from alertd.base import Source
from alertd.model import Sample
from alertd.sources.http_fetch import HttpFetcher, HttpParams
from alertd.sources.json_map import JsonMetric, check_metrics, extract


class HttpJson(Source):
    """Polls a JSON HTTP API; JMESPath expressions pick values and labels."""

    type_name = "http_json"

    @dataclass(frozen=True, kw_only=True)
    class Params(HttpParams):
        """`metrics` say where the values are; `body` (JSON) is sent with POST."""

        metrics: list[JsonMetric]
        method: Literal["GET", "POST"] = "GET"
        params: dict[str, str] = field(default_factory=dict)
        body: Any = None

        def check(self) -> None:
            self.check_http()
            check_metrics(self.metrics)
            if self.body is not None and self.method == "GET":
                raise ValueError('a body is only sent with POST; add "method: POST" or remove body')

    def __init__(self, params, context):
        super().__init__(params, context)
        self.fetch = HttpFetcher(params, context)

    async def collect(self) -> list[Sample]:
        p = self.params
        kwargs = {"params": p.params} if p.params else {}
        if p.method == "POST" and p.body is not None:
            kwargs["json"] = p.body
        answer = await self.fetch.request(p.method, **kwargs)
        answer.raise_for_status()
        return extract(answer.json(), p.metrics, self.context.now(), f"the answer of {answer.url}")

    async def close(self) -> None:
        await self.fetch.close()


@hookimpl
def register_sources(register):
    register(HttpJson)
