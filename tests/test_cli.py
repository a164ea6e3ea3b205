"""The command line: exit codes, one-sentence errors, redaction, incidents listing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alertd.cli.entry import main
from alertd.model import Incident
from alertd.store import Store

ROOT = Path(__file__).resolve().parent.parent

CONFIG = """\
plugin_dirs: []
sources:
  shop: {type: shop_sim, every: 5s}
rules:
  - {name: pay, source: shop, series: payment_success_ratio, detector: {type: threshold, below: 0.9}}
receivers:
  team:
    - {type: slack, webhook_url: "${HOOK_URL}"}
"""


def test_validate_good_file_prints_a_summary_and_redacts_secrets(write_config, capsys, monkeypatch):
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/very-secret-hook")
    path = write_config(CONFIG)
    assert main(["validate", "-v", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path} is valid: 1 sources, 1 rules, 1 receivers.")
    assert "very-secret-hook" not in out and "***" in out


def test_validate_says_who_may_change_things_over_http(write_config, capsys, monkeypatch):
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/hook")
    monkeypatch.delenv("ALERTD_API_TOKEN", raising=False)
    shown = {}
    for name, http in {"none": "", "token": "http: {token: s3cret-0123456789abcdef}\n",
                       "header": "http: {login: {method: header, pages: login}}\n"}.items():
        assert main(["validate", "-c", str(write_config(http + CONFIG))]) == 0
        shown[name] = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("  http"))
    assert shown["none"].endswith("pages (reads open), /metrics, /healthz, JSON API; changes disabled (no token or basic_auth)")
    assert shown["token"].endswith("changes from the API, and from the pages after a login (token)")
    assert "pages (reads need a login)" in shown["header"] and "from the pages as the proxy's user" in shown["header"]
    assert "s3cret" not in shown["token"]


def test_validate_bad_file_exits_1_with_every_error_and_no_traceback(write_config, capsys, monkeypatch):
    monkeypatch.delenv("HOOK_URL", raising=False)
    path = write_config(CONFIG.replace("every: 5s", "every: often").replace("below: 0.9", "belwo: 0.9"))
    assert main(["validate", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[-1] == "3 errors in the config; nothing was started."
    assert any("sources.shop.every: 'often' is not a duration" in line for line in lines)
    assert any('rules[pay].detector.belwo: unknown key "belwo"; did you mean "below"?' in line for line in lines)
    assert any("the environment variable HOOK_URL is not set" in line for line in lines)
    assert "Traceback" not in err


def test_run_with_a_bad_config_exits_1_before_starting(write_config, capsys):
    path = write_config("sources: {x: {type: nope, every: 1s}}\n")
    assert main(["run", "-c", str(path), "--log-format", "console"]) == 1
    assert 'unknown source type "nope"' in capsys.readouterr().err
    # with JSON log lines (not a TTY, as under systemd), the error is JSON too
    assert main(["run", "-c", str(path)]) == 1
    event = json.loads(capsys.readouterr().err)
    assert event["event"] == "config_invalid" and event["level"] == "error"
    assert event["error"] == "1 error in the config; nothing was started."
    assert any('unknown source type "nope"' in p for p in event["problems"])


def test_incidents_lists_open_then_all_as_text_and_json(tmp_path, capsys):
    store = Store(tmp_path / "s.db")
    store.incidents.save(Incident("fp1", "pay", {"provider": "adyen"}, "firing", "critical", 1000.0, 1060.0,
                                  count=3, last_value=0.4, reason="payment_success_ratio 0.4"))
    store.incidents.save(Incident("fp2", "old", {}, "resolved", "warning", 500.0, 510.0, 600.0))
    store.close()
    assert main(["incidents", "--store", str(tmp_path / "s.db")]) == 0
    out = capsys.readouterr().out
    assert "firing" in out and "pay {provider=adyen}" in out and "old" not in out
    assert main(["incidents", "--store", str(tmp_path / "s.db"), "--all", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["rule"], r["state"]) for r in rows] == [("old", "resolved"), ("pay", "firing")]


def test_incidents_with_a_missing_store_is_one_sentence(tmp_path, capsys):
    assert main(["incidents", "--store", str(tmp_path / "none.db")]) == 1
    assert capsys.readouterr().err.startswith(f"error: the store {tmp_path / 'none.db'} does not exist")


def test_the_console_script_runs_and_the_demo_config_is_valid():
    result = subprocess.run([sys.executable, "-m", "alertd.cli.entry", "validate", "-c", str(ROOT / "alertd.yaml")],
                            capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout
