"""The real daemon as a subprocess: reload on SIGHUP, drain on SIGTERM, sd_notify, bad ports.

The daemon reads values from a JSON file (the `test_file` fixture source) and notifies a real
local HTTP server through the `slack` notifier. The tests wait on its log lines and on the
server; they never sleep for the daemon's own timers.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap

import httpx
import pytest
from configs import config_text, rule
from daemon_process import ROOT, DaemonProcess, NotifySocket
from servers import RecordingHTTPServer

PLUGINS = ROOT / "tests" / "plugins"

def base(store, data, hook, shutdown: str, rules=(), sources=None) -> str:
    """The site's config: one file source, one rule, a Slack receiver on the test's server."""
    return config_text(
        plugin_dirs=[str(PLUGINS)], store=str(store), shutdown_timeout=shutdown, http={"listen": "127.0.0.1:0"},
        sources={"app": {"type": "test_file", "path": str(data), "every": "200ms", "backfill": False},
                 **(sources or {})},
        rules=[rule("high_cpu"), *rules],
        receivers={"hook": [{"type": "slack", "webhook_url": f"{hook}/hook"}]},
        routes={"receiver": "hook", "group_by": ["..."], "group_wait": "0s", "group_interval": "1s"})


EXTRA = [rule("disk_full", source="disk", series="disk_used", limit=80)]



@pytest.fixture
def site(tmp_path):
    """Writes config and data files; `web` is the receiving HTTP server."""
    class Site:
        def __init__(self):
            self.web = RecordingHTTPServer().start()
            self.config = tmp_path / "alertd.yaml"
            self.store = tmp_path / "alertd.db"

        def data(self, name, rows):
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(rows))
            return path

        def write(self, extra_rules=(), extra_sources=None, shutdown="5s", text=None):
            if text is None:
                text = base(self.store, tmp_path / "app.json", self.web.url, shutdown, extra_rules, extra_sources)
            self.config.write_text(text)
            return self.config

        def outbox(self):
            with sqlite3.connect(self.store) as db:
                return db.execute("SELECT status, kind, count(*) FROM outbox GROUP BY status, kind "
                                  "ORDER BY status, kind").fetchall()

        def incidents(self):
            with sqlite3.connect(self.store) as db:
                return db.execute("SELECT id, rule, state, count FROM incidents ORDER BY id").fetchall()

    s = Site()
    yield s
    s.web.close()


def test_sighup_with_a_good_file_adds_a_rule_and_keeps_the_open_incident(site):
    site.data("app", [["cpu", {}, 95]])
    site.data("disk", [["disk_used", {}, 99]])
    site.write()
    with DaemonProcess(site.config) as daemon:
        fired = daemon.wait_event("incident_fired", rule="high_cpu")
        site.web.wait_for(1)
        disk = {"disk": {"type": "test_file", "path": str(site.config.parent / "disk.json"), "every": "200ms"}}
        site.write(extra_rules=EXTRA, extra_sources=disk)
        mark = daemon.mark()
        daemon.signal(signal.SIGHUP)
        reloaded = daemon.wait_event("config_reloaded", after=mark)
        assert reloaded["sources_added"] == ["disk"] and reloaded["rules_added"] == ["disk_full"]
        assert "rules_changed" not in reloaded  # high_cpu kept its runtime
        daemon.wait_event("incident_fired", rule="disk_full", after=mark)
        site.web.wait_for(2)
        assert daemon.stop() == 0
    incidents = site.incidents()
    high = [i for i in incidents if i[1] == "high_cpu"]
    assert len(high) == 1 and high[0][0] == fired["incident"] and high[0][2] == "firing"
    assert [i[1] for i in incidents if i[2] == "firing"] == ["high_cpu", "disk_full"]
    assert len(site.web.requests) == 2  # one notice each: the reload did not re-fire high_cpu


def test_sighup_with_a_bad_file_keeps_the_old_config_and_raises_a_meta_incident(site):
    site.data("app", [["cpu", {}, 95]])
    site.write()
    with DaemonProcess(site.config) as daemon:
        port = daemon.http_port()
        daemon.wait_event("incident_fired", rule="high_cpu")
        good = site.config.read_text()
        site.config.write_text(good.replace("limit: 90", "limt: 90").replace("every: 200ms", "every: soon"))
        mark = daemon.mark()
        daemon.signal(signal.SIGHUP)
        failed = daemon.wait_event("config_reload_failed", after=mark)
        assert failed["errors"] == 2
        problems = [e["problem"] for e in daemon.events[mark:] if e.get("event") == "config_problem"]
        assert any('alertd.yaml:6: sources.app.every: \'soon\' is not a duration' in p for p in problems)
        assert any('alertd.yaml:8: rules[high_cpu].detector.limt: unknown key "limt"; did you mean "limit"?' in p
                   for p in problems)
        meta = daemon.wait_event("incident_fired", rule="alertd_config_reload_failed", after=mark)
        assert "2 errors" in meta["reason"]
        site.web.wait_for(2)  # the meta-incident reached the receiver like any other
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert 'alertd_config_reloads_total{result="failure"} 1.0' in metrics
        assert "alertd_config_last_reload_successful 0.0" in metrics
        # The old config still runs: the old rule resolves when the value drops.
        site.data("app", [["cpu", {}, 10]])
        daemon.wait_event("incident_resolved", rule="high_cpu", after=mark)
        # A fixed file reloads and resolves the meta-incident.
        site.config.write_text(good)
        mark = daemon.mark()
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config_reloaded", after=mark)
        daemon.wait_event("incident_resolved", rule="alertd_config_reload_failed", after=mark)
        assert daemon.stop() == 0


def test_sigterm_with_pending_notices_sends_them_all_before_exit(site):
    site.data("app", [["cpu", {"host": h}, 95] for h in "abc"])
    site.write()
    site.web.hold()  # the receiver takes its time: the first send blocks
    with DaemonProcess(site.config) as daemon:
        for host in "abc":
            daemon.wait_event("incident_fired", rule="high_cpu", labels={"host": host})
        site.web.wait_for(1)
        daemon.signal(signal.SIGTERM)
        daemon.wait_event("daemon_stopping")
        site.web.release()
        assert daemon.wait_exit() == 0
    assert len(site.web.wait_for(3)) == 3
    assert site.outbox() == [("sent", "firing", 3)]


def test_sigterm_leaves_what_it_cannot_send_in_the_outbox_for_the_next_start(site):
    site.data("app", [["cpu", {"host": h}, 95] for h in "ab"])
    site.write(shutdown="1s")
    site.web.hold()
    with DaemonProcess(site.config) as daemon:
        daemon.wait_event("incident_fired", labels={"host": "b"})
        site.web.wait_for(1)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_event("drain_timeout")["outbox_pending"] == 2
        assert daemon.wait_exit() == 0
    assert site.outbox() == [("pending", "firing", 2)]
    site.web.release()
    site.data("app", [])  # nothing new: only the outbox is left to deliver
    with DaemonProcess(site.config) as daemon:
        assert daemon.wait_event("daemon_started")["outbox_pending"] == 2
        site.web.wait_for(3)  # the interrupted send is repeated (at least once), then the other
        daemon.wait_event("notification_sent", after=0)
        assert daemon.stop() == 0
    assert site.outbox() == [("sent", "firing", 2)]


def test_a_second_sigint_exits_at_once_without_losing_the_outbox(site):
    site.data("app", [["cpu", {}, 95]])
    site.write(shutdown="60s")
    site.web.hold()
    with DaemonProcess(site.config) as daemon:
        daemon.wait_event("incident_fired")
        site.web.wait_for(1)
        daemon.signal(signal.SIGINT)
        daemon.wait_event("daemon_stopping")
        daemon.signal(signal.SIGINT)
        assert daemon.wait_exit(timeout=5) == 130
        daemon.wait_event("daemon_stopped")
    assert site.outbox() == [("pending", "firing", 1)]


def test_notify_socket_gets_ready_reloading_watchdog_and_stopping_in_order(site, tmp_path):
    site.data("app", [["cpu", {}, 10]])
    site.write()
    notify = NotifySocket(tmp_path / "notify.sock")
    token = "a-test-token-0123456789"
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000", "ALERTD_API_TOKEN": token}
    try:
        with DaemonProcess(site.config, env) as daemon:
            port = daemon.http_port()
            notify.wait_for("READY", "1")
            notify.wait_for("WATCHDOG", "1")
            status = notify.wait_for("STATUS", contains="last tick")["STATUS"]
            assert status.startswith("0 open incidents (0 firing, 0 pending), last tick ")
            daemon.signal(signal.SIGHUP)
            reloading = notify.wait_for("RELOADING", "1")
            assert int(reloading["MONOTONIC_USEC"]) > 0
            notify.wait_for("READY", "1")
            # The API's reload goes through the same main loop, with the same notifications.
            answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/reload",
                                headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert answer.status_code == 200 and answer.json()["ok"] is True
            notify.wait_for("READY", "1")
            daemon.signal(signal.SIGTERM)
            notify.wait_for("STOPPING", "1")
            assert daemon.wait_exit() == 0
    finally:
        notify.close()
    states = [k for m in notify.messages for k in m if k in ("READY", "RELOADING", "STOPPING", "WATCHDOG")]
    lifecycle = [k for k in states if k != "WATCHDOG"]
    assert lifecycle == ["READY", "RELOADING", "READY", "RELOADING", "READY", "STOPPING"]
    first_ready, stopping = states.index("READY"), states.index("STOPPING")
    assert "WATCHDOG" in states[first_ready:stopping]
    assert "WATCHDOG" not in states[:first_ready]


def test_a_port_in_use_is_one_clear_startup_error(site):
    site.data("app", [])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        site.write(text=textwrap.dedent(f"""\
            plugin_dirs: [{PLUGINS}]
            store: {site.store}
            http:
              listen: 127.0.0.1:{port}
            """))
        run = subprocess.run([sys.executable, "-m", "alertd.cli.entry", "run", "-c", str(site.config),
                              "--log-format", "console"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot listen on 127.0.0.1:{port}: port {port} is already in use by "
                      f"another process; set http.listen ({site.config}:4) to a free port, or stop "
                      "the other process"]
    assert "Traceback" not in run.stderr and not site.store.exists()


def test_sigterm_saves_the_default_detectors_live_state_for_the_next_start(site):
    site.data("app", [["cpu", {"host": h}, 40] for h in "ab"])
    typical = {"name": "cpu_typical", "source": "app", "series": "cpu", "detector": {"type": "surprise"}}

    def saved_at():
        with sqlite3.connect(site.store) as db:
            return db.execute("SELECT fitted_at FROM models WHERE rule = 'cpu_typical'").fetchone()[0]
    site.write(extra_rules=[typical])
    with DaemonProcess(site.config) as daemon:
        daemon.wait_event("model_fitted", rule="cpu_typical", timeout=30)  # the first save, at 6 points
        first = saved_at()
        daemon.signal(signal.SIGTERM)
        saved = daemon.wait_event("model_saved", rule="cpu_typical", reason="stop", timeout=30)
        assert daemon.wait_exit() == 0
    assert saved["series"] == 2
    fitted_at = saved_at()
    assert fitted_at > first  # the state at the stop, not the first fit's
    with DaemonProcess(site.config) as daemon:  # the next start resumes from that state
        restored = daemon.wait_event("model_restored", rule="cpu_typical", timeout=30)
        assert restored["fitted_at"] == fitted_at
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0


def test_a_back_fill_at_start_up_extends_systemds_start_timeout_chunk_by_chunk(site, tmp_path):
    text = config_text(
        store=str(site.store), http={"listen": "127.0.0.1:0"},
        sources={"shop": {"type": "shop_sim", "every": "10s"}},  # back-fills the history the rule reads
        rules=[{"name": "orders_typical", "source": "shop", "series": "orders_per_minute",
                "detector": {"type": "surprise"}}],
        receivers={"hook": [{"type": "slack", "webhook_url": f"{site.web.url}/hook"}]},
        routes={"receiver": "hook"})
    site.write(text=text)
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        with DaemonProcess(site.config, {"NOTIFY_SOCKET": notify.path}) as daemon:
            notify.wait_for("READY", "1", timeout=60)
            backfilled = daemon.wait_event("backfilled", source="shop")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait_exit() == 0
    finally:
        notify.close()
    ready = next(i for i, m in enumerate(notify.messages) if m.get("READY") == "1")
    extends = [m for m in notify.messages[:ready] if "EXTEND_TIMEOUT_USEC" in m]
    assert len(extends) >= 2  # one a chunk: the first of 10 points, then the rest
    assert all(int(m["EXTEND_TIMEOUT_USEC"]) == 90_000_000 and m["STATUS"].startswith("back-filling shop: ")
               for m in extends)
    assert f"{backfilled['samples']} samples stored" in extends[-1]["STATUS"]
