"""Replaying the shop simulator's labelled week through every rule of a config
(`alertd backtest --sim-week`).

The config's `shop_sim` source is rebuilt with `scenario: week` (its seed, step and lists
kept; its own `incidents` only if it already runs the week; `start` default
`2025-06-02T00:00:00Z`, a Monday). Then, as the daemon would:

1. `history` of normal days before the week is back-filled (stored, windows filled, no
   verdicts: a daemon's start after a back-fill) and the trainer fits what is due;
2. every poll of the week goes through the real `Engine` (in-memory store, alert stage with
   each rule's `for`, `clear_for`, `keep_firing_for` and flap settings) on a simulated clock
   that follows the samples, and the `Trainer` fits inline when the daemon's would submit a
   fit (as if fits took no time). A poll comes every `every` x `speed` of sim time (one per
   slot when that is shorter than `step`), as the daemon's polls would see the shop.

Every `firing` transition is a page (alertd/backtest/incidents_eval.py judges them against the
week's labels). Rules on other sources are left out, and said so.
"""

from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from ..base import PluginContext
from ..clock import FakeClock
from ..config.load import load_with_plugins
from ..config.routing import RouteConfig
from ..engine.tick import Engine
from ..engine.training import Trainer
from ..metrics import Metrics
from ..model import Sample
from ..store import Store
from .incidents_eval import Page
from .replay import _quiet_log, with_threshold
from .rules import BacktestError

WEEK_START = "2025-06-02T00:00:00Z"  # the simulator's WEEK_START (a Monday)


@dataclass
class WeekRun:
    """A replayed week: what was replayed, the pages each rule fired, and what it cost."""

    source: str
    week: dict  # ShopSim.describe(): window, step, series, stock plans, labels
    rules: list  # RuleConfig, in config order
    left_out: list[tuple[str, str]]  # (rule, why) not replayed
    pages: list[Page]
    polls: int
    history: float
    fits: int
    seconds: float


def week_sim(config, registry, source: str | None = None):
    """(source name, ShopSim running the labelled week) for the config's shop_sim source."""
    sims = [name for name, s in config.sources.items() if s.type == "shop_sim"]
    if source is not None:
        if source not in config.sources:
            raise BacktestError(f'the config has no source "{source}"; its sources are {", ".join(config.sources)}')
        if source not in sims:
            raise BacktestError(f'source "{source}" is a {config.sources[source].type} source; --sim-week '
                                "replays a shop_sim source")
        sims = [source]
    if not sims:
        raise BacktestError(f"{config.path} has no shop_sim source; add one (type: shop_sim) for the rules "
                            "to replay the simulator's week")
    if len(sims) > 1:
        raise BacktestError(f"{config.path} has {len(sims)} shop_sim sources ({', '.join(sims)}); "
                            "pick one with --source")
    name = sims[0]
    params = config.sources[name].params
    own = params.scenario == "week"
    params = dataclasses.replace(params, scenario="week", speed=1.0, start=params.start or WEEK_START,
                                 incidents=params.incidents if own else None, cycle=params.cycle if own else None)
    try:
        params.check()
    except ValueError as exc:
        raise BacktestError(f"source {name} cannot run the week: {exc}") from None
    # (sim time comes from `start`; the context clock is not used: the replay asks for slots)
    return name, registry.get("source", "shop_sim")(params, PluginContext(name, lambda: 0.0))


def pick_rules(config, source: str, names=None, threshold: float | None = None):
    """(rules on `source` to replay, [(rule, why left out)]); BacktestError for an unknown name."""
    rules = list(config.rules)
    if names:
        known = {r.name for r in rules}
        for n in names:
            if n not in known:
                from ..config.schema import suggest
                raise BacktestError(f'the config has no rule "{n}"{suggest(n, known)}')
        rules = [r for r in rules if r.name in names]
    picked = [r for r in rules if r.source == source]
    left_out = [(r.name, f"it reads source {r.source}, not the simulator ({source})") for r in rules
                if r.source != source]
    if threshold is not None:
        try:
            picked = [with_threshold(r, threshold) for r in picked]
        except ValueError as exc:
            raise BacktestError(f"--threshold {threshold:g}: {exc}") from None
    return picked, left_out


def replay_week(config, registry, *, source: str | None = None, rules=None, threshold: float | None = None,
                history: float = 7 * 86400.0, jobs: int = 1, progress=None) -> WeekRun:
    """Replay the labelled week through the config's rules (see the module docstring).

    With `jobs` > 1 the rules are shared out over that many worker processes (each
    reloads the config from `config.path` and replays its rules; rules do not interact).
    `progress(done, total)` is called as polls (or, with jobs, parts) finish."""
    started = time.perf_counter()
    name, sim = week_sim(config, registry, source)
    picked, left_out = pick_rules(config, name, rules, threshold)
    if not picked:
        raise BacktestError(f"no rule of the config reads the simulator (source {name}); nothing to replay")
    week = sim.describe()
    if jobs > 1 and len(picked) > 1:
        parts = _share_out(picked, registry, jobs)
        with ProcessPoolExecutor(max_workers=len(parts)) as pool:
            futures = [pool.submit(_replay_part, config.path, name, names, threshold, history) for names in parts]
            results = []
            for future in as_completed(futures):
                results.append(future.result())
                if progress is not None:
                    progress(len(results), len(futures))
    else:
        results = [_replay_rules(config, registry, name, sim, picked, history, progress)]
    order = {r.name: i for i, r in enumerate(picked)}
    pages = sorted((p for r in results for p in r[0]), key=lambda p: (p.fired_at, order[p.rule], p.series))
    return WeekRun(name, week, picked, left_out, pages, results[0][1], results[0][2],
                   sum(r[3] for r in results), time.perf_counter() - started)


def early_warnings(rules) -> dict[str, float]:
    """{rule name: horizon in seconds} of the rules that warn ahead (a detector with a
    `will_cross` line): their pages are judged as early warnings (incidents_eval.py)."""
    out = {}
    for rule in rules:
        line = getattr(rule.detector.params, "will_cross", None)
        within = getattr(line, "within", None)
        if within:
            out[rule.name] = float(within)
    return out


def _share_out(rules, registry, jobs: int) -> list[list[str]]:
    """Rule names in at most `jobs` parts of about equal cost (a trained detector costs
    more than a threshold), the costliest first."""
    def cost(rule):
        cls = registry.get("detector", rule.detector.type)
        return 10 if getattr(cls, "trainable", False) else 1
    parts: list[list[str]] = [[] for _ in range(min(jobs, len(rules)))]
    load = [0] * len(parts)
    for rule in sorted(rules, key=cost, reverse=True):
        k = load.index(min(load))
        parts[k].append(rule.name)
        load[k] += cost(rule)
    return parts


def _replay_part(path: str, source: str, names: list[str], threshold, history: float):
    """A worker process's share: reload the config, replay `names`."""
    config, registry = load_with_plugins(path)
    name, sim = week_sim(config, registry, source)
    picked, _ = pick_rules(config, name, names, threshold)
    return _replay_rules(config, registry, name, sim, picked, history, None)


def _replay_rules(config, registry, name: str, sim, picked, history: float, progress):
    """(pages, polls, history replayed in seconds, fits) of `picked` over the week."""
    lo, hi = sim.labelled_window()
    step, src = sim.step, config.sources[name]
    every = (src.every or step) * (src.params.speed if src.every else 1.0)
    poll_slots = np.unique(np.floor((lo + np.arange(0.0, hi - lo, max(every, step))) / step).astype(np.int64))
    poll_slots = poll_slots[poll_slots * step < hi]
    hist_slots = np.arange(math.ceil((lo - history) / step), int(poll_slots[0]))
    cols = sim.values(np.concatenate([hist_slots, poll_slots]))
    series = sim.series
    replay_config = dataclasses.replace(
        config, path="<sim-week>", store=":memory:", rules=tuple(picked), routes=RouteConfig("none", (), False, ()),
        receivers={}, inhibit_rules=(), time_intervals={}, sources={name: src}, shard=None)
    clock = FakeClock(lo)
    log = _quiet_log()
    store = Store(":memory:")
    try:
        engine = Engine(replay_config, registry, store, clock, Metrics(), log, integrations={})
        engine.scorer.timeout = None  # a replay waits for every score anyway: no thread hop per row
        trainer = Trainer(engine, store, clock, log, inline=True)
        trainer.start()
        n_hist = len(hist_slots)
        if n_hist:
            engine.ingest(name, [Sample(s[0], s[1], float(hist_slots[j] * step), float(c[j]))
                                 for j in range(n_hist) for s, c in zip(series, cols)], alerts=False)
            trainer.poll()
        transitions = []
        total = len(poll_slots)
        tick = max(total // 200, 1)
        for i, slot in enumerate(poll_slots):
            j = n_hist + i
            ts = float(slot * step)
            clock.set(ts)
            result = engine.ingest(name, [Sample(s[0], s[1], ts, float(c[j])) for s, c in zip(series, cols)])
            transitions.extend(result.transitions)
            trainer.poll()
            if progress is not None and (i % tick == 0 or i == total - 1):
                progress(i + 1, total)
        keys = {fp: key for rt in engine.runtimes() for fp, key in zip(rt.fingerprints, rt.windows.keys)}
        fits = sum(st.fits for st in trainer.rules)
    finally:
        store.close()
    return _pages(transitions, keys), total, n_hist * step, fits


def _pages(transitions, keys: dict[str, str]) -> list[Page]:
    """One Page per firing transition, closed by the next resolve of the same incident."""
    pages: list[Page] = []
    open_at: dict[str, int] = {}
    for t in transitions:
        inc = t.incident
        if t.kind == "firing":
            open_at[inc.fingerprint] = len(pages)
            fired = float(inc.fired_at or inc.started_at)
            pages.append(Page(inc.rule, keys.get(inc.fingerprint, inc.fingerprint), fired, None, inc.last_value,
                              inc.reason))
        elif t.kind == "resolved" and inc.fingerprint in open_at:
            k = open_at.pop(inc.fingerprint)
            pages[k] = dataclasses.replace(pages[k], resolved_at=float(inc.resolved_at))
    return pages
