"""Receiver outages in simulated time: a webhook that answers 500 or hangs for 10 minutes, an
SMTP server that is down, Slack's 429 with Retry-After.

The daemon runs in-process on the fake clock (retries and backoff are computed from it) and
delivers to real local servers. Incidents keep firing and resolving during the outage;
afterwards every notice is delivered, each group's notices in the order they were made.
"""

from __future__ import annotations

import asyncio

import pytest
from configs import config_text
from servers import HANG, RecordingHTTPServer, RecordingSMTPServer, free_port

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels


def site_config(integration: dict) -> str:
    return config_text(sources={"app": {"type": "test_list", "every": "10s"}}, receivers={"hook": [integration]},
                       routes={"receiver": "hook", "group_by": ["..."], "group_wait": "0s", "group_interval": "30s",
                               "repeat_interval": "1h"})

def webhook(url: str) -> dict:
    return {"type": "webhook", "url": f"{url}/hook", "timeout": "200ms"}


def email(port: int) -> dict:
    return {"type": "email", "host": "127.0.0.1", "port": port, "sender": "a@example.com", "to": ["b@example.com"],
            "timeout": "1s"}


HOSTS = ["a", "b", "c"]


def run_site(write_config, registry, tmp_path, clock, integration: dict, outage, minutes: int = 10):
    """Step 10 s at a time: hosts flap (so groups get new notices) during `minutes` of outage
    (`outage(True)`), then recovery (`outage(False)`) until the outbox is empty."""
    config = load_config(write_config(site_config(integration)), registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        src = d.sources["app"]
        outage(True)
        start = clock.now()
        step = 0
        while clock.now() - start < minutes * 60:
            # host i is high for a while, then low: firing and resolved notices in every group
            src.pending = [Sample("cpu", make_labels({"host": h}), clock.now(),
                                  95.0 if (step // (4 + i)) % 2 == 0 else 10.0) for i, h in enumerate(HOSTS)]
            await d.poll("app")
            await d.pass_once()
            clock.advance(10)
            step += 1
        outage(False)
        for _ in range(80):  # at most 80 simulated 10 s steps (backoff is capped at 5 minutes)
            await d.pass_once()
            if d.store.outbox.pending_count() == 0 and d.delivery.next_wakeup() is None and d.group_timer.next_at() is None:
                break
            clock.advance(10)
        rows = d.store.outbox.rows()
        attempts = d.store.db.execute("SELECT COUNT(*) FROM deliveries WHERE outcome = 'retry'").fetchone()[0]
        await d.drain()
        return rows, attempts
    return asyncio.run(main())


def check_order(keys: list[str]) -> dict[str, list[int]]:
    """Sequence numbers per group in delivery order (first delivery of each key)."""
    seen, groups = set(), {}
    for key in keys:
        if key not in seen:
            seen.add(key)
            group, _, seq = key.rsplit(":", 2)
            groups.setdefault(group, []).append(int(seq))
    return groups


@pytest.mark.parametrize("failure", [500, HANG])
def test_a_webhook_down_for_10_minutes_gets_every_notice_in_order_after(write_config, registry, tmp_path,
                                                                       clock, failure):
    down = {"on": False}
    web = RecordingHTTPServer(handler=lambda r: (failure, {}, "down") if down["on"] else None).start()
    try:
        rows, retries = run_site(write_config, registry, tmp_path, clock, webhook(web.url),
                                 lambda on: down.update(on=on))
    finally:
        web.close()
    assert retries > 0  # the outage was felt
    assert rows and {r["status"] for r in rows} == {"sent"}
    delivered = [r.headers["idempotency-key"] for r in web.requests]
    assert {r["idempotency_key"] for r in rows} <= set(delivered)
    for group, seqs in check_order(delivered).items():
        assert seqs == sorted(seqs), f"group {group} delivered out of order: {seqs}"
    assert {"firing", "resolved"} <= {r["kind"] for r in rows}


def test_smtp_down_then_up_every_mail_arrives_in_order(write_config, registry, tmp_path, clock):
    port = free_port()
    smtp = {"server": None}

    def outage(on):
        if not on:  # the mail server comes up on the port alertd was retrying
            smtp["server"] = RecordingSMTPServer(port=port).start()

    try:
        rows, retries = run_site(write_config, registry, tmp_path, clock, email(port), outage)
        messages = smtp["server"].messages
    finally:
        if smtp["server"] is not None:
            smtp["server"].close()
    assert retries > 0
    assert rows and {r["status"] for r in rows} == {"sent"}
    assert len(messages) >= len(rows)
    keys = [m["X-Alertd-Idempotency-Key"] for m in messages]
    assert set(keys) == {r["idempotency_key"] for r in rows}
    for group, seqs in check_order(keys).items():
        assert seqs == sorted(seqs), f"group {group} delivered out of order: {seqs}"


def test_slack_429_retry_after_holds_every_notice_of_the_integration(write_config, registry, tmp_path, clock):
    web = RecordingHTTPServer().start()
    times: list[float] = []
    web.handler = lambda r: times.append(clock.now()) or None
    try:
        config = load_config(write_config(site_config(
            {"type": "slack", "webhook_url": f"{web.url}/hook"})), registry, environ={})

        async def main():
            d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
            await d.open()
            web.respond(429, {"Retry-After": "120"}, "rate limited")
            d.sources["app"].pending = [Sample("cpu", make_labels({"host": h}), clock.now(), 95.0) for h in HOSTS]
            await d.poll("app")
            first = clock.now()
            await d.pass_once()
            for _ in range(30):  # 30 s steps: the next attempt may come only after 120 s
                clock.advance(30)
                await d.pass_once()
            rows = d.store.outbox.rows()
            await d.drain()
            return first, rows
        first, rows = asyncio.run(main())
    finally:
        web.close()
    assert {r["status"] for r in rows} == {"sent"} and len(rows) == 3
    later = [t for t in times if t > first]
    assert len(web.requests) == 4 and len(later) == 3  # one 429, then each notice once
    assert min(later) >= first + 120
