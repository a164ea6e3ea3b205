"""A real alertd with real data, and headless Chromium driving its pages (Playwright).

`OnCallShop(tmp_path)` writes a config (a push source, two rules, routes, a token), starts
`alertd run` as a subprocess, pushes samples that open incidents, and waits until alertd
shows them (bounded polling of an external event, no timers). `chromium(user_data_dir)`
launches Debian's Chromium (scripts/system-deps.sh installs it; Playwright's own browser
download is not used) with a fresh profile and the flags that keep it off the network.
Used by tests/test_browser.py and by bench/screenshots.py.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
from configs import config_text
from daemon_process import DaemonProcess
from servers import free_ports

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "browser-test-token-0123456789abcdef"


def chromium(playwright, user_data_dir, **options):
    """A persistent context of Debian's Chromium with a fresh profile."""
    assert Path(CHROMIUM).exists() or shutil.which("chromium"), \
        "Debian's chromium is missing: run scripts/system-deps.sh"
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, **options)


def shop_config(store: Path, port: int, push_port: int) -> str:
    url = f"http://127.0.0.1:{port}"
    return config_text(
        store=str(store),
        http={"listen": f"127.0.0.1:{port}", "token": TOKEN, "external_url": url},
        sources={"shop": {"type": "push", "port": push_port, "every": "1s"}},
        rules=[
            {"name": "payment_success_drop", "source": "shop", "series": 'payment_success_ratio{provider=~".+"}',
             "detector": {"type": "threshold", "below": 0.9, "clear_below": 0.95}, "severity": "critical",
             "annotations": {"summary": "Payment success {{ $value | humanizePercentage }} at {{ $labels.provider }}",
                             "runbook_url": "https://runbooks.example.com/payments/{{ $labels.provider }}"}},
            {"name": "orders_anomaly", "source": "shop", "series": "orders_per_minute",
             "detector": {"type": "zscore", "window": 60, "min_history": 60, "threshold": 6}, "severity": "warning"},
            {"name": "checkout_latency_high", "source": "shop", "series": "checkout_latency_p95_ms",
             "detector": {"type": "threshold", "above": 800, "clear_above": 600}, "severity": "warning",
             "annotations": {"summary": "Checkout p95 {{ $value }} ms in {{ $labels.region }}"}},
        ],
        receivers={"console": [{"type": "console", "stream": "stderr"}],
                   "payments": [{"type": "console", "stream": "stderr"}],
                   "oncall": [{"type": "console", "stream": "stderr"}]},
        routes={"receiver": "console", "group_by": ["rule"], "group_wait": "0s", "group_interval": "5s",
                "routes": [{"matchers": ['severity="critical"'], "receiver": "oncall", "continue": True},
                           {"match_re": {"provider": "stripe|adyen"}, "receiver": "payments",
                            "group_by": ["provider"]}]},
        inhibit_rules=[{"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
                        "equal": ["region"]}])


class OnCallShop:
    """The daemon, its URL, and pushing samples to it (see the module docstring)."""

    def __init__(self, tmp_path: Path):
        self.port, self.push_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = tmp_path / "alertd.yaml"
        self.config.write_text(shop_config(tmp_path / "alertd.db", self.port, self.push_port))
        self.daemon = DaemonProcess(self.config)

    def __enter__(self) -> "OnCallShop":
        self.daemon.start()
        self.daemon.wait_event("daemon_ready", timeout=60)
        return self

    def __exit__(self, *exc) -> None:
        self.daemon.stop()

    def push(self, samples: list[dict]) -> None:
        body = "\n".join(json.dumps(s) for s in samples)
        r = httpx.post(f"http://127.0.0.1:{self.push_port}/push", content=body,
                       headers={"content-type": "application/x-ndjson"}, timeout=10)
        assert r.status_code == 202, r.text

    def feed(self, minutes: int = 30, outage_from: int = 20) -> None:
        """`minutes` of one-minute samples ending now: payments fall at stripe and adyen and
        checkout latency rises in eu for the last minutes; orders (a rule that wants an hour of
        history) are still warming up."""
        now = time.time()
        for m in range(minutes):
            ts = now - (minutes - 1 - m) * 60
            bad = m >= outage_from
            samples = [{"name": "payment_success_ratio", "labels": {"provider": p, "region": "eu"}, "ts": ts,
                        "value": (0.42 - 0.01 * (m - outage_from) if p == "stripe" else 0.31)
                        if bad and p in ("stripe", "adyen") else 0.97 + 0.002 * (m % 5)}
                       for p in ("stripe", "adyen", "paypal")]
            samples.append({"name": "checkout_latency_p95_ms", "labels": {"region": "eu"}, "ts": ts,
                            "value": 1250.0 if bad else 420.0 + 10 * (m % 4)})
            samples.append({"name": "checkout_latency_p95_ms", "labels": {"region": "us"}, "ts": ts,
                            "value": 380.0 + 5 * (m % 3)})
            samples.append({"name": "orders_per_minute", "labels": {}, "ts": ts, "value": 120.0 + 7 * (m % 6)})
            self.push(samples)
        self.wait_open(3)

    def api(self, path: str):
        return httpx.get(self.url + path, timeout=10).json()

    def wait_open(self, n: int, timeout: float = 30.0) -> list[dict]:
        """Until alertd shows `n` open incidents (polling its API: the daemon works on its own time)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.api("/api/v1/incidents")["incidents"]
            if len(found) >= n:
                return found
            assert time.monotonic() < deadline, f"alertd shows {len(found)} open incidents, not {n}"
            time.sleep(0.2)
