"""systemd's notify protocol without a dependency: one datagram to `$NOTIFY_SOCKET`.

`SystemdNotifier.from_environ()` reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID`
and removes them from the environment (as `sd_notify(unset_environment=1)` does), so commands
the daemon starts cannot speak to systemd in its name. Outside systemd every call is a no-op.

    notifier.ready()                 # READY=1 (Type=notify: start-up is complete)
    notifier.reloading()             # RELOADING=1 + MONOTONIC_USEC (then ready() again)
    notifier.stopping()              # STOPPING=1
    notifier.watchdog()              # WATCHDOG=1, every `watchdog_interval` seconds
    notifier.status("2 open ...")    # STATUS=..., shown by `systemctl status`

Sending never raises: a failure is logged once and the daemon goes on.
"""

from __future__ import annotations

import os
import socket
import time

NOTIFY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class SystemdNotifier:
    """Sends sd_notify messages to one socket address (a path, or `@abstract`)."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None, log=None):
        self.address = address or None
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self.log = log
        self._warned = False

    @classmethod
    def from_environ(cls, environ=None, log=None, *, unset: bool = True) -> "SystemdNotifier":
        """Read (and by default remove) the notify variables systemd passed to this process."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET")
        usec = _int(env.get("WATCHDOG_USEC"))
        pid = _int(env.get("WATCHDOG_PID"))
        if pid is not None and pid != os.getpid():
            usec = None  # the watchdog is meant for another process (e.g. our parent)
        if unset:
            for name in NOTIFY_ENV:
                env.pop(name, None)
        return cls(address, usec, log)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between WATCHDOG=1 pings: half of `WatchdogSec`, as systemd recommends."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def notify(self, **fields) -> bool:
        """Send `KEY=value` lines (keys upper-cased); True when the datagram went out."""
        if not self.address:
            return False
        message = "\n".join(f"{k.upper()}={_one_line(v)}" for k, v in fields.items()).encode()
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(target)
                sock.sendall(message)
        except OSError as exc:
            if not self._warned and self.log is not None:
                self.log.warning("sd_notify_failed", socket=self.address, error=str(exc))
            self._warned = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        extra = {"status": status} if status else {}
        return self.notify(ready=1, **extra)

    def reloading(self) -> bool:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(reloading=1, monotonic_usec=usec)

    def stopping(self) -> bool:
        return self.notify(stopping=1)

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)

    def status(self, text: str) -> bool:
        return self.notify(status=text)


def _int(text) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def _one_line(value) -> str:
    return str(value).replace("\n", " ")
