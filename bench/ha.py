"""Benchmark: high availability the Prometheus way, with real processes on loopback.

    nice -n 10 .venv/bin/python bench/ha.py [--duration 300] [--rules 8] [--seed 1] [--json]

Two shards of one config, each run by two identical replicas of the real `alertd run` (same
config, own store, own HTTP port), all sending to every node of a real three-node
Alertmanager cluster (Debian's prometheus-alertmanager, gossiping on 127.0.0.1), which
de-duplicates and notifies one webhook receiver (a local HTTP server) that records every
notice.

The series come from a target every replica polls (an `http_json` source on a local HTTP
server, as two Prometheus replicas scrape the same exporter): for each rule one series that
is 1 during scheduled incidents (`--active` seconds every `--period`, rules spread over the
period) and 0 between them, so incidents fire and resolve all through the run. At random
moments (seeded) the run SIGKILLs one replica of each shard and one Alertmanager node, and
restarts each a few seconds later (`--rounds` rounds).

Judged at the receiver, per scheduled incident: a notice of it firing and one of it
resolved must arrive (arrivals are assigned to the incident whose start precedes them, up to
the next one of the rule); a missing one is a lost notice. Every notice beyond those two is a
duplicate. The same run (same schedule, same Alertmanager kills) against one replica per
shard, with no replica killed, gives the duplicates the cluster makes by itself: the
difference is what replication costs.

`run(...)` is also the short HA test of the suite (tests/test_ha.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
from servers import RecordingHTTPServer, free_port, free_ports  # noqa: E402

from alertd.config.shards import rule_shard  # noqa: E402

BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
SHARDS = 2


# -- what the target serves ------------------------------------------------------------------
@dataclass(frozen=True)
class Incident:
    """A scheduled incident of one rule: its series is 1 from `start` to `end` (wall time)."""

    rule: str
    start: float
    end: float


def rule_names(count: int) -> list[str]:
    """`count` rule names, as many in each of the two shards (the names are hashed)."""
    names, per_shard, i = [], [0] * SHARDS, 0
    while len(names) < count:
        name = f"ha_rule_{i:03d}"
        shard = rule_shard(name, SHARDS)
        if per_shard[shard] < (count + SHARDS - 1) // SHARDS:
            names.append(name)
            per_shard[shard] += 1
        i += 1
    return names


def schedule(rules: list[str], t0: float, duration: float, period: float, active: float,
             tail: float) -> list[Incident]:
    """Incidents every `period` seconds per rule, rules spread over the period; none starts
    before `t0 + period / 2` or ends after `t0 + duration - tail`."""
    out = []
    for k, name in enumerate(rules):
        start = t0 + period / 2 + k * period / len(rules)
        while start + active <= t0 + duration - tail:
            out.append(Incident(name, start, start + active))
            start += period
    return out


class Target:
    """The exporter every replica polls: {"series": [{"incident": name, "value": 0|1}, ...]};
    every series is 0 until `play` gives it its incidents."""

    def __init__(self, rules: list[str]):
        self.rules = rules
        self.windows: dict[str, list[tuple[float, float]]] = {r: [] for r in rules}
        self.server = RecordingHTTPServer(handler=self.answer)
        self.server.requests = _Discard()  # the target is polled for minutes: keep no requests

    def play(self, incidents: list[Incident]) -> None:
        windows = {r: [] for r in self.rules}
        for inc in incidents:
            windows[inc.rule].append((inc.start, inc.end))
        self.windows = windows

    def value(self, rule: str, now: float) -> int:
        return int(any(a <= now < b for a, b in self.windows[rule]))

    def answer(self, request):
        now = time.time()
        body = {"series": [{"incident": r, "value": self.value(r, now)} for r in self.rules]}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)


class _Discard(list):
    def append(self, item):  # noqa: D401 - a list that keeps nothing
        pass

    def __len__(self):
        return 0


# -- the receiver ------------------------------------------------------------------------
@dataclass
class Notice:
    """One alert of one webhook notice as the receiver got it."""

    at: float
    rule: str
    status: str  # firing | resolved
    starts_at: str
    via: str = ""  # the externalURL of the Alertmanager that sent it


class Receiver:
    """The webhook behind the Alertmanager cluster: records each alert of each notice."""

    def __init__(self):
        self.notices: list[Notice] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.server = RecordingHTTPServer(handler=self.answer)
        self.server.requests = _Discard()

    def answer(self, request):
        now = time.time()
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, {}, "not json"
        with self.lock:
            self.bodies.append(body)
            for alert in body.get("alerts", []):
                self.notices.append(Notice(now, alert["labels"].get("alertname", "?"), alert["status"],
                                           alert.get("startsAt", ""), body.get("externalURL", "")))
        return 200, {}, "ok"

    def snapshot(self) -> list[Notice]:
        with self.lock:
            return list(self.notices)


def judge(incidents: list[Incident], notices: list[Notice]) -> dict:
    """Per incident: firing and resolved notices that arrived from its start to the next
    incident of its rule (or the end). Lost: an incident without one of them; duplicates:
    every notice beyond one of each."""
    by_rule: dict[str, list[Incident]] = {}
    for inc in sorted(incidents, key=lambda i: i.start):
        by_rule.setdefault(inc.rule, []).append(inc)
    counts = {inc: {"firing": 0, "resolved": 0} for inc in incidents}
    stray = 0  # notices before the first incident of their rule (should be none)
    for n in notices:
        mine = [inc for inc in by_rule.get(n.rule, []) if inc.start <= n.at]
        if not mine:
            stray += 1
            continue
        counts[mine[-1]][n.status] += 1
    lost = [{"rule": inc.rule, "start": round(inc.start, 1), "missing": k}
            for inc, c in counts.items() for k in ("firing", "resolved") if c[k] == 0]
    dup_firing = sum(max(0, c["firing"] - 1) for c in counts.values())
    dup_resolved = sum(max(0, c["resolved"] - 1) for c in counts.values())
    return {"incidents": len(incidents), "notices": len(notices), "lost": lost,
            "duplicate_firing": dup_firing, "duplicate_resolved": dup_resolved,
            "duplicates": dup_firing + dup_resolved + stray, "stray": stray}


def complete(incidents: list[Incident], notices: list[Notice]) -> bool:
    return not judge(incidents, notices)["lost"]


# -- the processes ----------------------------------------------------------------------------
@dataclass
class Proc:
    """A program the run starts, kills and restarts: argv, its log, its readiness URL."""

    name: str
    argv: list[str]
    ready_url: str
    log: Path
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        out = open(self.log, "ab")
        out.write(f"\n---- start {self.starts} at {time.time():.3f}\n".encode())
        out.flush()
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        out.close()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Poll the readiness URL (a process starting up) until 200, or raise with the log's tail."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready within {timeout:g}s: {self.tail()}")
            time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-1500:]
        except OSError:
            return ""


AM_CONFIG = """\
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook}/hook
        send_resolved: true
"""


def alertmanagers(work: Path, hook: str, nodes: int) -> list[Proc]:
    """`nodes` Alertmanagers on loopback, each told every other one's gossip address."""
    (work / "am.yml").write_text(AM_CONFIG.format(hook=hook))
    ports = free_ports(2 * nodes)
    web, gossip = ports[:nodes], ports[nodes:]
    out = []
    for i in range(nodes):
        peers = [f"--cluster.peer=127.0.0.1:{gossip[j]}" for j in range(nodes) if j != i]
        argv = [BINARY, f"--config.file={work / 'am.yml'}", f"--storage.path={work / f'am-{i}'}",
                f"--web.listen-address=127.0.0.1:{web[i]}",
                f"--cluster.listen-address=127.0.0.1:{gossip[i]}", *peers,
                # gossip fast on loopback: a dead peer is seen within about a second and a
                # node waits peer-timeout per position before notifying in its place
                "--cluster.gossip-interval=100ms", "--cluster.pushpull-interval=2s",
                "--cluster.probe-interval=300ms", "--cluster.probe-timeout=200ms",
                "--cluster.peer-timeout=1s", "--cluster.reconnect-interval=1s",
                "--cluster.settle-timeout=5s", f"--log.level={os.environ.get('ALERTD_HA_AM_LOG', 'info')}"]
        out.append(Proc(f"alertmanager-{i}", argv, f"http://127.0.0.1:{web[i]}/-/ready", work / f"am-{i}.log"))
    return out


ALERTD_CONFIG = """\
http: {{listen: "127.0.0.1:${{ALERTD_HTTP_PORT}}"}}
sources:
  target:
    type: http_json
    every: 1s
    url: {target}/series
    timeout: 2s
    metrics: [{{name: incident_active, items: series, value: value, labels: {{incident: incident}}}}]
rules:
{rules}
receivers:
  cluster:
{integrations}
routes: {{receiver: cluster, group_by: ["..."], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}}
"""


def alertd_config(work: Path, target: str, rules: list[str], am_urls: list[str], flapping: bool) -> Path:
    lines = [f'  - {{name: {r}, source: target, series: \'incident_active{{incident="{r}"}}\', '
             f'detector: {{type: threshold, above: 0.5}}, flapping: {str(flapping).lower()}}}' for r in rules]
    integrations = [f"    - {{type: alertmanager, url: \"{u}\"}}" for u in am_urls]
    path = work / "alertd.yaml"
    path.write_text(ALERTD_CONFIG.format(target=target, rules="\n".join(lines),
                                         integrations="\n".join(integrations)))
    return path


def replicas(work: Path, config: Path, per_shard: int) -> list[list[Proc]]:
    """[shard][replica] `alertd run` processes: same config, own store and port."""
    out = []
    for shard in range(SHARDS):
        row = []
        for r in range(per_shard):
            port = free_port()
            name = f"alertd-{shard}{'ab'[r]}"
            argv = [sys.executable, "-m", "alertd.cli.entry", "run", "-c", str(config), "--log-format", "json",
                    "--shard", f"{shard}/{SHARDS}", "--store", str(work / f"{name}.db")]
            row.append(Proc(name, argv, f"http://127.0.0.1:{port}/readyz", work / f"{name}.log",
                            env={"ALERTD_HTTP_PORT": str(port)}))
        out.append(row)
    return out


# -- the run ----------------------------------------------------------------------------------
@dataclass
class Kill:
    at: float  # seconds after the start of the schedule
    down: float  # seconds until the restart
    what: str  # "shard0" | "shard1" | "am"
    which: int  # the replica (0 or 1) or the Alertmanager node


def kill_plan(rng: random.Random, duration: float, tail: float, rounds: int, nodes: int) -> list[Kill]:
    """`rounds` rounds; in each, at random moments of its slice of the run, one replica of each
    shard and one Alertmanager node are killed for 2-8 s. The plan does not depend on the
    number of replicas, so a run with one replica per shard makes the same Alertmanager kills
    (and leaves out the replica kills)."""
    plan = []
    span = (duration - tail - 10) / max(rounds, 1)
    for i in range(rounds):
        lo = 5 + i * span
        for what in ("shard0", "shard1", "am"):
            plan.append(Kill(lo + rng.uniform(0, span * 0.6), rng.uniform(2, 8), what,
                             rng.randrange(nodes if what == "am" else 2)))
    return sorted(plan, key=lambda k: k.at)


def run(*, duration: float = 300, rules: int = 8, period: float = 20, active: float = 7,
        replicas_per_shard: int = 2, nodes: int = 3, rounds: int = 3, seed: int = 1,
        kill_replicas: bool | None = None, drain: float = 90, linger: float = 12, flapping: bool = True,
        work: Path | None = None,
        say=lambda *a: None) -> dict:
    """One run; returns the judgement, the kills made and the processes' restarts."""
    if not shutil.which(BINARY):
        raise RuntimeError("prometheus-alertmanager is not installed; run `sh scripts/system-deps.sh`")
    kill_replicas = replicas_per_shard > 1 if kill_replicas is None else kill_replicas
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="alertd-ha-")) if own else work
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = rule_names(rules)
    tail = period  # the last incidents end a period before the end: room for their resolves
    receiver = Receiver()
    receiver.server.start()
    procs: list[Proc] = []
    target = None
    try:
        ams = alertmanagers(work, receiver.server.url, nodes)
        for am in ams:
            am.start()
        procs += ams
        for am in ams:
            am.wait_ready()
        am_urls = [am.ready_url.rsplit("/-/", 1)[0] for am in ams]
        # the schedule starts once everything is up: alertd's start (imports) takes seconds
        target = Target(names)
        target.server.start()
        config = alertd_config(work, target.server.url, names, am_urls, flapping)
        shards = replicas(work, config, replicas_per_shard)
        for row in shards:
            for p in row:
                p.start()
                procs.append(p)
        for row in shards:
            for p in row:
                p.wait_ready()
        t0 = time.time()
        incidents = schedule(names, t0, duration, period, active, tail)
        target.play(incidents)
        plan = [k for k in kill_plan(rng, duration, tail, rounds, nodes)
                if kill_replicas or k.what == "am"]
        say(f"{len(incidents)} incidents of {len(names)} rules over {duration:g}s; "
            f"{len(plan)} kills; work dir {work}")
        pending: list[tuple[float, float, Proc, float]] = []  # (kill at, planned, victim, down)
        made = []
        for k in plan:
            victim = ams[k.which] if k.what == "am" else shards[int(k.what[-1])][k.which % replicas_per_shard]
            pending.append((t0 + k.at, round(k.at, 1), victim, k.down))
        pending.sort(key=lambda e: e[0])
        restarts: list[tuple[float, Proc]] = []
        while pending or restarts:
            now = time.time()
            if pending and pending[0][0] <= now:
                _, planned, victim, down = pending.pop(0)
                victim.kill()
                made.append({"at": round(now - t0, 1), "planned": planned, "killed": victim.name,
                             "down": round(down, 1)})
                say(f"  t={now - t0:6.1f}s SIGKILL {victim.name} for {down:.1f}s")
                restarts.append((now + down, victim))
                restarts.sort(key=lambda e: e[0])
            elif restarts and restarts[0][0] <= now:
                _, victim = restarts.pop(0)
                victim.start()
                say(f"  t={now - t0:6.1f}s restart {victim.name}")
            else:
                nxt = min([e[0] for e in pending[:1]] + [e[0] for e in restarts[:1]])
                time.sleep(min(0.2, max(0.0, nxt - now)))
        for p in procs:  # every killed process is back: wait for each to be ready again
            p.wait_ready()
        # the schedule runs out, then the last notices come through the cluster: poll for them
        end = t0 + duration
        while time.time() < end:
            time.sleep(0.5)
        deadline = time.time() + drain
        while time.time() < deadline and not complete(incidents, receiver.snapshot()):
            time.sleep(0.5)
        # then watch a little longer: a duplicate may still be on its way (a node waiting its
        # turn, a group's next interval)
        watch_until = min(deadline, time.time() + linger)
        while time.time() < watch_until:
            time.sleep(0.5)
        result = judge(incidents, receiver.snapshot())
        for item in result["lost"]:  # seconds since the schedule's start
            item["start"] = round(item["start"] - t0, 1)
        result["timeline"] = {
            "incidents": [(i.rule, round(i.start - t0, 2), round(i.end - t0, 2)) for i in incidents],
            "notices": [(n.rule, round(n.at - t0, 2), n.status, n.starts_at, n.via.rsplit(":", 1)[-1]) for n in receiver.snapshot()]}
        (work / "timeline.json").write_text(json.dumps(result["timeline"], indent=1))
        result.update({"replicas_per_shard": replicas_per_shard, "rules": len(names), "nodes": nodes,
                       "duration": duration, "kills": made, "seed": seed, "work": str(work),
                       "restarts": {p.name: p.starts - 1 for p in procs}})
        return result
    finally:
        for p in procs:
            p.stop()
        receiver.server.close()
        if target is not None:
            target.server.close()
        if own and os.environ.get("ALERTD_HA_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=300, help="seconds of scheduled incidents")
    ap.add_argument("--rules", type=int, default=8)
    ap.add_argument("--period", type=float, default=20)
    ap.add_argument("--active", type=float, default=7)
    ap.add_argument("--rounds", type=int, default=4, help="kill rounds (each kills 3 processes)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--replicas", type=int, nargs="+", default=[2, 1],
                    help="replicas per shard of each run (default: 2, then 1 for comparison)")
    ap.add_argument("--no-flapping", dest="flapping", action="store_false",
                    help="the rules with `flapping: false` (flap detection is on by default, as in "
                         "alertd's own defaults)")
    ap.add_argument("--keep", action="store_true", help="keep each run's work dir (logs, stores, timeline.json)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    results = {}
    if args.keep:
        os.environ["ALERTD_HA_KEEP"] = "1"
    for per_shard in args.replicas:
        say(f"== {per_shard} replica(s) per shard, {args.rounds} kill rounds, seed {args.seed}")
        results[per_shard] = run(duration=args.duration, rules=args.rules, period=args.period,
                                 active=args.active, replicas_per_shard=per_shard, rounds=args.rounds,
                                 seed=args.seed, flapping=args.flapping, say=say)
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"results": results, "load": load}, indent=2))
    else:
        print(f"\nfinished {datetime.now().isoformat(timespec='seconds')}, load average {load[0]:.2f} {load[1]:.2f} (1 and 5 min)")
        print(f"{'replicas/shard':>14} {'incidents':>9} {'notices':>7} {'lost':>4} {'dup firing':>10} "
              f"{'dup resolved':>12} {'kills':>5}")
        for k, r in results.items():
            print(f"{k:>14} {r['incidents']:>9} {r['notices']:>7} {len(r['lost']):>4} {r['duplicate_firing']:>10} "
                  f"{r['duplicate_resolved']:>12} {len(r['kills']):>5}")
            for item in r["lost"]:
                print("   lost:", item)
    return 1 if any(r["lost"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
