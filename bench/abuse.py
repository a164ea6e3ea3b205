"""Abuse bench: the red-team cases of issue 16 against a real daemon, with its health measured.

    PYTHONPATH=. .venv/bin/python bench/abuse.py [--quick] [--json out.json]

Starts `alertd run` (a subprocess) with a push source, a log source and the HTTP API, plays
systemd's side of sd_notify on a socket of its own (WatchdogSec=2s: a ping every second),
and runs each case in turn while two probes watch the daemon:

- a /healthz probe: GET every 100 ms on a new connection (30 s timeout); the longest answer,
  and how many probes got no 200 (a fast 503 "too many connections" is a lockout too);
- the watchdog: the longest gap between two WATCHDOG=1 pings overlapping the case.

Cases: `regex` (a backtracking logfile regex meets the line that froze the daemon for 11+
minutes, and a rule's =~ matcher meets long label values), `huge_push` (190,000 points of
one series without ts, then six such pushes at once), `cardinality` (400,000 label sets
pushed), `slow_push` (1,100 connections sending a header line every 10 s to the push port),
`slow_api` (200 such connections to the API port), `future_ts` (a point stamped 2100, then
ordinary points), `template_bomb` (a SIGHUP with nested range(100000) loops in a receiver's
template, and a template that loops only on a real incident). The goals: every /healthz
answer a 200 under 1 s, no watchdog gap over 5 s. Exit code 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from daemon_process import DaemonProcess, NotifySocket  # noqa: E402
from servers import free_ports  # noqa: E402

FREEZE_REGEX = r"host=(?P<host>([a-z0-9-]+\.?)+) status=5\d\d"
FREEZE_LINE = "host=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa status=200 path=/\n"
LOOPS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def config_text(tmp: Path, http_port: int, push_port: int, receiver_template: str = "") -> str:
    template = f", text_template: {json.dumps(receiver_template)}" if receiver_template else ""
    return f"""\
store: {tmp / 'alertd.db'}
http: {{listen: "127.0.0.1:{http_port}"}}
sources:
  push: {{type: push, port: {push_port}, every: 1s}}
  logs:
    type: logfile
    path: {tmp / 'app.log'}
    every: 1s
    metrics: [{{name: host_5xx, regex: {json.dumps(FREEZE_REGEX)}}}]
rules:
  - {{name: orders_spike, source: push, series: orders, detector: {{type: threshold, above: 1000}}}}
  - {{name: odd_hosts, source: push, series: 'checkout{{host=~"([a-z0-9-]+\\\\.?)+x"}}',
      detector: {{type: threshold, above: 1000}}}}
  - {{name: host_errors, source: logs, series: host_5xx, detector: {{type: threshold, above: 100}}}}
receivers:
  out: [{{type: console{template}}}]
routes: {{receiver: out, group_wait: 0s, group_interval: 1s}}
"""


# -- probes ----------------------------------------------------------------------------------
class HealthProbe(threading.Thread):
    """GET /healthz every 100 ms on a new connection: (start, seconds, status) per probe."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.records, self.stop = port, [], threading.Event()
        self.in_flight: float | None = None  # when the probe under way started

    def run(self) -> None:
        while not self.stop.is_set():
            started = self.in_flight = time.monotonic()
            status = 0
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("GET", "/healthz")
                status = conn.getresponse().status
                conn.close()
            except OSError:
                status = -1
            self.records.append((started, time.monotonic() - started, status))
            self.in_flight = None
            self.stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def longest(self, start: float, end: float) -> tuple[float, int]:
        """The longest answer of the probes started in [start, end], and how many of them did
        not get a 200 (a 503 "too many connections" is a lockout, however fast)."""
        hits = [(s, st) for t, s, st in self.records if start <= t <= end]
        flight = self.in_flight
        if flight is not None and flight <= end:  # still waiting for its answer: at least this long
            hits.append((time.monotonic() - flight, 0))
        return max((s for s, _ in hits), default=0.0), sum(1 for _, st in hits if st != 200)


class Watchdog(threading.Thread):
    """Reads the sd_notify socket: the time of every WATCHDOG=1."""

    def __init__(self, sock: NotifySocket):
        super().__init__(daemon=True)
        self.sock, self.pings, self.stop = sock, [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                data = self.sock.sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            if b"WATCHDOG=1" in data:
                self.pings.append(time.monotonic())

    def longest_gap(self, start: float, end: float) -> float:
        times = self.pings + [time.monotonic()]
        return max((b - a for a, b in zip(times, times[1:]) if b >= start and a <= end), default=0.0)


# -- attacks ---------------------------------------------------------------------------------
def post(port: int, body: bytes, content_type: str = "application/x-ndjson", timeout: float = 120) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/push", body=body, headers={"Content-Type": content_type})
        return conn.getresponse().status
    except OSError:
        return -1
    finally:
        conn.close()


def lines(points) -> bytes:
    return "".join(json.dumps(p, separators=(",", ":")) + "\n" for p in points).encode()


def slowloris(port: int, count: int, every: float, seconds: float) -> dict:
    """`count` connections, each sending a request line, then a header line every `every` s."""
    socks, closed = [], 0
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /push HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            s.setblocking(False)
            socks.append(s)
        except OSError:
            closed += 1
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        time.sleep(min(every, max(0.0, end - time.monotonic())))
        n += 1
        for s in list(socks):
            try:
                s.send(b"X-Slow-%d: 1\r\n" % n)
            except OSError:
                socks.remove(s)
                closed += 1
                s.close()
    for s in socks:
        s.close()
    return {"connections": count, "closed_by_daemon": closed}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def metric(port: int, name: str, **labels) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (not want or want in line) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


# -- cases -----------------------------------------------------------------------------------
def case_regex(ctx) -> dict:
    with open(ctx["tmp"] / "app.log", "a") as f:
        f.write(FREEZE_LINE * 2000 + f"host={'a' * 20000} status=200\n")
    body = lines({"name": "checkout", "value": 1, "labels": {"host": "a" * n + "-"}} for n in range(1, 400, 4))
    status = post(ctx["push"], body)
    time.sleep(ctx["settle"] * 2)  # a few polls of the log
    return {"lines_written": 2001, "push": status}


def case_huge_push(ctx) -> dict:
    body = lines({"name": "orders", "value": i % 100} for i in range(190_000))
    first = post(ctx["push"], body)
    time.sleep(ctx["settle"])
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(post(ctx["push"], body))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(ctx["settle"] * 2)
    return {"body_mb": round(len(body) / 1e6, 1), "first": first, "six_at_once": sorted(answers)}


def case_cardinality(ctx) -> dict:
    before = rss_mb(ctx["pid"])
    answers = []
    for chunk in range(80):  # 5,000 new label sets a push
        body = lines({"name": "cart", "value": 1, "labels": {"user": f"u{chunk * 5_000 + i}"}}
                     for i in range(5_000))
        answers.append(post(ctx["push"], body))
    time.sleep(ctx["settle"])
    return {"label_sets": 400_000, "answers": {str(a): answers.count(a) for a in sorted(set(answers))}, "rss_mb_before": before, "rss_mb_after": rss_mb(ctx["pid"]),
            "refused": metric(ctx["http"], "alertd_push_samples_refused_total", reason="max_series")}


def case_slow(port_key: str, count: int):
    def run(ctx) -> dict:
        result = {}
        attack = threading.Thread(target=lambda: result.update(slowloris(ctx[port_key], count, 10.0,
                                                                         ctx["slow_seconds"])))
        attack.start()
        time.sleep(1.0)
        pushes = [post(ctx["push"], lines([{"name": "orders", "value": 1}]), timeout=30) for _ in range(5)]
        attack.join()
        return {**result, "pushes_meanwhile": pushes}
    return run


def case_future(ctx) -> dict:
    before = metric(ctx["http"], "alertd_samples_skipped_total", reason="out_of_order")
    refused = post(ctx["push"], lines([{"name": "orders", "value": 1, "ts": 4_102_444_800}]))
    time.sleep(2.5)  # polled (if it was accepted) before the later points come
    later = [post(ctx["push"], lines([{"name": "orders", "value": 1}])) or time.sleep(1.1) for _ in range(3)]
    time.sleep(ctx["settle"])
    return {"year_2100": refused, "later": later,
            "out_of_order": metric(ctx["http"], "alertd_samples_skipped_total", reason="out_of_order") - before}


def case_template_bomb(ctx) -> dict:
    d, path = ctx["daemon"], ctx["config"]
    good = path.read_text()
    mark = d.mark()
    path.write_text(config_text(ctx["tmp"], ctx["http"], ctx["push"], LOOPS))
    d.signal(signal.SIGHUP)
    failed = d.wait_event("config_reload_failed", timeout=60, after=mark)
    # a template that loops only on a real incident passes validation; it fires at run time
    mark = d.mark()
    path.write_text(config_text(ctx["tmp"], ctx["http"], ctx["push"],
                                "{% if incidents[0].rule == 'orders_spike' %}" + LOOPS + "{% endif %}ok"))
    d.signal(signal.SIGHUP)
    d.wait_event("config_reloaded", timeout=60, after=mark)
    post(ctx["push"], lines([{"name": "orders", "value": 5000}]))
    fell_back = d.wait_event("template_failed", timeout=60, after=mark)
    path.write_text(good)
    d.signal(signal.SIGHUP)
    d.wait_event("config_reloaded", timeout=60, after=mark)
    started = time.monotonic()
    bomb = ctx["tmp"] / "bomb.yaml"
    bomb.write_text(config_text(ctx["tmp"], ctx["http"], ctx["push"], "{{ 'x' * 1000000000 }}").replace(
        "out: [{type: console", "out: [{type: console, title_template: " + json.dumps(LOOPS)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    validate = subprocess.run([sys.executable, "-m", "alertd.cli.entry", "validate", "-c", str(bomb)],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"reload": failed["event"], "run_time": fell_back["using"],
            "validate_exit": validate.returncode, "validate_seconds": round(time.monotonic() - started, 2),
            "validate_max_rss_mb": round(max(after, before) / 1024, 1)}


CASES = {"regex": case_regex, "huge_push": case_huge_push, "cardinality": case_cardinality,
         "slow_push": case_slow("push", 1100), "slow_api": case_slow("http", 200), "future_ts": case_future,
         "template_bomb": case_template_bomb}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter slow-connection cases (12 s, not 35 s)")
    parser.add_argument("--only", nargs="*", choices=list(CASES), help="run only these cases")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))  # the bench's own 1,300 sockets
    results = []
    with tempfile.TemporaryDirectory(prefix="alertd-abuse-") as name:
        tmp = Path(name)
        http_port, push_port = free_ports(2)
        (tmp / "app.log").write_text("")
        config = tmp / "alertd.yaml"
        config.write_text(config_text(tmp, http_port, push_port))
        notify = NotifySocket(tmp / "notify.sock")
        env = {"NOTIFY_SOCKET": str(tmp / "notify.sock"), "WATCHDOG_USEC": "2000000", "PYTHONPATH": str(ROOT),
               **({"PYTHONASYNCIODEBUG": "1"} if os.environ.get("ABUSE_DEBUG") else {})}
        env.pop("WATCHDOG_PID", None)
        daemon = DaemonProcess(config, env, preexec_fn=_daemon_limits).start()
        try:
            daemon.wait_event("daemon_ready", timeout=60)
            probe, watchdog = HealthProbe(http_port), Watchdog(notify)
            probe.start()
            watchdog.start()
            time.sleep(3)
            ctx = {"tmp": tmp, "http": http_port, "push": push_port, "pid": daemon.proc.pid, "daemon": daemon,
                   "config": config, "settle": 3.0, "slow_seconds": 12.0 if args.quick else 35.0}
            for case in args.only or CASES:
                lines_before, start = len(daemon.lines), time.monotonic()
                notes = CASES[case](ctx)
                end = time.monotonic()
                time.sleep(1.5)  # probes started inside the window finish
                longest, failed = probe.longest(start, end)
                gap = watchdog.longest_gap(start, end)
                results.append({"case": case, "healthz_max_s": round(longest, 3), "healthz_not_200": failed,
                                "watchdog_gap_max_s": round(gap, 2), "log_lines": len(daemon.lines) - lines_before,
                                "seconds": round(end - start, 1),
                                "ok": longest < 1.0 and not failed and gap < 5.0 and daemon.proc.poll() is None,
                                **notes})
                print(json.dumps(results[-1]), flush=True)
            probe.stop.set()
            watchdog.stop.set()
            if os.environ.get("ABUSE_DEBUG"):
                print("\n".join(line[-160:] for line in daemon.lines if "Executing" in line or "took" in line))
            alive = daemon.proc.poll() is None
            code = daemon.stop(timeout=60)
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
            notify.close()
    load = os.getloadavg()[0]
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {load:.2f}; daemon alive at the end: {alive}, exit code {code}")
    print(f"{'case':<15} {'/healthz max':>13} {'not 200':>8} {'watchdog gap max':>17} {'log lines':>10}  ok")
    for r in results:
        print(f"{r['case']:<15} {r['healthz_max_s']:>12.3f}s {r['healthz_not_200']:>8} "
              f"{r['watchdog_gap_max_s']:>16.2f}s {r['log_lines']:>10}  {'yes' if r['ok'] else 'NO'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "results": results}, indent=1) + "\n")
    return 0 if alive and all(r["ok"] for r in results) else 1


def _daemon_limits() -> None:
    """In the daemon: the 1,024 descriptors a systemd service gets without LimitNOFILE."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


if __name__ == "__main__":
    sys.exit(main())
