"""The real amtool (Debian's prometheus-alertmanager) against alertd and against a real
Alertmanager with the same routing and the same alerts: the same answers.

amtool talks API v2: `silence add|query|expire` (/api/v2/silences, /api/v2/silence/{id}),
`alert query` (/api/v2/alerts), `config routes [test]` (/api/v2/status, whose config.original
amtool loads with Alertmanager's own loader). alertd needs credentials for writes: amtool
gets its token through --http.config.file (`authorization`), or basic auth in the URL.
Outputs are compared after replacing silence ids and times, which differ by nature.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone

import httpx
import pytest
import yaml
from daemon_process import DaemonProcess
from processes import serve
from servers import free_port

AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
TOKEN = "amtool-token-0123456789abcdef"
PASSWORD = "amtool-password-0123456789"
ROUTE = {"receiver": "team", "group_by": ["alertname"], "group_wait": "1h", "group_interval": "1h",
         "repeat_interval": "4h", "routes": [
             {"matchers": ['service=~"db|cache"'], "receiver": "dbteam", "continue": True,
              "routes": [{"matchers": ['env!="prod"'], "receiver": "staging"}]},
             {"matchers": ['severity="critical"'], "receiver": "pager", "group_by": ["instance"],
              "mute_time_intervals": ["weekend"]}]}
RECEIVERS = ["team", "dbteam", "staging", "pager"]
INHIBIT = [{"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
            "equal": ["instance"]}]
INTERVALS = [{"name": "weekend", "time_intervals": [{"weekdays": ["saturday:sunday"]}]}]
AM_INTERVALS = [{"name": "weekend", "time_intervals": [{"weekdays": ["sunday", "saturday"]}]}]


def iso(ts):
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(Alertmanager's URL, alertd's URL) with the same routing and the same alerts."""
    if not shutil.which(AMTOOL):
        pytest.fail("amtool is not installed; run `sh scripts/system-deps.sh` (make test does)")
    tmp = tmp_path_factory.mktemp("amtool")
    am = {"route": ROUTE, "receivers": [{"name": n} for n in RECEIVERS], "inhibit_rules": INHIBIT,
          "time_intervals": AM_INTERVALS}
    alertd = {"plugin_dirs": [], "store": str(tmp / "alertd.db"),
              "http": {"listen": "127.0.0.1:0", "token": TOKEN,
                       "basic_auth": {"username": "ops", "password": PASSWORD}},
              "receivers": {n: [{"type": "console"}] for n in RECEIVERS}, "routes": ROUTE,
              "inhibit_rules": INHIBIT, "time_intervals": INTERVALS}
    (tmp / "am.yml").write_text(yaml.safe_dump(am))
    (tmp / "alertd.yaml").write_text(yaml.safe_dump(alertd))
    (tmp / "http.yml").write_text(yaml.safe_dump({"authorization": {"credentials": TOKEN}}))
    port = free_port()
    argv = [BINARY, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]
    with serve(argv, f"http://127.0.0.1:{port}/-/ready", tmp / "am.log", name="alertmanager"), \
            DaemonProcess(tmp / "alertd.yaml") as daemon:
        alertd_url = f"http://127.0.0.1:{daemon.http_port()}"
        daemon.wait_event("daemon_ready", timeout=30)
        now = time.time()
        alerts = [{"labels": {"alertname": "HighCPU", "instance": "a", "severity": "warning"},
                   "annotations": {"summary": "CPU is high on a"}},
                  {"labels": {"alertname": "NodeDown", "instance": "a", "severity": "critical"},
                   "annotations": {"summary": "node a is down"}},
                  {"labels": {"alertname": "DiskFull", "instance": "b", "service": "db", "env": "prod"},
                   "annotations": {"summary": "disk of db is full"}}]
        for a in alerts:
            a.update(startsAt=iso(now - 60), endsAt=iso(now + 3600))
        assert httpx.post(f"http://127.0.0.1:{port}/api/v2/alerts", json=alerts).status_code == 200
        assert httpx.post(f"{alertd_url}/api/v2/alerts", json=alerts,
                          headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        yield f"http://127.0.0.1:{port}", alertd_url, tmp / "http.yml"


def amtool(url: str, *args, http_config=None, check=True) -> subprocess.CompletedProcess:
    argv = [AMTOOL, f"--alertmanager.url={url}", "--no-version-check", *args]
    if http_config is not None:
        argv.insert(2, f"--http.config.file={http_config}")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check:
        assert done.returncode == 0, (argv, done.stdout, done.stderr)
    return done


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WHEN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+")


def same_shape(text: str) -> str:
    """Ids and times out; columns re-spaced (their widths follow the ids' and times' lengths)."""
    text = WHEN.sub("<time>", UUID.sub("<id>", text))
    return "\n".join(re.sub(r"\s{2,}", "  ", line).strip() for line in text.strip().splitlines())


def both(servers, *args) -> tuple[str, str]:
    am, alertd, http_config = servers
    return (amtool(am, *args).stdout, amtool(alertd, *args, http_config=http_config).stdout)


def test_alert_query_gives_the_same_table(servers):
    for args in ([], ["instance=a"], ["alertname=~Disk.*"], ["-i"], ["-a"]):
        am, alertd = both(servers, "alert", "query", *args)
        assert same_shape(am) == same_shape(alertd), args
    am, alertd = both(servers, "alert", "query", "-i")  # the warning of a is inhibited by NodeDown a
    assert "HighCPU" in am and "HighCPU" not in both(servers, "alert", "query")[1]
    am, alertd = both(servers, "-o", "extended", "alert", "query")
    assert same_shape(am) == same_shape(alertd)


def test_config_routes_and_routes_test_give_the_same_answers(servers):
    am, alertd = both(servers, "config", "routes")
    assert same_shape(am) == same_shape(alertd) and "staging" in alertd
    for labels in (["service=db", "env=prod", "severity=critical"], ["service=cache", "env=dev"],
                   ["service=mydb"], ["severity=critical"], ["alertname=x"]):
        am, alertd = both(servers, "config", "routes", "test", *labels)
        assert am == alertd, labels
    assert both(servers, "config", "routes", "test", "service=db", "env=dev", "severity=critical")[1] == \
        "staging,pager\n"


def test_silence_add_query_expire_as_against_alertmanager(servers):
    am_url, alertd_url, http_config = servers
    ids = {}
    for name, url, extra in (("am", am_url, {}), ("alertd", alertd_url, {"http_config": http_config})):
        added = amtool(url, "silence", "add", "instance=a", "alertname=~High.*", "--comment=maintenance",
                       "--author=alice", "--duration=2h", **extra)
        assert UUID.fullmatch(added.stdout.strip()), added.stdout
        ids[name] = added.stdout.strip()
    am, alertd = both(servers, "silence", "query")
    assert same_shape(am) == same_shape(alertd) and "maintenance" in alertd
    am, alertd = both(servers, "silence", "query", "-q")
    assert (am.strip(), alertd.strip()) == (ids["am"], ids["alertd"])
    am, alertd = both(servers, "alert", "query", "-s", "-i")  # silenced (and inhibited) alerts too
    assert same_shape(am) == same_shape(alertd) and "HighCPU" in alertd
    am, alertd = both(servers, "-o", "json", "alert", "query", "-s", "-i", "alertname=HighCPU")
    assert [(a["status"]["state"], len(a["status"]["silencedBy"]), len(a["status"]["inhibitedBy"]))
            for a in json.loads(alertd)] == [(a["status"]["state"], len(a["status"]["silencedBy"]),
                                               len(a["status"]["inhibitedBy"])) for a in json.loads(am)] == [
        ("suppressed", 1, 1)]
    amtool(am_url, "silence", "expire", ids["am"])
    amtool(alertd_url, "silence", "expire", ids["alertd"], http_config=http_config)
    am, alertd = both(servers, "silence", "query")
    assert same_shape(am) == same_shape(alertd)
    assert ids["alertd"] not in alertd
    am, alertd = both(servers, "silence", "query", "--expired")
    assert same_shape(am) == same_shape(alertd) and ids["alertd"] in alertd


def test_writes_need_credentials_and_basic_auth_works(servers):
    _, alertd_url, _ = servers
    refused = amtool(alertd_url, "silence", "add", "instance=b", "--comment=x", check=False)
    assert refused.returncode != 0 and "401" in refused.stderr + refused.stdout
    basic = alertd_url.replace("http://", f"http://ops:{PASSWORD}@")
    added = amtool(basic, "silence", "add", "instance=b", "--comment=by basic auth")
    silence_id = added.stdout.strip()
    assert UUID.fullmatch(silence_id)
    amtool(basic, "silence", "expire", silence_id)
    assert silence_id not in amtool(alertd_url, "silence", "query").stdout
