"""Hostile requests to the daemon's own HTTP server (status page, /metrics, the JSON API):
every request gets an answer, never a 500 or a dropped connection, and the daemon stays
healthy. Requests mix methods, paths with odd ids and query strings, the token or not, and
random bodies (JSON with odd values, deep nesting, bytes that are not UTF-8).
"""

from __future__ import annotations

import json

import httpx
from fuzzing import fuzz_settings, tally
from hypothesis import given
from hypothesis import strategies as st
from test_http_api import CONFIG, serve

TOKEN = "fuzz-token-0123456789abcdef"
IDS = ["1", "2", "0", "-1", "x", "99999999999999999999", "%00", "..%2f..", "1e3", "%ff", "a" * 300]
paths = st.one_of(
    st.sampled_from(["/", "/healthz", "/readyz", "/metrics", "/api/v1/status", "/api/v1/incidents",
                     "/api/v1/silences", "/api/v1/reload", "/nope", "//", "/api/v1/", "/%"]),
    st.builds("/api/v1/incidents/{}".format, st.sampled_from(IDS)),
    st.builds("/api/v1/incidents/{}/{}".format, st.sampled_from(IDS), st.sampled_from(["ack", "unack", "resolve", "x"])),
    st.builds("/api/v1/silences/{}".format, st.sampled_from(IDS)))
queries = st.one_of(st.just(""), st.builds("?state={}&rule={}&limit={}&all={}".format,
                                           st.sampled_from(["open", "all", "x", ""]), st.text(max_size=4),
                                           st.sampled_from(["1", "-5", "x", "9" * 30, ""]),
                                           st.sampled_from(["1", "0", "yes", ""])))
leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10),
                 st.sampled_from(["2h", "-1h", "0s", "1e400", 'rule="cpu_high"', "rule=~\"(\"", "x", 10 ** 400]))
values = st.recursive(leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=8)
silence = st.fixed_dictionaries({}, optional={
    "matchers": st.one_of(st.lists(st.one_of(st.sampled_from(['rule="cpu_high"', 'host=~"a|b"', "=", 'x!~"("']),
                                             leaf), max_size=3), leaf),
    "duration": leaf, "comment": leaf, "by": leaf, "ends_at": leaf, "expire_on_resolve": leaf})
bodies = st.one_of(st.just(b""), silence.map(lambda d: json.dumps(d, allow_nan=True).encode()),
                   values.map(lambda v: json.dumps(v, allow_nan=True).encode()), st.binary(max_size=40),
                   st.just(b"[" * 3000), st.just(b'{"by": "' + b"\xff" * 3 + b'"}'))
writes = st.tuples(st.just("POST"), st.sampled_from(["/api/v1/silences", "/api/v1/incidents/1/ack"]), st.just(""),
                   st.just("good"), silence.map(lambda d: json.dumps(d, allow_nan=True).encode()))
reads = st.tuples(st.just("GET"), st.sampled_from(["/", "/metrics", "/api/v1/status", "/api/v1/incidents",
                                                   "/api/v1/silences", "/api/v1/incidents/1"]),
                  queries, st.just("none"), st.just(b""))
requests = st.lists(st.one_of(writes, reads, st.tuples(st.sampled_from(["GET", "GET", "POST", "POST", "DELETE", "PUT", "HEAD"]), paths, queries,
                              st.sampled_from(["good", "good", "none", "wrong"]), bodies)), min_size=1, max_size=5)


@fuzz_settings(40)
@given(batch=requests)
def test_every_request_gets_an_answer_and_the_daemon_stays_healthy(batch, write_config, registry, clock, tmp_path):
    text = CONFIG.replace("http: {listen: 127.0.0.1:0}", f"http: {{listen: 127.0.0.1:0, token: {TOKEN}}}")
    assert TOKEN in text

    async def scenario(daemon, client):
        codes = []
        for method, path, query, auth, body in batch:
            headers = {"good": {"Authorization": f"Bearer {TOKEN}"}, "wrong": {"Authorization": "Bearer nope"},
                       "none": {}}[auth]
            try:
                answer = await client.request(method, path + query, headers=headers, content=body)
            except httpx.InvalidURL:  # the client would not send it: nothing to ask the daemon
                tally("api url-refused-by-client")
                continue
            ready = path == "/readyz" and answer.status_code == 503  # no poll yet: honestly not ready
            assert answer.status_code < 500 or ready, (method, path, answer.text)
            codes.append(answer.status_code)
            tally(f"api http-{answer.status_code}")
        assert (await client.get("/healthz")).status_code == 200
        return codes

    serve(write_config, registry, clock, tmp_path, text, scenario)


def test_an_incident_id_beyond_sqlites_integers_is_not_found(write_config, registry, clock, tmp_path):
    """Was: 500 (OverflowError binding the id) for /api/v1/incidents/99999999999999999999."""
    async def scenario(daemon, client):
        return [await client.get(f"/api/v1/incidents/{ident}") for ident in ("99999999999999999999", "²")]

    answers = serve(write_config, registry, clock, tmp_path, CONFIG, scenario)
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json()["error"] == ("no incident has the id #99999999999999999999; see "
                                          "`alertd incidents list --all`")
