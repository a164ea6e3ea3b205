"""Property: whatever verdicts arrive, in whatever order and timing, with acks, manual
resolves, silences and failed polls mixed in,

- there is at most one open incident per fingerprint (and the daemon's view matches the store);
- every incident that fired was notified, or is recorded as suppressed with a reason.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from routing_helpers import Shop

from alertd.clock import FakeClock
from alertd.incidents.actions import IncidentActions
from alertd.routing.silences import SilenceService

HOSTS = ("a", "b", "c")
CONFIG = """\
sources:
  app: {type: test_list, every: 5s}
rules:
  - name: cpu_high
    source: app
    series: cpu{host=~".+"}
    detector: {type: test_above, limit: 90}
    for: FOR
    clear_for: CLEAR
    no_data: NODATA
    flapping: {window: 11, low: 10, high: 25}
receivers:
  team: [{type: test_record}]
routes:
  receiver: team
  group_by: [GROUP]
  group_wait: WAIT
  group_interval: 1m
  repeat_interval: 10m
"""

step = st.one_of(
    st.tuples(st.just("feed"), st.dictionaries(st.sampled_from(HOSTS), st.booleans(), min_size=1),
              st.integers(0, 90)),
    st.tuples(st.just("fail"), st.none(), st.integers(1, 60)),
    st.tuples(st.just("ack"), st.sampled_from(HOSTS), st.just(0)),
    st.tuples(st.just("resolve"), st.sampled_from(HOSTS), st.just(0)),
    st.tuples(st.just("silence"), st.sampled_from(HOSTS), st.integers(60, 900)),
    st.tuples(st.just("wait"), st.none(), st.integers(1, 300)),
)


def _write(tmp: Path):
    def write(text, name="alertd.yaml"):
        path = tmp / name
        path.write_text(text)
        return path
    return write


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=40),
       for_=st.sampled_from(["0s", "20s"]), clear=st.sampled_from(["0s", "15s"]),
       nodata=st.sampled_from(["alerting", "ok", "keep_state"]), group=st.sampled_from(["rule", "'...'"]),
       wait=st.sampled_from(["0s", "30s"]))
def test_one_open_incident_per_fingerprint_and_every_fired_incident_accounted_for(
        registry, steps, for_, clear, nodata, group, wait):
    text = (CONFIG.replace("FOR", for_).replace("CLEAR", clear).replace("NODATA", nodata)
            .replace("GROUP", group).replace("WAIT", wait))
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock(1_750_000_000.0)
        shop = Shop(_write(Path(tmp)), registry, clock, Path(tmp), text)
        actions, silences = IncidentActions(shop.store, clock), SilenceService(shop.store, clock)
        try:
            for op, arg, n in steps:
                if op == "feed":
                    shop.advance(n + 1, {h: 95 if bad else 10 for h, bad in arg.items()})
                elif op == "fail":
                    clock.advance(n)
                    shop.engine.source_failed("app", "timeout")
                elif op in ("ack", "resolve"):
                    incident = next((i for i in shop.store.incidents.open() if i.labels.get("host") == arg), None)
                    if incident is not None:
                        getattr(actions, "acknowledge" if op == "ack" else "resolve")(incident.id, by="prop")
                elif op == "silence":
                    silences.add([f'host="{arg}"'], duration=n)
                else:
                    clock.advance(n)
                    shop.flush()
                check_one_open(shop)
            for _ in range(3):  # let every group timer run out
                clock.advance(120)
                shop.flush()
            check_one_open(shop)
            for incident in shop.store.incidents.list(include_closed=True, limit=None):
                if incident.fired_at is not None:
                    assert incident.notified_at is not None or incident.suppressed, incident
                    events = {e.event for e in shop.store.history.of(incident.id)}
                    assert "notified" in events or "suppressed" in events
        finally:
            shop.close()


def check_one_open(shop):
    open_ = shop.store.incidents.open()
    counts = Counter(i.fingerprint for i in open_)
    assert max(counts.values(), default=0) <= 1
    shop.engine.alerting.sync()
    assert {fp for fp, i in shop.engine.tracker.open.items()} == set(counts)
