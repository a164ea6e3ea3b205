"""Sources inside the daemon: a broken source never stops the others, read positions commit
with the samples, and a source that cannot start stops the start with one sentence."""

from __future__ import annotations

import asyncio
import sys

import pytest
from servers import http_server  # noqa: F401  (fixture)
from source_helpers import counter
from structlog.testing import capture_logs

from alertd.base import SourceError
from alertd.config.load import load_config
from alertd.daemon.core import Daemon

CONFIG = """
sources:
  psp: {{type: http_json, every: 10s, url: "{url}/status", metrics: [{{name: psp_up, value: up}}]}}
  queue: {{type: command, every: 10s, command: ["{py}", "-c", "print(7)"], name: queue_depth}}
  nan: {{type: command, every: 10s, command: ["{py}", "-c", "print('nan')"], name: ratio}}
  events: {{type: push, every: 5s, port: 0}}
  hang: {{type: command, every: 10s, timeout: 1s, command: ["{py}", "-c", "import time; time.sleep(30)"], name: x}}
  nginx:
    type: logfile
    every: 10s
    path: "{log}"
    metrics: [{{name: http_5xx, regex: ' 5[0-9][0-9] '}}]
rules:
  - {{name: queue_high, source: queue, series: queue_depth, detector: {{type: test_above, limit: 100}}}}
receivers:
  console: [{{type: console}}]
"""


@pytest.fixture
def daemon(write_config, registry, tmp_path, http_server, clock):
    log = tmp_path / "access.log"
    log.write_text("")
    path = write_config(CONFIG.format(url=http_server.url, py=sys.executable, log=log))
    config = load_config(path, registry, environ={})

    def make():
        return Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
    return make, log


def stored(d: Daemon, source: str) -> int:
    return d.store.db.execute("SELECT COUNT(*) FROM samples JOIN series s ON s.id = series_id "
                              "WHERE s.source = ?", [source]).fetchone()[0]


def test_a_broken_source_is_logged_counted_and_the_others_go_on(daemon, http_server):
    make, _ = daemon
    http_server.respond(502, {"Content-Type": "text/html"}, "<html><title>502 Bad Gateway</title></html>")

    async def main():
        d = make()
        await d.open()
        with capture_logs() as logs:
            await asyncio.gather(d.poll("psp"), d.poll("queue"), d.poll("hang"))
        try:
            return d, logs, stored(d, "queue"), stored(d, "psp")
        finally:
            await d.drain()
    d, logs, queue_rows, psp_rows = asyncio.run(main())
    assert queue_rows == 1 and psp_rows == 0
    failed = {e["source"]: e for e in logs if e["event"] == "source_failed"}
    assert set(failed) == {"psp", "hang"}
    assert failed["psp"]["reason"] == "http_status" and "'502 Bad Gateway'" in failed["psp"]["error"]
    assert "did not finish within 0.9s and was killed" in failed["hang"]["error"]
    assert counter(d.metrics, "source_errors", "psp", "http_status") == 1
    assert counter(d.metrics, "source_errors", "hang", "timeout") == 1
    assert counter(d.metrics, "source_polls", "queue") == 1
    health = d.engine.source_health
    assert health["psp"].consecutive_errors == 1 and "HTTP 502" in health["psp"].last_error
    assert health["queue"].consecutive_errors == 0 and health["queue"].last_ok is not None


def test_a_poll_of_only_nan_values_is_a_failed_poll(daemon):
    make, _ = daemon

    async def main():
        d = make()
        await d.open()
        await d.poll("nan")
        await d.drain()
        return d
    d = asyncio.run(main())
    assert counter(d.metrics, "samples_skipped", "nan", "not_finite") == 1
    assert counter(d.metrics, "source_errors", "nan", "unusable") == 1
    assert d.engine.source_health["nan"].consecutive_errors == 1


def test_the_read_position_commits_with_the_samples(daemon, monkeypatch, clock):
    make, log = daemon

    async def run(*lines, break_tick=False):
        d = make()
        await d.open()
        await d.poll("nginx")
        clock.advance(10)
        with open(log, "a") as f:
            f.writelines(lines)
        if break_tick:  # the transaction storing the samples fails: the position must not move
            monkeypatch.setattr(d.engine.store.samples, "append", _boom)
        await d.poll("nginx")
        clock.advance(10)
        monkeypatch.undo()
        values = [r[0] for r in d.store.db.execute(
            "SELECT value FROM samples JOIN series s ON s.id = series_id WHERE s.key = 'http_5xx' ORDER BY ts")]
        await d.drain()
        return d, values

    _, values = asyncio.run(run('"GET /" 500 1\n'))
    assert values == [0.0, 1.0]
    d, values = asyncio.run(run('"GET /" 502 1\n', '"GET /" 503 1\n', break_tick=True))
    assert counter(d.metrics, "source_errors", "nginx", "tick") == 1
    _, values = asyncio.run(run())  # after the restart the two lines are read again, once
    assert values[-2:] == [2.0, 0.0]


def _boom(*args, **kwargs):
    raise OSError("disk full")


def test_a_source_that_cannot_start_stops_the_start(write_config, registry, tmp_path, clock):
    async def main():
        blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = blocker.sockets[0].getsockname()[1]
        path = write_config(f"sources:\n  events: {{type: push, every: 5s, port: {port}}}\n")
        d = Daemon(load_config(path, registry, environ={}), registry, store_path=tmp_path / "a.db", clock=clock)
        try:
            with pytest.raises(SourceError, match=f'the source "events" could not start: cannot listen on '
                                                  f"127.0.0.1:{port}"):
                await d.open()
        finally:
            blocker.close()
        return d
    d = asyncio.run(main())
    assert d.http.is_closed


def test_a_token_echoed_in_an_error_page_is_redacted(write_config, registry, tmp_path, http_server, clock):
    http_server.respond(401, {}, "invalid token tok-very-secret-1")
    path = write_config(f"""
        sources:
          psp: {{type: http_json, every: 10s, url: "{http_server.url}", bearer_token: "${{PSP_TOKEN}}",
                 metrics: [{{name: up, value: up}}]}}
    """)
    config = load_config(path, registry, environ={"PSP_TOKEN": "tok-very-secret-1"})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "a.db", clock=clock)
        await d.open()
        with capture_logs() as logs:
            await d.poll("psp")
        await d.drain()
        return d, logs
    d, logs = asyncio.run(main())
    (event,) = [e for e in logs if e["event"] == "source_failed"]
    assert "HTTP 401" in event["error"] and "tok-very-secret-1" not in event["error"] and "***" in event["error"]
    assert "tok-very-secret-1" not in d.engine.source_health["psp"].last_error
    assert http_server.requests[0].headers["authorization"] == "Bearer tok-very-secret-1"


def test_a_quiet_interval_of_an_event_source_is_not_a_failure(daemon):
    make, _ = daemon

    async def main():
        d = make()
        await d.open()
        await d.poll("events")  # nothing was pushed: nothing to say, and nothing wrong
        await d.poll("queue")
        await d.drain()
        return d
    d = asyncio.run(main())
    assert counter(d.metrics, "source_polls", "events") == 1
    assert counter(d.metrics, "source_errors", "events", "empty") == 0
    assert d.engine.source_health["events"].consecutive_errors == 0
