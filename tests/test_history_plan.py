"""Back-fill and retention follow each rule's training plan.

Before issue 16, back-fill was capped at 10,000 points x `every`: a weekly `seasonal` rule on a
30 s source got 4.2 of its 28 days and stayed silent about 10 days; the default `retention: 7d`
was shorter than such a rule's 2-4 weeks, and `alertd validate` did not say so.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from configs import config_text
from structlog.testing import capture_logs

from alertd import Sample, Source, make_labels
from alertd.cli.entry import main
from alertd.config.load import load_config
from alertd.daemon.core import Daemon
from alertd.testing import registry_with

DAY = 86400.0


class History(Source):
    """A source with a long memory: one point every `every` seconds over whatever range is asked."""

    type_name = "history"
    calls: list = []

    @dataclass(frozen=True)
    class Params:
        pass

    async def collect(self):
        return [Sample("orders", make_labels({"region": "eu"}), self.context.now(), 100.0)]

    async def backfill(self, start, end):
        History.calls.append((start, end))
        step = self.context.interval
        first = start + (-start % step)
        return [Sample("orders", make_labels({"region": "eu"}), first + i * step, 100.0)
                for i in range(int((end - first) // step) + 1) if first + i * step < end]


def weekly(**top) -> str:
    return config_text(**top, sources={"shop": {"type": "history", "every": "5m"}},
                       rules=[{"name": "weekly_orders", "source": "shop", "series": "orders",
                               "detector": {"type": "seasonal"}}],
                       receivers={"rec": [{"type": "console"}]})


def line_of(path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if line.startswith(key))


def test_back_fill_reads_what_a_weekly_rule_needs_in_chunks(write_config, tmp_path, clock):
    registry = registry_with(History)
    config = load_config(write_config(weekly()), registry, environ={})
    assert config.retention == 28 * DAY and not config.retention_given  # chosen: the rule reads 4 weeks
    History.calls.clear()

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        with capture_logs() as logs:
            await d.backfill()
        span = d.store.db.execute("SELECT min(ts), max(ts), count(*) FROM samples").fetchone()
        await d.drain()
        return span, logs

    (oldest, newest, count), logs = asyncio.run(main())
    now = clock.now()
    assert oldest < now - 27.9 * DAY and newest > now - 300  # the 4 weeks the rule reads
    assert count == len({t for t in range(int(oldest), int(newest) + 1, 300)})  # every point once
    # 28 days at 5 minutes is 8,064 points: a first call of 10 points (it tells how many series
    # answer: one), then the rest at once (up to 10,000 points of each series a call)
    assert History.calls == [(now - 28 * DAY, now - 28 * DAY + 10 * 300), (now - 28 * DAY + 10 * 300, now)]
    assert [e for e in logs if e["event"] == "backfilled"][0]["samples"] == count


def test_back_fill_of_a_fast_source_comes_in_bounded_chunks(write_config, tmp_path, clock):
    registry = registry_with(History)
    text = weekly().replace("every: 5m", "every: 30s")
    config = load_config(write_config(text), registry, environ={})
    History.calls.clear()

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        await d.backfill()
        rows = d.store.db.execute("SELECT min(ts), count(*) FROM samples").fetchone()
        await d.drain()
        return rows

    oldest, count = asyncio.run(main())
    now = clock.now()
    # 28 days at 30 s: 80,640 points: 10, then chunks of 10,000 (3.47 days): 10 calls, oldest
    # first, not the 4.2 days (10,000 x 30 s x 1.2) the old cap gave
    assert len(History.calls) == 10 and History.calls[0][0] == now - 28 * DAY and History.calls[-1][1] == now
    assert all(a[1] == b[0] for a, b in zip(History.calls, History.calls[1:]))
    assert oldest < now - 27.9 * DAY and count == 80_640


class Many(History):
    """The same history for `Many.series` series (a fleet)."""

    type_name = "many"
    series = 100

    async def backfill(self, start, end):
        one = await History.backfill(self, start, end)
        return [Sample("orders", make_labels({"region": f"r{i}"}), s.ts, s.value) for s in one
                for i in range(Many.series)]


def test_back_fill_of_many_series_asks_for_bounded_chunks_and_ingests_bounded_pieces(write_config, tmp_path,
                                                                                   clock, monkeypatch):
    import alertd.daemon.backfill as backfill

    monkeypatch.setattr(backfill, "CALL_SAMPLES", 5_000)  # 50 points of 100 series
    monkeypatch.setattr(backfill, "FIRST_POINTS", 360)  # a first call larger than that
    registry = registry_with(Many)
    config = load_config(write_config(weekly().replace("history", "many").replace("every: 5m", "every: 1h")),
                         registry, environ={})
    History.calls.clear()
    ingested, progress = [], []

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=clock)
        await d.open()
        ingest = d.engine.ingest
        d.engine.ingest = lambda name, samples, **kw: (ingested.append(len(samples)), ingest(name, samples, **kw))[1]
        d.progress_hook = progress.append
        await d.backfill()
        count = d.store.db.execute("SELECT count(*) FROM samples").fetchone()[0]
        await d.drain()
        return count

    count = asyncio.run(main())
    points = [round((b - a) / 3600) for a, b in History.calls]
    assert points[0] == 360 and set(points[1:-1]) == {50}  # then sized by the 100 series the first found
    assert count == sum(ingested) == 100 * sum(points)  # every point of every series, once
    assert max(ingested) <= 5_000  # the first call's 36,000 samples went in pieces too
    assert len(progress) == len(History.calls) and progress[-1].startswith("back-filling shop: ")


def test_validate_says_what_to_change_when_retention_is_shorter_than_a_rule_needs(write_config, capsys,
                                                                                 monkeypatch):
    registry = registry_with(History)
    monkeypatch.setattr("alertd.plugins.load_registry", lambda *a, **k: registry)
    path = write_config(weekly(retention="7d"))
    assert main(["validate", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert (f'error: {path}:{line_of(path, "retention")}: retention: the rule "weekly_orders" (seasonal detector) reads 28d of history and '
            "needs at least 14d, but retention is 7d: its fits read the store, so it would never fit and never "
            "fire; set retention: 28d (or more), or remove the key to let alertd choose") in err
    path = write_config(weekly(retention="21d"))
    assert main(["validate", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "  store    alertd.db, retention 21d\n" in out
    assert (f'warning: {path}:{line_of(path, "retention")}: retention: the rule "weekly_orders" (seasonal detector) reads 28d of history, '
            "but retention is 21d: it would fit on less history than it was made for; set retention: 28d, or "
            "remove the key to let alertd choose") in out
    path = write_config(weekly())
    assert main(["validate", "-c", str(path)]) == 0
    assert "retention 28d (not set: what the rules read, at least 7d)" in capsys.readouterr().out


def test_a_retention_shorter_than_two_polls_is_an_error(write_config):
    from alertd.config.schema import ConfigError

    registry = registry_with(History)
    path = write_config(config_text(retention="90s", sources={"shop": {"type": "history", "every": "1m"}},
                                    rules=[], receivers={"rec": [{"type": "console"}]}))
    with pytest.raises(ConfigError) as caught:
        load_config(path, registry, environ={})
    assert [p.message for p in caught.value.problems] == [
        'retention (1m30s) is shorter than two polls of the source "shop" (every 1m): its series would be '
        "dropped as silent between polls; set retention: 7d or more"]
