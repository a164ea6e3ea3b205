"""An early warning where people look: the rule page and the warning's incident page draw the
forecast (path, band, line, crossing), the API gives it as data, and the notice says when."""

from __future__ import annotations

import asyncio
import re
import sys
import time

import httpx
from configs import NEVER, config_text

from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.model import Sample, make_labels

TOKEN = "s3cret-api-token-0123456789"


def test_an_early_warning_is_drawn_on_the_rule_and_incident_pages_and_served_as_data(
        write_config, registry, clock, tmp_path):
    text = config_text(
        http={"listen": "127.0.0.1:0", "token": TOKEN},
        sources={"app": {"type": "test_list", "cron": NEVER}},
        rules=[{"name": "disk_full_soon", "source": "app", "series": "disk_used",
                "detector": {"type": "forecast", "model": "trend", "range": "1h",
                             "will_cross": {"above": 90, "within": "2h"}},
                "annotations": {"summary": "disk fills up"}}],
        receivers={"rec": [{"type": "test_record"}]}, routes={"receiver": "rec", "group_wait": "0s"})
    config = load_config(write_config(text), registry, environ={})

    sent = sys.modules[registry.get("notifier", "test_record").__module__].SENT
    sent.clear()

    async def main():
        daemon = Daemon(config, registry, store_path=tmp_path / "pages.db", clock=clock)
        await daemon.open_http()
        await daemon.start()
        try:
            labels = make_labels({"mount": "/var"})
            for i in range(40):  # 50 % rising 0.5 a minute: 90 in 80 min from the last point
                clock.advance(60)
                daemon.sources["app"].pending = [Sample("disk_used", labels, clock.now(),
                                                                  30.5 + 0.5 * i + (0.3 if i % 2 else -0.3))]
                await daemon.poll("app")
                await daemon.pass_once()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.web.port}") as client:
                rule_page = await client.get("/rules/disk_full_soon")
                incident_page = await client.get("/incidents/1")
                data = await client.get("/api/v1/rules/disk_full_soon/forecast",
                                        headers={"Authorization": f"Bearer {TOKEN}"})
                missing = await client.get("/api/v1/rules/nope/forecast", headers={"Authorization": f"Bearer {TOKEN}"})
            return rule_page, incident_page, data, missing, clock.now()
        finally:
            await daemon.drain()

    rule_page, incident_page, data, missing, now = asyncio.run(main())
    expected_at = now + (90 - 50.0) / 0.5 * 60  # the line is at 50 now, rising 0.5 a minute
    assert data.status_code == 200 and missing.status_code == 404
    (view,) = data.json()["forecasts"]
    assert abs(view["crossing_at"] - expected_at) < 180
    when = time.strftime("%H:%M UTC", time.gmtime(view["crossing_at"]))
    for page in (rule_page, incident_page):
        assert page.status_code == 200
        html = page.text
        assert 'class="fpath"' in html and "forecast by linear trend over 1h</title></polyline>" in html
        assert 'class="fband"' in html and 'class="fline"' in html and "<title>line 90</title>" in html
        assert f"expected to reach 90 at {when}" in html
    assert re.search(r"expected to reach 90 in about 1 h (1[5-9]|2[0-5])", incident_page.text)  # the reason
    assert view["key"] == 'disk_used{mount="/var"}' and view["line"] == 90 and view["below"] is False
    assert view["ts"][0] >= now and len(view["ts"]) == len(view["mean"]) == len(view["lower"]) == len(view["upper"])
    assert view["mean"][-1] > 90 and all(lo <= m <= hi for lo, m, hi in zip(view["lower"], view["mean"], view["upper"]))
    # the notice says when, as the incident page does
    firing = [n for n in sent if n.kind == "firing"]
    assert firing, [n.kind for n in sent]
    assert re.search(r'disk_used \d+(\.\d+)?, expected to reach 90 in about \d+ h \d+ \(at \d\d:\d\d UTC\), '
                     "forecast by linear trend over 1h", firing[0].incidents[0].reason)
    assert firing[0].incidents[0].crossing_at is not None
