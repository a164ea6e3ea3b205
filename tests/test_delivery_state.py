"""Delivery to a receiver that keeps state (the alertmanager notifier, `sends_state`): after an
outage the notices of a group that are due together go out as one, holding each alert's
latest state, so a retried old notice never sets an alert back (alertd/delivery/supersede.py).

The Alertmanager is played by a local HTTP server that answers 503 (a node restarting) and
then 200; the fake clock moves the worker to each retry.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

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
  cluster:
    - {type: alertmanager, url: "URL"}
    - {type: webhook, url: "URL/hook"}
routes:
  receiver: cluster
"""


@pytest.fixture
def setup(write_config, registry, clock, tmp_path, http_server):  # noqa: F811
    config = load_config(write_config(CONFIG.replace("URL", http_server.url)), registry, environ={})
    store = Store(tmp_path / "d.db")
    ctx = PluginContext("cluster", clock.now)
    notifiers = {("cluster", i): registry.get("notifier", c.type)(c.params, ctx)
                 for i, c in enumerate(config.receivers["cluster"])}
    metrics = Metrics()
    worker = OutboxWorker(store, notifiers, clock, metrics, get_logger(), config=config)
    yield store, worker, metrics
    for n in notifiers.values():
        asyncio.run(n.close())
    store.close()


def incident(host: str, state: str, at: float) -> Incident:
    return Incident(f"fp-{host}", "cpu_high", {"host": host}, state, "warning", started_at=at - 60,
                    fired_at=at - 60, resolved_at=at if state == "resolved" else None, id=1)


def note(seq: int, kind: str, *incidents: Incident, group: str = "g1") -> Notification:
    return Notification("cluster", kind, f"{group}:{kind}:{seq}", incidents, f"[{kind.upper()}]", "",
                        incidents[0].started_at, group_key=group)


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def once(worker) -> int:
    return asyncio.run(worker.run_once())


def posted(http_server, path="/api/v2/alerts"):  # noqa: F811
    return [r.json() for r in http_server.requests if r.path == path]


def retry_due(store, clock):
    clock.advance(min(r["next_attempt_at"] for r in store.outbox.rows("pending")) - clock.now())


def test_a_firing_notice_retried_after_the_resolve_is_not_sent_only_the_resolve(setup, clock, http_server):  # noqa: F811
    store, worker, metrics = setup
    now = clock.now()
    (firing_id,) = store.outbox.enqueue(note(1, "firing", incident("a", "firing", now)), [(0, "alertmanager")], now)
    http_server.respond(503, body="restarting")
    assert once(worker) == 0  # the node is down: the firing notice waits for its retry
    clock.advance(0.5)
    (resolved_id,) = store.outbox.enqueue(note(2, "resolved", incident("a", "resolved", clock.now())),
                                          [(0, "alertmanager")], clock.now())
    assert once(worker) == 0  # the resolve waits behind the firing notice of its group
    retry_due(store, clock)
    assert once(worker) == 1
    (body,) = posted(http_server)[1:]  # one request after the outage: the resolve alone
    assert [a["labels"]["host"] for a in body] == ["a"]
    assert ts(body[0]["endsAt"]) <= clock.now()  # resolved: it ended, it does not fire for 24h
    rows = {r["id"]: r for r in store.outbox.rows()}
    assert rows[firing_id]["status"] == "folded" and rows[firing_id]["folded_into"] == resolved_id
    assert rows[resolved_id]["status"] == "sent"
    assert rows[resolved_id]["attempts"] == 2  # the outage's attempt is carried over (backoff goes on)
    assert [(a.outcome, a.answer) for a in store.ledger.of(firing_id)][-1] == (
        "folded", f"superseded by #{resolved_id}, the group's newer state")
    assert metrics.notifications_superseded.labels("cluster")._value.get() == 1


def test_an_alert_only_an_older_notice_carries_is_kept_in_the_merged_one(setup, clock, http_server):  # noqa: F811
    store, worker, _ = setup
    now = clock.now()
    older = note(1, "firing", incident("a", "firing", now), incident("b", "resolved", now))
    store.outbox.enqueue(older, [(0, "alertmanager")], now)
    http_server.respond(503)
    once(worker)
    clock.advance(0.5)
    store.outbox.enqueue(note(2, "firing", incident("a", "firing", clock.now()), incident("c", "firing", clock.now())),
                         [(0, "alertmanager")], clock.now())
    assert once(worker) == 0  # it waits behind the older notice of its group
    retry_due(store, clock)
    assert once(worker) == 1
    body = posted(http_server)[-1]
    hosts = [a["labels"]["host"] for a in body]
    assert hosts == ["a", "c", "b"]  # the newest notice's alerts first, then b's resolve
    ended = {a["labels"]["host"]: a["endsAt"] for a in body}
    assert ended["b"] < ended["a"]  # b is still sent as resolved, not dropped


def test_a_receiver_of_messages_still_gets_every_notice_in_order(setup, clock, http_server):  # noqa: F811
    store, worker, _ = setup
    now = clock.now()
    store.outbox.enqueue(note(1, "firing", incident("a", "firing", now)), [(1, "webhook")], now)
    http_server.respond(503)
    once(worker)
    clock.advance(5)
    store.outbox.enqueue(note(2, "resolved", incident("a", "resolved", clock.now())), [(1, "webhook")], clock.now())
    while store.outbox.rows("pending"):
        retry_due(store, clock)
        once(worker)
    kinds = [r.json()["status"] for r in http_server.requests if r.path == "/hook"]
    assert kinds == ["firing", "firing", "resolved"]  # the failed try, its retry, then the resolve
    assert {r["status"] for r in store.outbox.rows()} == {"sent"}


def test_an_alertmanager_down_for_long_is_retried_every_ten_seconds_at_most(setup, clock, http_server):  # noqa: F811
    store, worker, _ = setup
    store.outbox.enqueue(note(1, "firing", incident("a", "firing", clock.now())),
                         [(0, "alertmanager"), (1, "webhook")], clock.now())
    waits = {0: [], 1: []}
    for _ in range(30):  # both integrations keep failing: 2 s, 4 s, 8 s, ... for the webhook
        for _ in range(2):
            http_server.respond(503)
        before = clock.now()
        once(worker)
        for r in store.outbox.rows("pending"):
            if r["next_attempt_at"] > before:
                waits[r["integration"]].append(r["next_attempt_at"] - before)
        retry_due(store, clock)
    assert max(waits[0]) <= 10.0 and len(waits[0]) >= 8
    assert max(waits[1]) > 60  # a message receiver still backs off up to minutes
