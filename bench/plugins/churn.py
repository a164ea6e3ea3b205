"""A source for bench/soak_realtime.py: steady series, series that come and go, and a few
that spike now and then (so incidents fire and resolve, and notices go out).

- `queue_depth{queue="q0".."qN"}`: about 10, stamped with the daemon's clock; for
  `spike_for` seconds out of every `spike_every`, the first three queues jump to 500;
- `requests{pod=...}`: `pods` series whose pod names change every `pod_life` seconds (a
  deployment's pods): each name is polled for one life, then silent for ever.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from alertd import Duration, Sample, Source, hookimpl, make_labels


class Churn(Source):
    """Steady, churning and spiking series on the daemon's clock."""

    type_name = "churn"

    @dataclass(frozen=True)
    class Params:
        queues: int = 100
        pods: int = 50
        pod_life: Duration = Duration(120)
        spike_every: Duration = Duration(300)
        spike_for: Duration = Duration(60)

    async def collect(self):
        p, now = self.params, self.context.now()
        spiking = (now % p.spike_every) < p.spike_for
        out = [Sample("queue_depth", make_labels({"queue": f"q{i}"}), now,
                      500.0 if spiking and i < 3 else 10.0 + 2.0 * math.sin(now / 60.0 + i))
               for i in range(p.queues)]
        generation = int(now // p.pod_life)
        out += [Sample("requests", make_labels({"pod": f"web-{generation}-{i}"}), now, 100.0 + i)
                for i in range(p.pods)]
        return out


@hookimpl
def register_sources(register):
    register(Churn)
