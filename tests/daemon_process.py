"""The real daemon (`alertd run`) as a subprocess, for lifecycle tests.

`DaemonProcess(config_path, env)` starts `python -m alertd.cli run` with JSON log lines on
stdout, reads them in a thread, and lets a test wait for a log event (an external event:
bounded waits, no sleeping for the daemon's timers). A `NotifySocket` plays systemd's side
of sd_notify: a datagram socket whose messages the test reads in order.

    with DaemonProcess(path) as d:
        d.wait_event("daemon_ready")
        d.signal(signal.SIGHUP)
        d.wait_event("config_reloaded")
        assert d.stop() == 0
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from processes import stop

ROOT = Path(__file__).resolve().parent.parent


class DaemonProcess:
    """A running `alertd run` whose JSON log lines the test can wait for."""

    def __init__(self, config: Path, env: dict | None = None, extra_args=(), preexec_fn=None):
        self.config = config
        self.preexec_fn = preexec_fn  # run in the child before exec (resource limits)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.args = [sys.executable, "-m", "alertd.cli.entry", "run", "-c", str(config),
                     "--log-format", "json", *extra_args]
        self.events: list[dict] = []
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "DaemonProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=self.env, cwd=ROOT, text=True, bufsize=1, preexec_fn=self.preexec_fn)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            with self._cond:
                self.lines.append(line)
                if line.startswith("{"):
                    try:
                        self.events.append(json.loads(line))
                    except ValueError:
                        pass
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_event(self, name: str, timeout: float = 10.0, after: int = 0, **fields) -> dict:
        """The first log event `name` (from index `after`) whose fields match; fail on timeout."""
        def find():
            for event in self.events[after:]:
                if event.get("event") == name and all(event.get(k) == v for k, v in fields.items()):
                    return event
            return None

        with self._cond:
            found = self._cond.wait_for(lambda: find() or self.proc.poll() is not None, timeout)
            event = find()
        if event is None:
            state = "exited" if self.proc.poll() is not None else "still running"
            raise AssertionError(f"no {name} {fields or ''} event within {timeout}s (daemon {state}); "
                                 "log:\n" + "\n".join(self.lines[-40:]))
        return event

    def count(self, name: str, **fields) -> int:
        with self._cond:
            return sum(1 for e in self.events if e.get("event") == name
                       and all(e.get(k) == v for k, v in fields.items()))

    def mark(self) -> int:
        """An index into the events: wait_event(after=mark) sees only later events."""
        with self._cond:
            return len(self.events)

    def signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the daemon did not exit; log:\n" + "\n".join(self.lines[-40:])) from None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and the exit code (the test fails, with the log, if it does not exit)."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def http_port(self) -> int:
        return self.wait_event("http_listening")["port"]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc is not None:
            stop(self.proc, grace=0, sig=signal.SIGKILL)


class NotifySocket:
    """systemd's end of sd_notify: a datagram socket at `path`; `messages` in arrival order."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []

    def wait_for(self, key: str, value: str | None = None, timeout: float = 10.0,
                 contains: str = "") -> dict[str, str]:
        """Read datagrams until one sets `key` (to `value`, or containing `contains`)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            message = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(message)
            if key in message and (value is None or message[key] == value) and contains in message[key]:
                return message
        raise AssertionError(f"no {key}={value or '*'} notification within {timeout}s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()
