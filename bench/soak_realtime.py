"""Benchmark: a real-time soak of the real daemon, its real scheduler and the system clock.

    .venv/bin/python bench/soak_realtime.py [--minutes 30] [--retention 2m] [--history-retention 10m] [--sample 60]

`alertd run` runs as a subprocess (JSON log lines, as under systemd) on a config with short
intervals: `retention: 2m` (so the prune job runs every minute) and `history_retention: 10m`
(resolved incidents and sent notices leave after 10 minutes), two sources polled every 2
and 5 s (the shop simulator at real speed, and bench/plugins/churn.py: steady queues, three
that spike for a minute in every five, and 50 pod series whose names change every 2
minutes), rules with thresholds, z-scores and a PyOD model refitted every 2 minutes, and
notices to a local webhook. Every `--sample` seconds it records the daemon's RSS and open
descriptors (/proc/PID), the scheduler's job counts (`alertd_scheduler_jobs_total` from
/metrics), and the store (a read-only connection: samples, their oldest timestamp, series,
`PRAGMA integrity_check`, and the pages of the samples and series tables apart from the
rest, which grows with incidents and notices, not with samples). At the end: SIGTERM, `integrity_check`, and one JSON summary:
first/last/max and the least-squares slope per hour (after the first 5 minutes) of RSS and
descriptors, every job's run count, the oldest sample's age against retention, series in
the store against the ones a poll has within retention.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from configs import config_text  # noqa: E402
from daemon_process import DaemonProcess  # noqa: E402
from servers import RecordingHTTPServer, free_port  # noqa: E402

from alertd.durations import parse_duration  # noqa: E402

WARMUP = 300.0  # seconds left out of the slopes: windows, caches and the first model fill up


def soak_config(store: Path, port: int, hook: str, retention: str, history_retention: str | None = "10m") -> str:
    return config_text(
        plugin_dirs=[str(ROOT / "bench" / "plugins")], store=str(store), retention=retention,
        history_retention=history_retention,
        http={"listen": f"127.0.0.1:{port}"}, shutdown_timeout="10s",
        sources={"shop": {"type": "shop_sim", "every": "2s", "step": "2s", "speed": 1, "backfill": False},
                 "churn": {"type": "churn", "every": "5s", "backfill": False}},
        rules=[{"name": "payment_down", "source": "shop", "series": 'payment_success_ratio{provider=~".+"}',
                "detector": {"type": "threshold", "below": 0.9}},
               {"name": "orders_odd", "source": "shop", "series": 'orders_per_minute{region=~".+"}',
                "detector": {"type": "zscore", "window": 60, "threshold": 6}},
               {"name": "queue_high", "source": "churn", "series": "queue_depth",
                "detector": {"type": "threshold", "above": 100}, "flapping": False},
               {"name": "queue_odd", "source": "churn", "series": "queue_depth", "for": "1m",
                "detector": {"type": "pyod", "model": "KNN", "min_history": 20, "train_points": 24,
                             "retrain": "2m", "threshold": 0.999}},
               {"name": "pod_requests", "source": "churn", "series": "requests",
                "detector": {"type": "zscore", "window": 20, "min_history": 5}}],
        receivers={"hook": [{"type": "webhook", "url": f"{hook}/hook"}]},
        routes={"receiver": "hook", "group_by": ["rule"], "group_wait": "5s", "group_interval": "30s",
                "repeat_interval": "10m"})


def proc_stats(pid: int) -> tuple[float, int, float, float]:
    """RSS, open descriptors, and RSS split into anonymous memory (the heaps) and file-backed
    pages (shared libraries' code, touched the first time a path runs: growth there is no leak)."""
    status = Path(f"/proc/{pid}/status").read_text()

    def mib(field: str) -> float:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.M).group(1)) / 1024
    return mib("VmRSS"), len(os.listdir(f"/proc/{pid}/fd")), mib("RssAnon"), mib("RssFile")


def job_counts(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        m = re.match(r'alertd_scheduler_jobs_total\{job="([^"]+)",outcome="([^"]+)"\} (\S+)', line)
        if m:
            out[f"{m.group(1)} {m.group(2)}"] = float(m.group(3))
    for m in re.finditer(r'^alertd_history_pruned_total\{kind="([^"]+)"\} (\S+)$', text, re.M):
        out[f"history_pruned {m.group(1)}"] = float(m.group(2))
    for name in ("alertd_samples_pruned_total", "alertd_series_dropped_total", "alertd_healthy"):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        if m:
            out[name] = float(m.group(1))
    return out


def store_stats(path: Path) -> dict:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        head, oldest = db.execute("SELECT count(*), min(ts) FROM samples").fetchone()
        sealed = db.execute("SELECT COALESCE(sum(n), 0), min(start_ts) FROM sample_chunks").fetchone()
        count = head + sealed[0]  # head rows and sealed chunk points (issue 20)
        oldest = min(x for x in (oldest, sealed[1]) if x is not None) if sealed[1] is not None else oldest
        series = db.execute("SELECT count(*) FROM series").fetchone()[0]
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        try:  # pages of the samples (head and chunks) and their series (the rest: incidents, notices, models)
            sample_pages = db.execute("SELECT count(*) FROM dbstat WHERE name IN ('samples', 'series', 'sample_chunks', "
                                      "'sample_times', 'idx_sample_chunks_series')").fetchone()[0]
        except sqlite3.OperationalError:  # SQLite built without dbstat
            sample_pages = None
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()
    return {"samples": count, "oldest_age_s": None if oldest is None else round(time.time() - oldest, 1),
            "series": series, "pages": pages, "sample_pages": sample_pages, "integrity": integrity}


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    mx, my = statistics.fmean(x for x, _ in points), statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return 3600 * sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def soak(minutes: float, retention: str, every: float, workdir: Path, web: RecordingHTTPServer,
         history_retention: str | None = "10m", env: dict | None = None) -> dict:
    port, store = free_port(), workdir / "alertd.db"
    config = workdir / "alertd.yaml"
    config.write_text(soak_config(store, port, web.url, retention, history_retention))
    rows, started = [], time.monotonic()
    with DaemonProcess(config, env=env) as daemon:
        daemon.wait_event("daemon_ready", timeout=120)
        pid = daemon.proc.pid
        end = started + minutes * 60
        next_sample = time.monotonic()
        while time.monotonic() < end:
            if daemon.proc.poll() is not None:
                raise SystemExit("the daemon exited:\n" + "\n".join(daemon.lines[-40:]))
            if time.monotonic() >= next_sample:
                rss, fds, anon, file_backed = proc_stats(pid)
                row = {"t": round(time.monotonic() - started, 1), "rss_mib": round(rss, 1), "fds": fds,
                       "rss_anon_mib": round(anon, 1), "rss_file_mib": round(file_backed, 1),
                       **store_stats(store), "jobs": job_counts(port), "notices": len(web.requests)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                next_sample += every
            time.sleep(1)  # the bench's own pace: the daemon runs on its own timers
        daemon.signal(signal.SIGTERM)
        code = daemon.wait_exit(60)
        errors = [e for e in daemon.events if e.get("level") in ("error", "critical")]
        unhealthy = daemon.count("daemon_unhealthy")
        pruned = [e for e in daemon.events if e.get("event") == "samples_pruned"]
    final = store_stats(store)
    steady = [r for r in rows if r["t"] >= WARMUP]
    last_jobs = rows[-1]["jobs"]
    return {
        "minutes": minutes, "retention_s": parse_duration(retention), "exit_code": code,
        "samples_taken": len(rows), "integrity_check": final["integrity"],
        "integrity_checks_ok": sum(r["integrity"] == "ok" for r in rows) + (final["integrity"] == "ok"),
        "rss_mib": {"first": rows[0]["rss_mib"], "after_warmup": steady[0]["rss_mib"] if steady else None,
                    "last": rows[-1]["rss_mib"], "max": max(r["rss_mib"] for r in rows),
                    "slope_per_hour_after_warmup": round(slope_per_hour([(r["t"], r["rss_mib"]) for r in steady]), 2),
                    "anon_slope_per_hour_after_warmup": round(slope_per_hour([(r["t"], r["rss_anon_mib"]) for r in steady]), 2),
                    "file_slope_per_hour_after_warmup": round(slope_per_hour([(r["t"], r["rss_file_mib"]) for r in steady]), 2)},
        "open_fds": {"first": rows[0]["fds"], "last": rows[-1]["fds"], "max": max(r["fds"] for r in rows),
                     "min_after_warmup": min((r["fds"] for r in steady), default=None),
                     "slope_per_hour_after_warmup": round(slope_per_hour([(r["t"], r["fds"]) for r in steady]), 2)},
        "jobs": {k: v for k, v in last_jobs.items() if k.endswith(" ok") or k.endswith(" error")},
        "samples_pruned": last_jobs.get("alertd_samples_pruned_total"),
        "series_dropped": last_jobs.get("alertd_series_dropped_total"),
        "prune_runs_logged": len(pruned),
        "history_pruned": {k.split(" ", 1)[1]: v for k, v in last_jobs.items() if k.startswith("history_pruned ")},
        "oldest_sample_age_s": {"max_over_run": max((r["oldest_age_s"] or 0) for r in rows[1:] or rows),
                                "at_end": final["oldest_age_s"]},
        "store_samples": {"after_warmup": steady[0]["samples"] if steady else None, "last": rows[-1]["samples"],
                          "max": max(r["samples"] for r in rows)},
        "store_series": {"after_warmup": steady[0]["series"] if steady else None, "last": rows[-1]["series"],
                         "max": max(r["series"] for r in rows)},
        "store_pages": {"after_warmup": steady[0]["pages"] if steady else None, "last": rows[-1]["pages"]},
        "samples_and_series_pages": {"after_warmup": steady[0]["sample_pages"] if steady else None,
                                     "last": rows[-1]["sample_pages"],
                                     "max": max((r["sample_pages"] or 0) for r in rows)},
        "notices_delivered": len(web.requests), "errors_logged": len(errors),
        "error_events": sorted({e.get("event") for e in errors}), "daemon_unhealthy": unhealthy,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--retention", default="2m")
    parser.add_argument("--history-retention", default="10m",
                        help="resolved incidents, finished notices (store/history_retention.py); "
                             "'default' leaves the daemon's 30d")
    parser.add_argument("--sample", type=float, default=60, help="seconds between two measurements")
    parser.add_argument("--out", help="also write the whole result (every measurement) to this JSON file")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="set in the daemon's environment (MALLOC_ARENA_MAX=2, say); repeatable")
    parser.add_argument("--memtrace", metavar="DIR",
                        help="trace the daemon's memory (bench/memtrace/sitecustomize.py): tracemalloc snapshots "
                             "and malloc's figures every --memtrace-every seconds into DIR")
    parser.add_argument("--memtrace-every", type=float, default=600)
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    if args.memtrace:
        env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "bench" / "memtrace"), os.environ.get("PYTHONPATH")])),
                   ALERTD_MEMTRACE_DIR=str(Path(args.memtrace).resolve()), ALERTD_MEMTRACE_EVERY=str(args.memtrace_every))
    with tempfile.TemporaryDirectory(prefix="alertd-soak-rt-") as tmp, RecordingHTTPServer() as web:
        history = None if args.history_retention == "default" else args.history_retention
        result = soak(args.minutes, args.retention, args.sample, Path(tmp), web, history, env)
        result["daemon_env"] = env
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    rows = result.pop("rows")
    print(json.dumps({"machine": f"{platform.machine()} {os.cpu_count()} cpus, {platform.python_version()}",
                      "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      "loadavg": [round(x, 2) for x in os.getloadavg()], **result,
                      "rss_mib_each_sample": [r["rss_mib"] for r in rows],
                      "rss_anon_mib_each_sample": [r["rss_anon_mib"] for r in rows], "fds_each_sample": [r["fds"] for r in rows],
                      "series_each_sample": [r["series"] for r in rows], "samples_each_sample": [r["samples"] for r in rows]}))
    ok = (result["integrity_check"] == "ok" and result["exit_code"] == 0
          and all(v > 0 for k, v in result["jobs"].items() if k.endswith(" ok"))
          and not any(k.endswith(" error") and v for k, v in result["jobs"].items()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
