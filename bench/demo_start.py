"""The demo's first shop hours, started at every hour of a day: what `orders_anomaly` pages and
what reaches the console (docs/detectors.md, "The demo's first shop hour").

    nice -n 10 .venv/bin/python bench/demo_start.py                     # Monday 2025-06-02, 24 starts, 86 shop minutes
    nice -n 10 .venv/bin/python bench/demo_start.py --day 2025-06-07 --every 4 --minutes 180

Each start runs the real `Daemon` on the shipped alertd.yaml (the shop's `start` set, no HTTP
server, the shop's rules only) on a fake clock: its back-fill, then one poll every 2 s (one
2-minute slot of shop time), fits inline. For every `orders_anomaly` incident that fired it
prints the region, the shop minute it fired at, its last value and whether the simulator's
labels explain it (judged as `alertd backtest --sim-week` judges pages:
alertd/backtest/incidents_eval.py); then the orders notices the outbox got. About 35 s of CPU
a start.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from alertd.backtest.incidents_eval import Page, evaluate
from alertd.clock import FakeClock
from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.engine.training import Trainer
from alertd.log import configure
from alertd.plugins import load_registry

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_800_000_000.0


def config_for(start: str, tmp: Path, rules: tuple[str, ...] = (), **settings) -> Path:
    """alertd.yaml as shipped, with the shop started at `start`, no HTTP server, only the
    shop's rules (or the `rules` named), its routes and inhibit rules as they are, and any
    top-level `settings` (retention, ...) replaced."""
    doc = yaml.safe_load((ROOT / "alertd.yaml").read_text())
    doc.update(store=str(tmp / "demo.db"), plugin_dirs=[str(ROOT / "plugins")], **settings)
    doc.pop("http", None)
    doc["sources"] = {"shop": {**doc["sources"]["shop"], "start": start}}
    doc["rules"] = [r for r in doc["rules"] if (r["name"] in rules if rules else r["source"] == "shop")]
    path = tmp / "alertd.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@asynccontextmanager
async def demo_daemon(config_path: Path, tmp: Path, minutes: int):
    """The daemon on `config_path` after its back-fill and `minutes` of shop time, polled as
    the demo polls (one poll every 2 s: one 2-minute slot), fits inline, on a fake clock;
    yields (daemon, config, shop time when the polls began) and closes it afterwards."""
    registry = load_registry([ROOT / "plugins"], entrypoints=False)
    config = load_config(config_path, registry, environ={})
    clock = FakeClock(T0)
    daemon = Daemon(config, registry, store_path=tmp / "demo.db", clock=clock)
    await daemon.open()
    daemon.trainer = Trainer(daemon.engine, daemon.store, clock, daemon.log, inline=True)
    daemon.trainer.start()
    try:
        await daemon.backfill()
        daemon.trainer.poll()
        sim0 = daemon.sources["shop"].sim_now()
        for _ in range(minutes // 2):
            clock.advance(2)
            await daemon.poll("shop")
            await daemon.pass_once()
        yield daemon, config, sim0
    finally:
        await daemon.close()


async def one_start(start: str, minutes: int) -> tuple[list, list, list]:
    """(orders pages as (region, shop minute, value), the false ones, orders notices as
    (kind, shop minute))."""
    with tempfile.TemporaryDirectory(prefix="demo-start-") as tmp:
        async with demo_daemon(config_for(start, Path(tmp)), Path(tmp), minutes) as (daemon, config, sim0):
            shop = daemon.sources["shop"]
            pages = []
            for inc in daemon.store.incidents.list(include_closed=True):
                if inc.rule == "orders_anomaly" and inc.fired_at is not None:
                    region = inc.labels.get("region")
                    pages.append(Page(inc.rule, f'orders_per_minute{{region="{region}"}}', inc.fired_at, None,
                                      inc.last_value))
            rules = [(r.name, r.series) for r in config.rules if r.name == "orders_anomaly"]
            judged = evaluate(rules, shop.labels(sim0 - 3600, shop.sim_now()), pages)
            false = [(f.page.series, round((f.page.fired_at - sim0) / 60), f.page.value, f.nearest)
                     for report in judged.rules for f in report.false_pages]
            notices = [(row["kind"], round(row["created_at"] - T0)) for row in daemon.store.outbox.rows()
                       if "orders_anomaly" in str(row["payload"])]
            return [(p.series, round((p.fired_at - sim0) / 60), p.value) for p in pages], false, notices


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--day", default="2025-06-02", help="the first start (00:00 UTC of this day)")
    ap.add_argument("--every", type=int, default=1, help="hours between starts")
    ap.add_argument("--hours", type=int, default=24, help="hours of starts")
    ap.add_argument("--minutes", type=int, default=86, help="shop minutes after each start (the spike: 90)")
    args = ap.parse_args()
    configure(level="warning")
    first = datetime.fromisoformat(args.day).replace(tzinfo=timezone.utc)
    pages = false = notices = 0
    for h in range(0, args.hours, args.every):
        start = (first + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
        p, f, n = asyncio.run(one_start(start, args.minutes))
        pages, false, notices = pages + len(p), false + len(f), notices + len(n)
        print(f"{start}  pages {p}  false {f}  orders notices {n}", flush=True)
    print(f"orders_anomaly: {pages} pages, {false} false against the labels, {notices} orders notices")


if __name__ == "__main__":
    main()
