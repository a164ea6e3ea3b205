"""sd_notify: datagrams to $NOTIFY_SOCKET, watchdog interval, environment cleanup."""

from __future__ import annotations

import os
import socket

from alertd.daemon.sdnotify import SystemdNotifier


def receiver(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    return sock


def test_messages_go_to_the_socket_and_the_environment_is_cleaned(tmp_path):
    sock = receiver(str(tmp_path / "n.sock"))
    env = {"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "30000000",
           "WATCHDOG_PID": str(os.getpid()), "OTHER": "kept"}
    notifier = SystemdNotifier.from_environ(env)
    assert env == {"OTHER": "kept"}  # children must not speak to systemd in our name
    assert notifier.watchdog_interval == 15.0
    assert notifier.ready("2 open incidents\nand more")
    assert sock.recv(1024) == b"READY=1\nSTATUS=2 open incidents and more"
    assert notifier.reloading()
    lines = sock.recv(1024).decode().splitlines()
    assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=") and int(lines[1][15:]) > 0
    notifier.watchdog()
    notifier.stopping()
    assert [sock.recv(1024), sock.recv(1024)] == [b"WATCHDOG=1", b"STOPPING=1"]
    sock.close()


def test_abstract_socket_addresses_work():
    name = f"alertd-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    assert SystemdNotifier("@" + name).ready()
    assert sock.recv(64) == b"READY=1"
    sock.close()


def test_without_systemd_everything_is_a_no_op():
    notifier = SystemdNotifier.from_environ({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.ready() is False and notifier.watchdog() is False


def test_a_watchdog_meant_for_another_process_is_ignored(tmp_path):
    env = {"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert SystemdNotifier.from_environ(env).watchdog_interval is None


class Recorder:
    def __init__(self):
        self.events = []

    def warning(self, event, **fields):
        self.events.append((event, fields))


def test_an_unreachable_socket_is_reported_once_and_never_raises(tmp_path):
    log = Recorder()
    notifier = SystemdNotifier(str(tmp_path / "missing.sock"), log=log)
    assert notifier.ready() is False and notifier.watchdog() is False
    assert [e for e, _ in log.events] == ["sd_notify_failed"]
    assert "No such file or directory" in log.events[0][1]["error"]
