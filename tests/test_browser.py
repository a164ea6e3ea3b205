"""On-call in a real browser: headless Chromium (Playwright) against a real alertd with real data.

The journey of issue 19: log in, filter incidents, open one, acknowledge it with a comment,
silence it with the preview showing the right matches, expire the silence, run a route test;
the incident's history names the actor of every change. And the refusals: a form posted
without a login, or without its CSRF token, answers 403 and changes nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from browser import TOKEN, OnCallShop, chromium
from daemon_process import ROOT
from playwright.sync_api import expect, sync_playwright


@pytest.fixture
def shop(tmp_path):
    with OnCallShop(tmp_path) as s:
        s.feed()
        yield s


def test_on_call_journey_in_chromium(shop, tmp_path):
    with sync_playwright() as p:
        browser = chromium(p, tmp_path / "profile", viewport={"width": 1100, "height": 900})
        page = browser.new_page()
        page.set_default_timeout(15_000)

        # reads need no login; the header says how alertd is
        page.goto(shop.url + "/incidents")
        expect(page.locator("h1")).to_contain_text("Incidents")
        expect(page.locator("table.incidents tbody tr")).to_have_count(3)

        # log in (name + API token), and come back to where we were
        page.click("text=log in")
        page.fill("input[name=name]", "alice")
        page.fill("input[name=token]", TOKEN)
        page.click("button:has-text('Log in')")
        expect(page).to_have_url(re.compile(r"/incidents$"))
        expect(page.locator(".who")).to_contain_text("alice")

        # filter: critical, then one provider
        page.select_option("select[name=severity]", "critical")
        page.fill("input[name=matchers]", 'provider="stripe"')
        page.click("button:has-text('Filter')")
        rows = page.locator("table.incidents tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("provider=stripe")
        expect(rows.first).to_contain_text("Payment success 33% at stripe")  # the rendered annotation

        # open it: the chart has axes and says its time range
        rows.first.locator("a").first.click()
        expect(page.locator("h1")).to_contain_text("payment_success_drop")
        incident_url = page.url
        incident_id = int(incident_url.rsplit("/", 1)[1])
        expect(page.locator(".wide-only svg.chart .range")).to_contain_text("UTC (")
        assert page.locator(".wide-only svg.chart .tick").count() >= 4

        # acknowledge it with a comment
        page.fill("form[action$='/ack'] input[name=comment]", "looking at stripe")
        page.click("button:has-text('Acknowledge as alice')")
        expect(page.locator(".flash.ok")).to_contain_text("Acknowledged")
        expect(page.locator(".acked")).to_contain_text("Acknowledged by alice")
        expect(page.locator(".acked")).to_contain_text("looking at stripe")

        # silence it: the form is filled from the incident; the preview shows what it matches
        page.click("text=Silence this…")
        expect(page.locator("textarea[name=matchers]")).to_have_value(
            'rule="payment_success_drop"\nprovider="stripe"\nregion="eu"')
        preview = page.locator("#preview")
        expect(preview).to_contain_text("Matches 1 open incident")
        expect(preview.locator("li")).to_have_count(1)
        expect(preview).to_contain_text(f"#{incident_id} payment_success_drop")
        # the live preview (a few lines of script) follows the matchers as they are typed
        page.fill("textarea[name=matchers]", 'rule="payment_success_drop"')
        expect(preview).to_contain_text("Matches 2 open incidents")
        page.fill("textarea[name=matchers]", 'severity=~"critical|warning"\nregion="eu"')
        expect(preview).to_contain_text("Matches 3 open incidents")
        page.fill("textarea[name=matchers]", 'rule="payment_success_drop"\nprovider="stripe"')
        expect(preview).to_contain_text("Matches 1 open incident")
        page.fill("input[name=comment]", "stripe is down, we know")
        page.click("button:has-text('Silence as alice')")
        expect(page).to_have_url(re.compile(rf"/incidents/{incident_id}\?done=silenced$"))
        expect(page.locator(".flash.ok")).to_contain_text("Silence added")
        expect(page.locator(".cards").first).to_contain_text("stripe is down, we know")

        # expire the silence
        page.goto(shop.url + "/silences")
        silence = page.locator("li.silence").first
        expect(silence).to_contain_text('provider="stripe"')
        silence.locator("button:has-text('Expire now')").click()
        expect(page.locator(".flash.ok")).to_contain_text("Silence expired")
        expect(page.locator("li.silence")).to_have_count(0)

        # who gets an alert with these labels? the same answer as `alertd routes test`
        page.goto(shop.url + "/routes")
        labels = "rule=payment_success_drop severity=critical provider=stripe"
        page.fill("input[name=labels]", labels)
        page.click("button:has-text('Who gets it?')")
        cli = subprocess.run([sys.executable, "-m", "alertd.cli.entry", "routes", "test", "-c", str(shop.config),
                              *labels.split()], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert cli.returncode == 0, cli.stderr
        expect(page.locator(".receivers")).to_have_text(cli.stdout.splitlines()[0])
        assert cli.stdout.splitlines()[0] == "oncall,payments"
        expect(page.locator(".tree .matched")).to_have_count(2)

        # the incident's history names the actor of every change
        page.goto(incident_url)
        history = page.locator("table.history tbody tr")
        by_event = {}
        for i in range(history.count()):
            cells = history.nth(i).locator("td")
            by_event.setdefault(cells.nth(1).inner_text().strip(), set()).add(cells.nth(2).inner_text().strip())
        assert by_event["acknowledged"] == {"alice"}
        assert by_event["silence added"] == {"alice"} and by_event["silence expired"] == {"alice"}
        assert by_event["fired"] == {"alertd"}
        browser.close()

    shown = shop.api(f"/api/v1/incidents/{incident_id}")
    assert shown["incident"]["acknowledged_by"] == "alice" and shown["incident"]["ack_comment"] == "looking at stripe"
    actors = {(e["event"], e["actor"]) for e in shown["history"] if e["actor"]}
    assert actors == {("acknowledged", "alice"), ("silence_added", "alice"), ("silence_expired", "alice")}


def test_forms_without_login_or_csrf_answer_403_and_change_nothing(shop, tmp_path):
    incident = shop.api("/api/v1/incidents")["incidents"][0]
    target = f"{shop.url}/incidents/{incident['id']}"
    with sync_playwright() as p:
        browser = chromium(p, tmp_path / "profile")
        page = browser.new_page()
        # without a login: the page offers no forms, and a posted form is refused
        page.goto(target)
        expect(page.locator("#actions")).to_contain_text("Log in to acknowledge")
        anonymous = page.request.post(target + "/ack", form={"comment": "sneaky"})
        assert anonymous.status == 403 and "log in to change anything" in anonymous.text()
        # logged in, but the form lacks its token (as a page of another site would send it)
        page.goto(shop.url + "/login")
        page.fill("input[name=name]", "bob")
        page.fill("input[name=token]", TOKEN)
        page.click("button:has-text('Log in')")
        expect(page.locator(".who")).to_contain_text("bob")
        for path, form in (("/ack", {"comment": "no token"}), ("/resolve", {"csrf": "forged"})):
            answer = page.request.post(target + path, form=form)
            assert answer.status == 403 and "security token" in answer.text()
        silence = page.request.post(shop.url + "/silences", form={"matchers": "provider=stripe", "duration": "1h"})
        assert silence.status == 403
        browser.close()
    after = shop.api(f"/api/v1/incidents/{incident['id']}")
    assert after["incident"]["acknowledged_at"] is None and after["incident"]["state"] == incident["state"]
    assert not [e for e in after["history"] if e["actor"]]
    assert httpx.get(shop.url + "/api/v1/silences").json()["silences"] == []
