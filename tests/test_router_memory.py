"""The router keeps incident objects only while a group may still flush them.

Found by the real-time soak (bench/soak_realtime.py): the router remembered every incident
the state machine saved, and only a group flush let one go; an incident that opened pending
and resolved before its `for` (a blip) never joins a group, so each blip stayed in memory
for the daemon's lifetime (about 20 a minute in the soak's PyOD rule, RSS creeping).
"""

from __future__ import annotations

import asyncio

from configs import config_text, rule

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels


def cpu(host: str, ts: float, value: float) -> Sample:
    return Sample("cpu", make_labels({"host": host}), ts, value)


def test_blips_shorter_than_for_leave_no_incident_in_memory(write_config, registry, tmp_path, clock):
    config = load_config(write_config(config_text(
        sources={"app": {"type": "test_list", "every": "1m"}}, rules=[rule("cpu_high", limit=90, **{"for": "5m"})])),
        registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        src, seen = d.sources["app"], []
        for i in range(40):  # each minute another host blips for one poll: pending, then resolved
            clock.advance(60)
            src.pending = [cpu(f"h{j}", clock.now(), 99.0 if j == i % 20 else 1.0) for j in range(20)]
            src.pending.append(cpu("steady", clock.now(), 99.0))  # this one stays up: it fires after 5m
            await d.poll("app")
            seen.append(len(d.engine.router._incidents))
        states = [(dict(i.labels)["host"], i.state) for i in d.store.incidents.list(include_closed=True)]
        remembered = {dict(i.labels)["host"]: i.state for i in d.engine.router._incidents.values()}
        await d.drain()
        return seen, states, remembered

    seen, states, remembered = asyncio.run(main())
    assert sum(s == "resolved" for _, s in states) == 39 and ("steady", "firing") in states
    # the router holds the open ones (the firing one a group will flush, the blip of this minute)
    assert remembered == {"steady": "firing", "h19": "pending"}
    assert max(seen) <= 2  # before: one more each minute, 40 at the end
