"""The pages in process (httpx against the daemon's own server): rendering, filters, login,
sessions, CSRF, the actor of every change, form limits. The browser suite
(tests/test_browser.py) drives the same pages in Chromium."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from configs import NEVER, config_text, rule

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels

TOKEN = "s3cret-api-token-0123456789"


def cfg(http=None, **sections):
    return config_text(http={"listen": "127.0.0.1:0", "token": TOKEN, **(http or {})},
                       sources={"app": {"type": "test_list", "cron": NEVER}},
                       rules=sections.pop("rules", [rule("cpu_high", severity="critical",
                                                         annotations={"summary": "CPU {{ $value }} on {{ $labels.host }}"}),
                                                    rule("cpu_watch", limit=50, severity="warning", **{"for": "1h"})]),
                       **sections)


def cpu(host, ts, value, **labels):
    return Sample("cpu", make_labels({"host": host, **labels}), ts, value)


def run(write_config, registry, clock, tmp_path, text, scenario, feed=True):
    config = load_config(write_config(text), registry, environ={})

    async def main():
        daemon = Daemon(config, registry, store_path=tmp_path / "pages.db", clock=clock)
        await daemon.open_http()
        await daemon.start()
        try:
            if feed:
                t = clock.now()
                daemon.sources["app"].pending = [cpu("a", t, 95, dc="eu"), cpu("b", t, 60, dc="us"),
                                                 cpu("<script>x</script>", t, 10)]
                await daemon.poll("app")
                await daemon.pass_once()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web.port}",
                                         follow_redirects=False) as client:
                return await scenario(daemon, client)
        finally:
            await daemon.drain()

    return asyncio.run(main())


async def login(client, name="alice", token=TOKEN, next_="/"):
    page = await client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return await client.post("/login", data={"csrf": csrf, "name": name, "token": token, "next": next_})


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_every_page_renders_and_escapes_labels(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        out = {}
        for path in ["/", "/incidents", "/incidents?state=all", "/incidents/1", "/silences", "/silences?all=1",
                     "/silences/new", "/silences/new?incident=1", "/silences/preview?matchers=host%3Da",
                     "/rules", "/rules/cpu_high", "/rules/cpu_high?state=firing", "/routes",
                     "/routes?labels=rule%3Dcpu_high", "/login", "/static/alertd.css", "/static/silence.js"]:
            out[path] = await client.get(path)
        out["missing"] = await client.get("/incidents/999")
        out["no_rule"] = await client.get("/rules/nope")
        out["no_static"] = await client.get("/static/../alertd.yaml")
        return out

    pages = run(write_config, registry, clock, tmp_path, cfg(), scenario)
    for path, r in pages.items():
        if path.startswith("/"):
            assert r.status_code == 200, (path, r.text[:300])
    for path in ("/", "/incidents", "/rules/cpu_high", "/silences/preview?matchers=host%3Da"):
        assert "<script>x</script>" not in pages[path].text
    assert "&lt;script&gt;x&lt;/script&gt;" in pages["/rules/cpu_high"].text
    html = pages["/incidents/1"].text
    assert "CPU 95 on a" in html  # the rendered annotation
    assert pages["/incidents/1"].headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in pages["/incidents/1"].text  # no script where a form will do
    assert pages["missing"].status_code == 404 and "no incident has the id #999" in pages["missing"].text
    assert pages["no_rule"].status_code == 404 and pages["no_static"].status_code == 404
    assert pages["/static/alertd.css"].headers["content-type"].startswith("text/css")


def test_incidents_filter_by_state_rule_severity_and_labels(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        queries = {"open": "", "firing": "?state=firing", "pending": "?state=pending", "rule": "?rule=cpu_watch",
                   "severity": "?severity=critical", "labels": '?matchers=host%3D~"a|b"%2C+dc!%3D"eu"',
                   "alertname": "?matchers=alertname%3Dcpu_watch%2C+severity%3Dwarning",
                   "bad": "?matchers=host%3D~%22(%22", "resolved": "?state=resolved"}
        return {k: (await client.get("/incidents" + q)) for k, q in queries.items()}

    r = run(write_config, registry, clock, tmp_path, cfg(), scenario)

    def shown(name):
        return sorted(re.findall(r'<b>(#\d+ \w+)</b>', r[name].text))

    assert shown("open") == ["#1 cpu_high", "#2 cpu_watch", "#3 cpu_watch"]
    assert shown("firing") == ["#1 cpu_high"] and shown("pending") == ["#2 cpu_watch", "#3 cpu_watch"]
    assert shown("rule") == ["#2 cpu_watch", "#3 cpu_watch"] and shown("severity") == ["#1 cpu_high"]
    assert shown("labels") == ["#3 cpu_watch"]  # host=b, dc=us
    assert shown("alertname") == ["#2 cpu_watch", "#3 cpu_watch"]  # the routing labels, as silences see them
    assert r["bad"].status_code == 400 and "the label matchers are not valid" in r["bad"].text
    assert "No open incidents" in r["resolved"].text


def test_login_sets_a_strict_http_only_session_and_a_wrong_token_does_not(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        wrong = await login(client, token="nope-nope-nope-nope")
        no_csrf = await client.post("/login", data={"name": "alice", "token": TOKEN})
        bad_name = await login(client, name="<bob>")
        ok = await login(client, next_="/incidents/1")
        page = await client.get("/incidents/1")
        logout = await client.post("/logout", data={"csrf": csrf_of(page.text)})
        client.cookies.clear()
        after = await client.get("/incidents/1")
        return wrong, no_csrf, bad_name, ok, page, logout, after

    wrong, no_csrf, bad_name, ok, page, logout, after = run(write_config, registry, clock, tmp_path, cfg(), scenario)
    assert wrong.status_code == 403 and "that is not the API token" in wrong.text
    assert "alertd_session" not in wrong.headers.get("set-cookie", "")
    assert no_csrf.status_code == 403 and bad_name.status_code == 400
    assert ok.status_code == 303 and ok.headers["location"] == "/incidents/1"
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith("alertd_session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie and "Path=/" in cookie

    async def secure(daemon, client):
        return await client.get("/login")

    behind_tls = run(write_config, registry, clock, tmp_path,
                     cfg({"external_url": "https://alertd.example.com"}), secure, feed=False)
    assert "; Secure" in behind_tls.headers["set-cookie"]  # cookie_secure: auto, and the URL is https
    from alertd.http.session import set_cookie
    assert set_cookie("alertd_session", "v", max_age=60, secure=True) == \
        "alertd_session=v; Max-Age=60; Path=/; HttpOnly; SameSite=Strict; Secure"
    assert "Acknowledge as alice" in page.text and logout.status_code == 303
    assert "Max-Age=0" in logout.headers["set-cookie"] and "Acknowledge as" not in after.text


def test_a_form_without_login_or_csrf_changes_nothing_and_answers_403(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        out = {"anonymous": await client.post("/incidents/1/ack", data={"comment": "x"})}
        out["anonymous_silence"] = await client.post("/silences", data={"matchers": "host=a", "duration": "1h"})
        await login(client)
        out["no_csrf"] = await client.post("/incidents/1/ack", data={"comment": "x"})
        out["wrong_csrf"] = await client.post("/incidents/1/resolve", data={"comment": "x", "csrf": "A" * 43})
        other = httpx.AsyncClient(base_url=str(client.base_url))
        await login(other, name="mallory")
        foreign = csrf_of((await other.get("/incidents/1")).text)  # a token of another session
        await other.aclose()
        out["foreign_csrf"] = await client.post("/incidents/1/ack", data={"csrf": foreign})
        out["json"] = await client.post("/incidents/1/ack", json={"csrf": csrf_of((await client.get("/")).text)})
        out["store"] = (daemon.store.incidents.get(1), daemon.store.silences.rows(),
                        [e.event for e in daemon.store.history.of(1)])
        return out

    out = run(write_config, registry, clock, tmp_path, cfg(), scenario)
    for name in ("anonymous", "anonymous_silence", "no_csrf", "wrong_csrf", "foreign_csrf"):
        assert out[name].status_code == 403, name
        assert "was not carried out" in out[name].text
    assert out["json"].status_code == 415
    incident, silences, events = out["store"]
    assert incident.acknowledged_at is None and incident.state == "firing" and silences == []
    assert events == ["pending", "fired", "notified"]


def test_acting_from_the_pages_names_the_actor_in_the_history(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        await login(client, name="alice")
        csrf = csrf_of((await client.get("/incidents/1")).text)
        ack = await client.post("/incidents/1/ack", data={"csrf": csrf, "comment": "on it"})
        shown = await client.get(ack.headers["location"])
        again = await client.post("/incidents/1/ack", data={"csrf": csrf})
        preview = await client.post("/silences/new", data={"matchers": 'host="a"\nrule=cpu_high', "duration": "2h"})
        add = await client.post("/silences", data={"csrf": csrf, "matchers": 'rule="cpu_high"\nhost="a"',
                                                    "duration": "2h", "comment": "deploy",
                                                    "return_to": "/incidents/1"})
        bad = await client.post("/silences", data={"csrf": csrf, "matchers": 'host=~".*"', "duration": "2h"})
        (silence,) = daemon.store.silences.rows()
        listed = await client.get("/silences")
        extend = await client.post(f"/silences/{silence['id']}/extend", data={"csrf": csrf, "duration": "1d"})
        expire = await client.post(f"/silences/{silence['id']}/expire", data={"csrf": csrf})
        unack = await client.post("/incidents/1/unack", data={"csrf": csrf})
        resolve = await client.post("/incidents/1/resolve", data={"csrf": csrf, "comment": "fixed"})
        page = await client.get("/incidents/1")
        history = [(e.event, e.actor) for e in daemon.store.history.of(1)]
        return ack, shown, again, preview, add, bad, listed, extend, expire, unack, resolve, page, history, silence

    ack, shown, again, preview, add, bad, listed, extend, expire, unack, resolve, page, history, silence = run(
        write_config, registry, clock, tmp_path, cfg(), scenario)
    assert ack.status_code == 303 and ack.headers["location"] == "/incidents/1?done=ack"
    assert "Acknowledged: repeat notices stop" in shown.text and "Acknowledged by <b>alice</b>" in shown.text
    assert "“on it”" in shown.text and again.status_code == 303  # already acknowledged: no change, no error
    assert preview.status_code == 200 and "Matches 1 open incident" in preview.text and "#1 cpu_high" in preview.text
    assert add.status_code == 303 and add.headers["location"] == "/incidents/1?done=silenced"
    assert bad.status_code == 400 and "would silence everything" in bad.text
    assert silence["created_by"] == "alice" and silence["comment"] == "deploy"
    assert re.search(r'matches 1 open incident <a href="/incidents/1">#1</a></div>', listed.text)
    assert extend.headers["location"] == "/silences?done=extended" and expire.headers["location"] == "/silences?done=expired"
    assert resolve.status_code == 303
    mine = [(e, a) for e, a in history if a is not None]
    assert mine == [("acknowledged", "alice"), ("silence_added", "alice"), ("silence_extended", "alice"),
                    ("silence_expired", "alice"), ("unacknowledged", "alice"), ("resolved", "alice")]
    assert "<td data-label=\"by\">alice</td>" in page.text and "comment: fixed" in page.text


def test_a_proxy_header_login_is_believed_only_from_trusted_proxies(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        trusted = await client.get("/incidents/1", headers={"X-Forwarded-User": "carol"})
        ack = await client.post("/incidents/1/ack", headers={"X-Forwarded-User": "carol"},
                                data={"csrf": csrf_of(trusted.text), "comment": "proxy"})
        no_header = await client.post("/incidents/1/resolve", data={"csrf": csrf_of(trusted.text)})
        return trusted, ack, no_header, daemon.store.incidents.get(1)

    text = cfg({"login": {"method": "header", "user_header": "X-Forwarded-User", "trusted_proxies": ["127.0.0.1"]}})
    trusted, ack, no_header, incident = run(write_config, registry, clock, tmp_path, text, scenario)
    assert "Acknowledge as carol" in trusted.text and ack.status_code == 303
    assert incident.acknowledged_by == "carol" and incident.state == "firing" and no_header.status_code == 403

    untrusted = cfg({"login": {"method": "header", "trusted_proxies": ["10.0.0.0/8"]}})

    async def scenario2(daemon, client):
        return await client.get("/incidents/1", headers={"X-Forwarded-User": "carol"})

    assert "Acknowledge as" not in run(write_config, registry, clock, tmp_path, untrusted, scenario2).text


def test_basic_login_and_pages_that_need_a_login(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        page = await client.get("/incidents")
        prompt = await client.get("/login?next=/incidents")
        wrong = await client.get("/login", auth=("dave", "wrong-password-0000"))
        ok = await client.get("/login?next=/incidents", auth=("dave", TOKEN))
        client.cookies.set("alertd_session", ok.headers["set-cookie"].split(";")[0].split("=", 1)[1])
        after = await client.get("/incidents")
        metrics = await client.get("/metrics")
        return page, prompt, wrong, ok, after, metrics

    text = cfg({"login": {"method": "basic", "pages": "login"}})
    page, prompt, wrong, ok, after, metrics = run(write_config, registry, clock, tmp_path, text, scenario)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fincidents"
    assert prompt.status_code == 401 and prompt.headers["www-authenticate"].startswith("Basic")
    assert wrong.status_code == 401 and ok.status_code == 303 and ok.headers["location"] == "/incidents"
    assert after.status_code == 200 and "dave" in after.text
    assert metrics.status_code == 200  # the API and /metrics stay as they were


def test_a_new_token_ends_the_sessions_made_with_the_old_one(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        await login(client)
        before = await client.get("/")
        daemon.config = load_config(write_config(cfg({"token": "another-token-0123456789"})), daemon.registry,
                                    environ={})
        after = await client.get("/")
        return before, after

    before, after = run(write_config, registry, clock, tmp_path, cfg(), scenario)
    assert "log out" in before.text and "log out" not in after.text


def test_forms_are_parsed_with_limits(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        await login(client)
        csrf = csrf_of((await client.get("/")).text)
        many = "&".join(f"f{i}=x" for i in range(150)) + f"&csrf={csrf}"
        return (await client.post("/incidents/1/ack", content=many,
                                  headers={"content-type": "application/x-www-form-urlencoded"}),
                await client.post("/incidents/1/ack", content=b"csrf=" + csrf.encode() + b"&comment=%ff",
                                  headers={"content-type": "application/x-www-form-urlencoded"}),
                await client.post("/incidents/1/ack", data={"csrf": csrf, "comment": "x" * 9000}),
                daemon.store.incidents.get(1))

    many, bad_utf8, long_value, incident = run(write_config, registry, clock, tmp_path, cfg(), scenario)
    assert many.status_code == 400 and "more than 100 fields" in many.text
    assert bad_utf8.status_code == 400 and "not valid UTF-8" in bad_utf8.text
    assert long_value.status_code == 400 and incident.acknowledged_at is None


def test_the_header_badge_turns_amber_then_red_when_sources_or_rules_fail(write_config, registry, clock, tmp_path):
    text = cfg(rules=[rule("cpu_high"), {"name": "broken", "source": "app", "series": "cpu",
                                         "detector": {"type": "test_raising"}}])

    async def scenario(daemon, client):
        ok = await client.get("/rules")
        daemon.engine.source_failed("app", "connection refused")
        amber = await client.get("/")
        daemon.sources["app"].pending = [cpu("a", clock.now() + 5, 10)]
        await daemon.poll("app")
        red = await client.get("/")
        return ok, amber, red

    ok, amber, red = run(write_config, registry, clock, tmp_path, text, scenario, feed=False)
    assert '<span class="badge warn" id="health">' in ok.text  # a rule without data yet
    assert '<span class="badge warn" id="health">' in amber.text
    assert "source app failed 1 poll in a row: connection refused" in amber.text
    assert '<span class="badge bad" id="health">' in red.text
    assert "rule broken: the detector failed: ValueError: detector bug" in red.text


def test_the_route_form_answers_as_routes_test(write_config, registry, clock, tmp_path):
    routes = {"receiver": "rec", "group_by": ["rule"], "routes": [
        {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
        {"match_re": {"host": "a|b"}, "receiver": "team"}]}
    text = cfg(receivers={"rec": [{"type": "test_record"}], "pager": [{"type": "test_record"}],
                          "team": [{"type": "test_record"}]}, routes=routes)

    async def scenario(daemon, client):
        return (await client.get("/routes?labels=rule%3Dcpu_high+severity%3Dcritical+host%3Da"),
                await client.get("/routes?labels=severity%3D~x"))

    answer, bad = run(write_config, registry, clock, tmp_path, text, scenario, feed=False)
    assert '<b class="receivers">pager,team</b>' in answer.text
    assert answer.text.count("takes it") == 2 and bad.status_code == 400


def test_charts_have_axes_and_say_their_time_range(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        for i in range(1, 30):
            clock.advance(60)
            daemon.sources["app"].pending = [cpu("a", clock.now(), 95 if i > 20 else 40 + i % 5)]
            await daemon.poll("app")
        return await client.get("/incidents/1"), await client.get("/rules/cpu_high")

    incident, rule_page = run(write_config, registry, clock, tmp_path, cfg(), scenario)
    for html in (incident.text, rule_page.text):
        svg = html[html.index('<svg class="chart"'):]
        svg = svg[:svg.index("</svg>")]
        assert svg.count('class="tick"') >= 4  # value and time axes
        assert re.search(r'class="range">\d\d:\d\d to \d\d:\d\d UTC \(\d+m(\d+s)?\)</text>', svg)
        assert 'fill="#dc2626"' in svg  # the detections
    assert "expected limit 90" in incident.text  # the expected line of the detector


@pytest.mark.parametrize("kind", ["text/plain", "multipart/form-data; boundary=x"])
def test_forms_take_only_urlencoded_bodies(write_config, registry, clock, tmp_path, kind):
    async def scenario(daemon, client):
        await login(client)
        return await client.post("/incidents/1/ack", content=b"csrf=x", headers={"content-type": kind})

    assert run(write_config, registry, clock, tmp_path, cfg(), scenario).status_code == 415


def test_the_basic_auth_user_of_the_api_logs_in_too(write_config, registry, clock, tmp_path):
    async def scenario(daemon, client):
        wrong_user = await login(client, name="mallory", token="ops-password-0123456789")
        ok = await login(client, name="ops", token="ops-password-0123456789")
        page = await client.get("/incidents/1")
        return wrong_user, ok, page

    text = cfg({"basic_auth": {"username": "ops", "password": "ops-password-0123456789"}})
    wrong_user, ok, page = run(write_config, registry, clock, tmp_path, text, scenario)
    assert wrong_user.status_code == 403 and ok.status_code == 303
    assert "Acknowledge as ops" in page.text


def test_the_silences_list_counts_each_silences_open_incidents_as_a_full_check_would():
    import random

    from alertd.http.pages.silences import open_matches
    from alertd.routing.silences import Silence, parse_silence_matchers
    from alertd.routing.tree import routing_labels

    rnd = random.Random(19)
    values = ["", "a", "b", "c"]
    open_now = []
    for i in range(300):
        labels = {k: v for k in ("host", "dc", "team") if (v := rnd.choice(values))}
        open_now.append((i, routing_labels(labels, rnd.choice(["r1", "r2"]), rnd.choice(["", "critical"]))))
    silences = []
    for n in range(200):
        lines = [f'{rnd.choice(["host", "dc", "team", "rule", "severity"])}{rnd.choice(["=", "!=", "=~", "!~"])}'
                 f'"{rnd.choice(values + ["r1", "critical", "a|b", ".*"])}"' for _ in range(rnd.randint(1, 3))]
        silences.append(Silence(f"s{n}", parse_silence_matchers(lines), 0.0, 1.0, "t", ""))
    got = open_matches(silences, open_now)
    for s in silences:
        assert got[s.id] == [i for i, labels in open_now if s.matches(labels)], [str(m) for m in s.matchers]
    assert sum(map(len, got.values())) > 100  # the draw matches plenty
