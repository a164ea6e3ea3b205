"""The journal is JSON: every line the real daemon writes (stdout and stderr, as journald
takes both) parses as JSON when stdout is not a TTY, so `journalctl -u alertd -o cat | jq`
works: console notices, library log records, warnings and tracebacks included.

Before issue 16 the console receiver's `[FIRING]` lines, Python warnings and tracebacks that
went through the `logging` module or `threading.excepthook` were plain text, and `jq` stopped
at the first one.
"""

from __future__ import annotations

import json
import subprocess
import textwrap

from configs import config_text
from daemon_process import DaemonProcess

NOISY = textwrap.dedent('''
    """A site plugin whose poll does what libraries do: warn, log through `logging` with a
    traceback, and let a thread die of an exception nobody catches."""
    import logging
    import threading
    import warnings
    from dataclasses import dataclass

    from alertd import Sample, Source, hookimpl, make_labels


    class Noisy(Source):
        type_name = "noisy"

        @dataclass(frozen=True)
        class Params:
            value: float = 99.0

        async def collect(self):
            warnings.warn("this API is deprecated", DeprecationWarning)
            try:
                {}["missing"]
            except KeyError:
                logging.getLogger("somelib").exception("somelib failed")

            def die():
                raise RuntimeError("a thread died")
            thread = threading.Thread(target=die, name="worker-1")
            thread.start()
            thread.join()
            return [Sample("queue_depth", make_labels({"queue": "orders"}), self.context.now(), self.params.value)]


    @hookimpl
    def register_sources(register):
        register(Noisy)
''')


def test_every_line_of_the_daemon_is_json_console_notices_and_tracebacks_included(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "noisy.py").write_text(NOISY)
    config = tmp_path / "alertd.yaml"
    config.write_text(config_text(
        plugin_dirs=[str(plugins)], store=str(tmp_path / "alertd.db"),
        sources={"q": {"type": "noisy", "every": "200ms"}},
        rules=[{"name": "backlog", "source": "q", "series": "queue_depth",
                "detector": {"type": "threshold", "above": 10}}],
        receivers={"screen": [{"type": "console"}]},
        routes={"receiver": "screen", "group_wait": "0s", "group_interval": "10s"}))
    daemon = DaemonProcess(config)
    daemon.args.remove("--log-format")
    daemon.args.remove("json")  # auto: stdout is a pipe, as under systemd
    with daemon:
        notice = daemon.wait_event("console_notice", timeout=60)
        thread = daemon.wait_event("uncaught_exception")
        logged = daemon.wait_event("somelib failed")
        assert daemon.stop() == 0
        lines = list(daemon.lines)
    not_json = []
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict)
        except (ValueError, AssertionError):
            not_json.append(line)
    assert not_json == []
    assert notice["lines"][0].startswith("[FIRING] backlog queue=orders: queue_depth 99")
    assert notice["kind"] == "firing" and notice["incidents"][0]["labels"] == {"queue": "orders"}
    assert thread["error"] == "RuntimeError: a thread died" and thread["thread"] == "worker-1"
    assert "Traceback (most recent call last)" in thread["exception"]
    assert logged["logger"] == "somelib" and "KeyError: 'missing'" in logged["exception"]
    events = [json.loads(line) for line in lines]
    assert any("DeprecationWarning: this API is deprecated" in e["event"] for e in events)
    # docs/operations.md's recipe reads the whole of it
    jq = subprocess.run(["jq", "-c", 'select(.level != "info") | .event'], input="\n".join(lines) + "\n",
                        capture_output=True, text=True)
    assert jq.returncode == 0, jq.stderr
    assert '"uncaught_exception"' in jq.stdout.splitlines()
