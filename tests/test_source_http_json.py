"""The http_json source against a real local HTTP server: mapping, auth, and bad answers."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from servers import HANG, free_port, http_server  # noqa: F401  (fixture)
from source_helpers import make_source

from alertd.base import SourceError
from alertd.config.load import load_config
from alertd.config.schema import ConfigError

STATUS = {
    "updated": "2024-06-03T08:00:00Z",
    "providers": [
        {"name": "stripe", "region": "eu", "ok": 0.991, "up": True},
        {"name": "adyen", "region": "us", "ok": "0.42", "up": False},
        {"name": "paypal", "region": "eu", "ok": None, "up": True},
    ],
    "queue": {"depth": 17},
}

METRICS = [
    {"name": "psp_success_ratio", "items": "providers", "value": "ok",
     "labels": {"provider": "name", "region": "region"}},
    {"name": "psp_up", "items": "providers", "value": "up", "labels": {"provider": "name"}},
    {"name": "queue_depth", "value": "queue.depth"},
]


def collect(source):
    return asyncio.run(source.collect())


def test_many_series_from_one_response(http_server, registry, clock):
    http_server.respond(200, {"Content-Type": "application/json"}, json.dumps(STATUS))
    source = make_source(registry, "http_json", {"url": http_server.url + "/status", "metrics": METRICS},
                         clock)
    samples = {s.key: s for s in collect(source)}
    assert samples['psp_success_ratio{provider="stripe",region="eu"}'].value == 0.991
    assert samples['psp_success_ratio{provider="adyen",region="us"}'].value == 0.42  # numeric string
    assert 'psp_success_ratio{provider="paypal",region="eu"}' not in samples  # null: no value
    assert samples['psp_up{provider="adyen"}'].value == 0.0  # booleans are 1/0
    assert samples["queue_depth"].value == 17 and samples["queue_depth"].ts == clock.now()
    assert len(samples) == 6


def test_post_with_body_headers_and_bearer_token(http_server, registry, clock):
    http_server.respond(200, {}, json.dumps({"orders": 12}))
    source = make_source(registry, "http_json", {
        "url": http_server.url + "/q", "method": "POST", "body": {"window": "1m"},
        "params": {"shop": "main"}, "headers": {"X-Shop": "main"}, "bearer_token": "s3cret-token",
        "metrics": [{"name": "orders", "value": "orders"}]}, clock)
    assert [s.value for s in collect(source)] == [12.0]
    request = http_server.requests[0]
    assert request.method == "POST" and request.path == "/q?shop=main"
    assert request.json() == {"window": "1m"}
    assert request.headers["authorization"] == "Bearer s3cret-token"
    assert request.headers["x-shop"] == "main"


def test_basic_auth_and_timestamps_from_the_document(http_server, registry, clock):
    http_server.respond(200, {}, json.dumps(STATUS))
    source = make_source(registry, "http_json", {
        "url": http_server.url, "username": "ops", "password": "hunter22",
        "metrics": [{"name": "queue_depth", "value": "queue.depth", "timestamp": "updated"}]}, clock)
    (sample,) = collect(source)
    assert sample.ts == 1717401600.0
    assert http_server.requests[0].headers["authorization"] == "Basic " + base64.b64encode(b"ops:hunter22").decode()


@pytest.mark.parametrize("status, body, reason, words", [
    (502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "http_status",
     ["HTTP 502", "HTML page", "502 Bad Gateway"]),
    (200, "<!DOCTYPE html><html><title>Log in</title></html>", "bad_payload",
     ["not JSON", "HTML page", "Log in"]),
    (200, '{"providers": [', "bad_payload", ["not JSON", "'{\"providers\": ['"]),
    (200, "", "bad_payload", ["an empty body"]),
    (200, '{"other": 1}', "empty", ["found nothing", "providers"]),
    (200, '{"providers": {"a": 1}}', "bad_payload", ["not a list"]),
])
def test_bad_answers_are_one_sentence_with_an_excerpt(http_server, registry, clock, status, body, reason, words):
    http_server.respond(status, {}, body)
    source = make_source(registry, "http_json", {"url": http_server.url + "/s?token=abc", "metrics": METRICS[:1]},
                         clock)
    with pytest.raises(SourceError) as info:
        collect(source)
    message = str(info.value)
    assert info.value.reason == reason
    assert all(w in message for w in words), message
    assert "token=abc" not in message  # query strings may hold secrets: never shown
    assert "\n" not in message


def test_huge_payload_is_cut_off_at_max_bytes(http_server, registry, clock):
    http_server.respond(200, {}, json.dumps({"items": ["x" * 1000] * 200}))
    source = make_source(registry, "http_json", {"url": http_server.url, "max_bytes": 50_000,
                                                 "metrics": METRICS[:1]}, clock)
    with pytest.raises(SourceError, match="larger than max_bytes") as info:
        collect(source)
    assert info.value.reason == "too_large"


def test_timeout_and_refused_connection(http_server, registry, clock):
    http_server.respond(HANG)
    source = make_source(registry, "http_json", {"url": http_server.url, "metrics": METRICS[:1]}, clock,
                         timeout=0.5)
    with pytest.raises(SourceError, match="no answer from .* within 0.45s") as info:
        collect(source)
    assert info.value.reason == "timeout"
    closed = make_source(registry, "http_json", {"url": f"http://127.0.0.1:{free_port()}/x",
                                                 "metrics": METRICS[:1]}, clock)
    with pytest.raises(SourceError, match="cannot connect to http://127.0.0.1") as info:
        collect(closed)
    assert info.value.reason == "connect"


def test_config_errors_name_file_line_and_key(write_config, registry):
    path = write_config("""
        sources:
          psp:
            type: http_json
            every: 30s
            url: ftp://status.example
            metrics:
              - {name: up, value: "providers[?up"}
          other:
            type: http_json
            every: 30s
            url: http://status.example
            methd: POST
            metrics: [{name: up, value: ok}]
          third:
            type: http_json
            every: 30s
            url: http://status.example
            body: {a: 1}
            metrics: [{name: up, value: ok}]
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    text = str(info.value)
    assert 'alertd.yaml:7: sources.psp.metrics[0]: value: "providers[?up" is not a JMESPath expression' in text
    assert 'alertd.yaml:12: sources.other.methd: unknown key "methd"; did you mean "method"?' in text
    assert "alertd.yaml:14: sources.third: a body is only sent with POST" in text
