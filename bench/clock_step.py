"""Benchmark: the wall clock steps (as NTP does) under the real daemon; polls must go on.

    .venv/bin/python bench/clock_step.py [--steps -3600 21600 -86400] [--every 1]

The daemon (`alertd run`) runs as a subprocess whose wall clock Debian's libfaketime steps
(tests/faketime.py: CLOCK_REALTIME only, the monotonic clock runs on, exactly as in a real
step), with one `command` source polled every `--every` seconds. For each step the bench
watches `alertd_source_polls_total` (every 50 ms, on its own monotonic clock) for 10 s
before and 20 s after the step, and reports the longest gap between two polls around the
step (to the end of the watch if none came after it), how long after the step the next poll came, and `/healthz`. Before issue 16 a step
back of an hour stopped every poll for an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from configs import config_text  # noqa: E402
from daemon_process import DaemonProcess  # noqa: E402
from faketime import FakeTime, library  # noqa: E402
from servers import free_port  # noqa: E402


def polls(port: int) -> float:
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line.startswith('alertd_source_polls_total{source="app"}'):
            return float(line.split()[-1])
    return 0.0


def watch(port: int, seconds: float) -> list[float]:
    """Monotonic times at which the poll count went up, for `seconds`."""
    times, last, end = [], polls(port), time.monotonic() + seconds
    while time.monotonic() < end:
        n = polls(port)
        if n > last:
            times.append(time.monotonic())
            last = n
        time.sleep(0.05)
    return times


def run(steps: list[float], every: float, workdir: Path) -> list[dict]:
    port = free_port()
    path = workdir / "alertd.yaml"
    path.write_text(config_text(
        http={"listen": f"127.0.0.1:{port}"}, store=str(workdir / "alertd.db"),
        sources={"app": {"type": "command", "every": f"{every:g}s", "command": ["/bin/echo", "1"], "name": "up"}},
        rules=[{"name": "down", "source": "app", "series": "up", "detector": {"type": "threshold", "below": 1}}],
        receivers={"rec": [{"type": "console"}]}))
    clock, out = FakeTime(workdir), []
    with DaemonProcess(path, env=clock.env()) as daemon:
        daemon.wait_event("daemon_ready", timeout=120)
        for step in steps:
            before = watch(port, 10)
            mark = daemon.mark()
            clock.step(step)
            at = time.monotonic()
            after = watch(port, 20)
            end = time.monotonic()
            seen = before + (after or [end])  # no poll after the step: the gap runs to the end of the watch
            gaps = [b - a for a, b in zip(seen, seen[1:])]
            moved = [e for e in daemon.events[mark:] if e.get("event") == "jobs_rescheduled"]
            out.append({"step_s": step, "polls_10s_before": len(before), "polls_20s_after": len(after),
                        "first_poll_after_step_s": round(after[0] - at, 2) if after else None,
                        "longest_gap_s": round(max(gaps), 2) if gaps else None,
                        "jobs_rescheduled": moved[0]["jobs"] if moved else [],
                        "healthz": httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code})
        daemon.stop()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=float, nargs="+", default=[-3600, 6 * 3600, -86400])
    parser.add_argument("--every", type=float, default=1.0)
    args = parser.parse_args()
    if library() is None:
        raise SystemExit("libfaketime is missing: apt-get install faketime")
    with tempfile.TemporaryDirectory(prefix="alertd-clock-") as tmp:
        results = run(args.steps, args.every, Path(tmp))
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg": round(os.getloadavg()[0], 2), "every_s": args.every}
    for r in results:
        print(json.dumps({**meta, **r}))
    return 0 if all(r["longest_gap_s"] is not None and r["longest_gap_s"] < 5 * args.every + 2 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
