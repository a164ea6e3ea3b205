"""The command source with real processes: formats, exit status, hangs, output limits."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import time

import pytest
from source_helpers import make_source

from alertd.base import SourceError
from alertd.config.load import load_config
from alertd.config.schema import ConfigError

PY = sys.executable


def script(tmp_path, body: str) -> str:
    path = tmp_path / "probe.py"
    path.write_text(textwrap.dedent(body))
    return str(path)


def collect(source):
    return asyncio.run(source.collect())


def test_a_number_with_static_labels(registry, clock):
    source = make_source(registry, "command", {"command": [PY, "-c", "print(' 42.5 ')"], "name": "queue_depth",
                                               "labels": {"queue": "orders"}}, clock)
    (sample,) = collect(source)
    assert (sample.key, sample.value, sample.ts) == ('queue_depth{queue="orders"}', 42.5, clock.now())


def test_json_output_through_jmespath_and_env(registry, clock, tmp_path):
    probe = script(tmp_path, """
        import json, os
        print(json.dumps({"queues": [{"name": "orders", "depth": 3}, {"name": os.environ["EXTRA"], "depth": 9}]}))
    """)
    source = make_source(registry, "command", {
        "command": [PY, probe], "format": "json", "env": {"EXTRA": "mail"},
        "metrics": [{"name": "queue_depth", "items": "queues", "value": "depth", "labels": {"queue": "name"}}]},
        clock)
    assert {s.key: s.value for s in collect(source)} == {'queue_depth{queue="orders"}': 3.0,
                                                          'queue_depth{queue="mail"}': 9.0}


def test_prometheus_text_output(registry, clock, tmp_path):
    probe = script(tmp_path, """
        print("# HELP backups_age_seconds Age of the last backup")
        print("# TYPE backups_age_seconds gauge")
        print('backups_age_seconds{db="orders"} 3600')
        print('backups_age_seconds{db="users"} 60 1700000000000')
    """)
    source = make_source(registry, "command", {"command": [PY, probe], "format": "prometheus",
                                               "labels": {"host": "db1"}}, clock)
    samples = {s.key: s for s in collect(source)}
    assert samples['backups_age_seconds{db="orders",host="db1"}'].value == 3600
    assert samples['backups_age_seconds{db="users",host="db1"}'].ts == 1_700_000_000.0


@pytest.mark.parametrize("code, fmt, reason, words", [
    ("import sys; print('partial'); print('disk not mounted', file=sys.stderr); sys.exit(3)", "number",
     "exit_status", ["exited with status 3", "'disk not mounted'"]),
    ("print('<html>oops</html>')", "number", "bad_payload", ["printed an HTML page", "not a number"]),
    ("print('{\"a\": ')", "json", "bad_payload", ["not JSON", "'{\"a\":'"]),
    ("print('queue_depth{q=orders} 3')", "prometheus", "bad_payload", ["line 1", "not in the Prometheus text format"]),
    ("print('x' * 5000)", "number", "too_large", ["more than max_bytes (1024 bytes)"]),
])
def test_failures_are_one_sentence(registry, clock, code, fmt, reason, words):
    params = {"command": [PY, "-c", code], "format": fmt, "max_bytes": 1024}
    params.update({"name": "x"} if fmt == "number" else {})
    params.update({"metrics": [{"name": "x", "value": "a"}]} if fmt == "json" else {})
    source = make_source(registry, "command", params, clock)
    with pytest.raises(SourceError) as info:
        collect(source)
    assert info.value.reason == reason and all(w in str(info.value) for w in words), str(info.value)


def test_a_hanging_command_and_its_children_are_killed(registry, clock, tmp_path):
    pidfile = tmp_path / "child.pid"
    probe = script(tmp_path, f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(60)
    """)
    source = make_source(registry, "command", {"command": [PY, probe], "name": "x"}, clock, timeout=1.0)
    with pytest.raises(SourceError, match="did not finish within 0.9s and was killed") as info:
        collect(source)
    assert info.value.reason == "timeout"
    child = int(pidfile.read_text())
    # the grandchild was in the command's process group: SIGKILL reaches it too (the kernel
    # delivers it asynchronously, so look a few times)
    assert any(_gone(child) or time.sleep(0.02) for _ in range(100))


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")  # a zombie waiting for its reaper
    except FileNotFoundError:
        return True


def test_a_missing_program(registry, clock):
    source = make_source(registry, "command", {"command": ["/nonexistent/probe"], "name": "x"}, clock)
    with pytest.raises(SourceError, match="cannot run /nonexistent/probe: No such file"):
        collect(source)


def test_config_checks(write_config, registry):
    path = write_config("""
        sources:
          a: {type: command, every: 1m, command: [], name: x}
          b: {type: command, every: 1m, command: [true]}
          c: {type: command, every: 1m, command: [true], format: json}
          d: {type: command, every: 1m, command: "true", format: yaml}
    """)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    text = str(info.value)
    assert "alertd.yaml:2: sources.a: command is empty" in text
    assert 'alertd.yaml:3: sources.b: format "number" needs "name"' in text
    assert 'alertd.yaml:4: sources.c: format "json" needs "metrics"' in text
    assert "alertd.yaml:5: sources.d.format: 'yaml' is not allowed" in text
