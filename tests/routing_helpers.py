"""A small harness for lifecycle and routing tests: real config, real SQLite, fake clock.

`Shop(config_text)` builds the engine on a store in tmp_path; `feed({"a": 95, ...})` ingests
one cpu sample per host at the fake clock's time (data time follows the daemon clock, like a
live source), then flushes the groups that are due, as the daemon's group timer does once a
tick wakes it; `flush()` runs the notification pipeline alone; `notices()` lists what the outbox
holds as (kind, receiver, sorted hosts) tuples; `restart()` / `reload(text)` build a new
engine (and router) on the same store, as the daemon does.
"""

from __future__ import annotations

import json

from alertd.config.load import load_config
from alertd.engine.tick import Engine
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Sample, make_labels
from alertd.store import Store

BASE = """\
sources:
  app: {type: test_list, every: 5s}
rules:
  - name: cpu_high
    source: app
    series: cpu{host=~".+"}
    detector: {type: test_above, limit: 90}
    flapping: false
receivers:
  team: [{type: test_record}]
  other: [{type: test_record}]
  quiet: [{type: test_record, send_resolved: false}]
routes:
  receiver: team
  group_by: [rule]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
"""


class Shop:
    def __init__(self, write_config, registry, clock, tmp_path, text: str = BASE):
        self.write_config, self.registry, self.clock = write_config, registry, clock
        self.path = tmp_path / "routing.db"
        self.store = Store(self.path)
        self.metrics = Metrics()
        self.engine = self._engine(text)

    def _engine(self, text: str) -> Engine:
        self.config = load_config(self.write_config(text), self.registry, environ={})
        return Engine(self.config, self.registry, self.store, self.clock, self.metrics, get_logger())

    def feed(self, values: dict, metric: str = "cpu", **labels):
        samples = [Sample(metric, make_labels({"host": h, **labels}), self.clock.now(), float(v))
                   for h, v in values.items()]
        result = self.engine.ingest("app", samples)
        self.flush()  # the group timer, woken by the tick (and at each due time in between)
        return result

    def advance(self, seconds: float, values: dict | None = None):
        self.clock.advance(seconds)
        return self.feed(values) if values is not None else None

    def flush(self) -> int:
        return self.engine.router.flush_due(self.clock.now())

    def rows(self) -> list[dict]:
        return self.store.outbox.rows()

    def notices(self) -> list[tuple]:
        out = []
        for r in self.rows():
            note = json.loads(r["payload"])
            hosts = tuple(sorted(f"{i['labels'].get('host')}:{i['state']}" for i in note["incidents"]))
            out.append((r["kind"], r["receiver"], hosts))
        return out

    def restart(self, text: str | None = None) -> Engine:
        """Close and reopen the store and build a new engine, as after a restart."""
        self.store.close()
        self.store = Store(self.path)
        self.engine = self._engine(text or BASE)
        return self.engine

    def reload(self, text: str) -> Engine:
        """A new engine (and router) from a new config on the same store, as a SIGHUP does."""
        self.engine = self._engine(text)
        return self.engine

    def incident(self, host: str):
        matches = [i for i in self.store.incidents.list(include_closed=True) if i.labels.get("host") == host]
        return matches[0] if matches else None

    def close(self):
        self.store.close()
