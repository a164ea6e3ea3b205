"""Delivery: retries, Retry-After, permanent errors, deadlines, the ledger, rate-limit digests,
and the receiver-failing meta-incident, against a real local HTTP server (the slack notifier)."""

from __future__ import annotations

import asyncio
import sys

import pytest
from servers import http_server  # noqa: F401

from alertd.base import PluginContext
from alertd.config.load import load_config
from alertd.delivery.worker import OutboxWorker
from alertd.log import get_logger
from alertd.metrics import Metrics
from alertd.model import Incident, Notification
from alertd.store import Store

CONFIG = """\
receivers:
  oncall:
    deadline: 10m
    fallback: backup
    failing_after: 3
    RATE
    integrations:
      - {type: slack, webhook_url: "URL/hook"}
  backup: [{type: test_record}]
routes:
  receiver: oncall
"""


@pytest.fixture
def setup(write_config, registry, clock, tmp_path, http_server):  # noqa: F811
    built = {}

    def make(rate: str = ""):
        config = load_config(write_config(CONFIG.replace("URL", http_server.url).replace("RATE", rate)),
                             registry, environ={})
        store = Store(tmp_path / "d.db")
        ctx = PluginContext("oncall", clock.now)
        notifiers = {("oncall", 0): registry.get("notifier", "slack")(config.receivers["oncall"][0].params, ctx),
                     ("backup", 0): registry.get("notifier", "test_record")(config.receivers["backup"][0].params, ctx)}
        sent = sys.modules[type(notifiers[("backup", 0)]).__module__].SENT
        sent.clear()
        dispatcher = OutboxWorker(store, notifiers, clock, Metrics(), get_logger(), config=config)
        built.update(store=store, dispatcher=dispatcher, notifiers=notifiers)
        return store, dispatcher, sent

    yield make
    if built:
        asyncio.run(built["notifiers"][("oncall", 0)].close())
        built["store"].close()


def note(n: int, kind: str = "firing", receiver: str = "oncall") -> Notification:
    incident = Incident(f"fp{n}", "cpu_high", {"host": f"h{n}"}, "firing", "warning", started_at=0.0,
                        fired_at=0.0, id=n, reason=f"cpu 9{n}")
    return Notification(receiver, kind, f"g{n}:{kind}:1", (incident,), f"[FIRING] cpu_high host=h{n}",
                        "", 0.0)


def once(dispatcher) -> int:
    return asyncio.run(dispatcher.run_once())


def ledger(store, row_id):
    return [(a.attempt, a.outcome) for a in store.ledger.of(row_id)]


def test_retries_with_growing_backoff_then_sends_and_records_every_attempt(setup, clock, http_server):  # noqa: F811
    store, dispatcher, _ = setup()
    (row_id,) = store.outbox.enqueue(note(1), [(0, "slack")], clock.now(), deadline=600)
    http_server.respond(503, body="busy")
    http_server.respond(502, body="bad gateway")
    assert once(dispatcher) == 0
    first = store.outbox.rows()[0]["next_attempt_at"] - clock.now()
    clock.advance(first)
    assert once(dispatcher) == 0
    second = store.outbox.rows()[0]["next_attempt_at"] - clock.now()
    assert 1 <= first <= 2 and 2 <= second <= 4  # base 2s, doubling, full jitter on the upper half
    clock.advance(second)
    assert once(dispatcher) == 1
    assert ledger(store, row_id) == [(1, "retry"), (2, "retry"), (3, "sent")]
    assert store.ledger.of(row_id)[0].error == "slack webhook answered 503: busy"
    assert len(http_server.requests) == 3 and store.outbox.rows()[0]["status"] == "sent"
    assert once(dispatcher) == 0 and len(http_server.requests) == 3  # never twice


def test_retry_after_holds_the_whole_integration(setup, clock, http_server):  # noqa: F811
    store, dispatcher, _ = setup()
    for n in (1, 2):
        store.outbox.enqueue(note(n), [(0, "slack")], clock.now(), deadline=600)
    http_server.respond(429, {"Retry-After": "120"}, "slow down")
    assert once(dispatcher) == 0
    assert len(http_server.requests) == 1  # the second row was not tried against a 429
    assert [r["next_attempt_at"] - clock.now() >= 120 for r in store.outbox.rows()] == [True, True]
    clock.advance(119)
    assert once(dispatcher) == 0 and len(http_server.requests) == 1
    clock.advance(1)
    assert once(dispatcher) == 2


def test_notices_of_different_groups_go_out_together_after_a_first_one_alone(setup, clock, http_server):  # noqa: F811
    store, dispatcher, _ = setup()
    for n in (1, 2, 3, 4):
        store.outbox.enqueue(note(n), [(0, "slack")], clock.now(), deadline=600)
    http_server.hold(after=1)  # the first is answered; the others wait until all three are in

    async def main():
        delivery = asyncio.create_task(dispatcher.run_once())
        try:
            await asyncio.to_thread(http_server.wait_for, 4, 10.0)  # sent one by one: times out
        finally:
            http_server.release()
        return await delivery

    assert asyncio.run(main()) == 4
    assert {r["status"] for r in store.outbox.rows()} == {"sent"}


def test_a_4xx_is_permanent_and_raises_the_receiver_failing_incident(setup, clock, http_server):  # noqa: F811
    store, dispatcher, backup = setup()
    (row_id,) = store.outbox.enqueue(note(1), [(0, "slack")], clock.now(), deadline=600)
    http_server.respond(404, body="no_service")
    assert once(dispatcher) == 0
    row = store.outbox.rows()[0]
    assert row["status"] == "failed" and row["last_error"] == "slack webhook answered 404: no_service"
    assert ledger(store, row_id) == [(1, "failed")]
    clock.advance(1)
    assert once(dispatcher) == 1  # the fallback's notice about the failing receiver
    assert len(http_server.requests) == 1
    (meta,) = [i for i in store.incidents.open() if i.rule == "alertd_receiver_failing"]
    assert meta.labels == {"receiver": "oncall", "integration": "0", "notifier": "slack"}
    assert [(n.kind, n.receiver, n.incidents[0].rule) for n in backup] == [("firing", "backup", "alertd_receiver_failing")]


def test_deadline_gives_up_then_recovery_resolves_the_meta_incident(setup, clock, http_server):  # noqa: F811
    store, dispatcher, backup = setup()
    http_server.default = (500, {}, "down")
    (row_id,) = store.outbox.enqueue(note(1), [(0, "slack")], clock.now(), deadline=600)
    for _ in range(40):
        once(dispatcher)
        clock.advance(30)
    row = store.outbox.get(row_id)
    status = store.outbox.rows()[0]
    assert status["status"] == "failed" and status["last_error"].startswith("gave up after")
    outcomes = [o for _, o in ledger(store, row_id)]
    assert outcomes[-1] == "gave_up" and set(outcomes[:-1]) == {"retry"} and len(outcomes) >= 5
    assert row is not None and [n.kind for n in backup] == ["firing"]  # told once, after 3 failures
    http_server.default = (200, {}, "ok")
    store.outbox.enqueue(note(2), [(0, "slack")], clock.now(), deadline=600)
    once(dispatcher)
    once(dispatcher)
    assert [n.kind for n in backup] == ["firing", "resolved"]
    assert [i for i in store.incidents.open() if i.rule == "alertd_receiver_failing"] == []


def test_one_failing_receiver_does_not_hold_back_another(setup, clock, http_server):  # noqa: F811
    store, dispatcher, backup = setup()
    http_server.respond(500, body="down")
    store.outbox.enqueue(note(1), [(0, "slack")], clock.now(), deadline=600)
    store.outbox.enqueue(note(2, receiver="backup"), [(0, "test_record")], clock.now(), deadline=600)
    assert once(dispatcher) == 1 and [n.idempotency_key for n in backup] == ["g2:firing:1"]


def test_over_the_rate_limit_notices_are_folded_into_one_digest(setup, clock, http_server):  # noqa: F811
    store, dispatcher, _ = setup("rate_limit: {rate: 1, per: 1m, burst: 2}")
    ids = [store.outbox.enqueue(note(n), [(0, "slack")], clock.now(), deadline=600)[0] for n in range(1, 6)]
    assert once(dispatcher) == 2  # two tokens: one notice as it is, one digest of the other four
    bodies = [r.json()["text"] for r in http_server.requests]
    assert bodies[0].startswith("[FIRING] cpu_high host=h1")
    assert bodies[1].startswith("[DIGEST:4] cpu_high") and "rate limit was reached" in bodies[1]
    assert all(f"host=h{n}" in bodies[1] for n in (2, 3, 4, 5))
    rows = {r["id"]: r for r in store.outbox.rows()}
    digest_id = max(rows)
    assert [rows[i]["status"] for i in ids] == ["sent", "folded", "folded", "folded", "folded"]
    assert {rows[i]["folded_into"] for i in ids[1:]} == {digest_id} and rows[digest_id]["kind"] == "digest"
    assert ledger(store, ids[1]) == [(0, "folded")]
    for n in range(6, 9):
        store.outbox.enqueue(note(n), [(0, "slack")], clock.now(), deadline=600)
    assert once(dispatcher) == 0 and len(http_server.requests) == 2  # no token left: held, not dropped
    clock.advance(60)
    assert once(dispatcher) == 1  # one token: the three waiting notices go as one digest
    assert http_server.requests[2].json()["text"].startswith("[DIGEST:3] cpu_high")
    assert store.outbox.pending_count() == 0


def test_the_same_notice_is_queued_once(setup, clock):
    store, _, _ = setup()
    assert len(store.outbox.enqueue(note(1), [(0, "slack")], clock.now())) == 1
    assert store.outbox.enqueue(note(1), [(0, "slack")], clock.now()) == []
