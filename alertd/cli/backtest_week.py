"""`alertd backtest --sim-week`: the shop simulator's labelled week through a config's rules,
judged by incidents (not a command of its own: alertd/cli/backtest.py hands over to it).

    alertd backtest --sim-week [-c alertd.yaml] [--rule NAME] [--source shop] [--history 7d]
        [--tolerance 15m] [--lead 0s] [--labels-out labels.json] [--labels-only] [--json] [--jobs 2]

Prints one line per rule (labelled incidents, found, recall, pages, true, explained, false,
precision, time to fire), the totals, every label with what each rule made of it, and every
false page with its time (UTC and the region's local time) and the nearest label. `--json`
prints the same as one JSON document. The rules of the game: alertd/backtest/incidents_eval.py.
"""

from __future__ import annotations

import json
import statistics
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..durations import format_duration, parse_duration
from .common import CommandError
from .output import print_json

_TZ = {"eu": 1, "us": -5, "apac": 8}  # the simulator's regions (hours from UTC), for local times
_DEFAULTS = {"history": "7d", "tolerance": "15m"}


def configure(parser) -> None:
    """The options only --sim-week takes."""
    week = parser.add_argument_group("--sim-week")
    week.add_argument("--source", help="the shop_sim source to replay (default: the config's only one); with "
                      "--series: the source whose series it is (default: the rule's, or the only one that has it)")
    week.add_argument("--history", help="normal days back-filled before the week, for training (default 7d)")
    week.add_argument("--tolerance", help="how long after a label's end a page still matches it (default 15m)")
    week.add_argument("--lead", action="append", metavar="[RULE=]DURATION",
                      help="how long before a label's start a page already matches it (default 0s); RULE=2h for "
                      "one rule (an early warning's horizon); repeatable")
    week.add_argument("--labels-out", metavar="FILE", help="write the week's labels, series and stock plans as JSON")
    week.add_argument("--labels-only", action="store_true", help="with --labels-out: write the labels, replay nothing")
    week.add_argument("--json", action="store_true", help="print the report as JSON (also with --cross-validate)")


def reject_week_options(args) -> None:
    """A --sim-week option without --sim-week is a mistake: say so rather than ignore it."""
    names = ("source", "history", "tolerance", "lead", "labels_out", "labels_only", "json")
    if getattr(args, "cross_validate", False):
        names = names[:-1]  # --json applies to --cross-validate too
    for name in names:
        if name == "source" and getattr(args, "series", None):
            continue  # (--series takes it too: the source whose series to replay)
        if getattr(args, name, None):
            raise CommandError(f"--{name.replace('_', '-')} goes with --sim-week")


def _duration(name: str, text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError:
        raise CommandError(f"--{name} {text!r} is not a duration; write it like 15m, 2h or 7d") from None


def _leads(values) -> tuple[float, dict[str, float]]:
    """--lead values: (for every rule, {rule: for that one})."""
    lead, leads = 0.0, {}
    for text in values or ():
        rule, sep, duration = text.rpartition("=")
        if sep:
            leads[rule] = _duration("lead", duration)
        else:
            lead = _duration("lead", duration)
    return lead, leads


def run(args) -> int:
    from ..backtest.incidents_eval import evaluate
    from ..backtest.replay import Progress
    from ..backtest.rules import BacktestError
    from ..backtest.sim_week import early_warnings, replay_week, week_sim
    from ..config.load import load_with_plugins

    history, tolerance = (_duration(k, getattr(args, k) or _DEFAULTS[k]) for k in ("history", "tolerance"))
    lead, leads = _leads(args.lead)
    if args.threshold is not None and not args.rule:
        raise CommandError("--threshold with --sim-week needs --rule: the rule whose threshold to change")
    for name in ("plot", "out", "results", "labels", "store"):
        if getattr(args, name, None):
            raise CommandError(f"--{name} does not go with --sim-week (see --labels-out and --json)")
    if args.labels_only and not args.labels_out:
        raise CommandError("--labels-only needs --labels-out FILE")
    if args.jobs < 1:
        raise CommandError(f"--jobs must be at least 1, got {args.jobs}")
    if not Path(args.config).exists():
        raise CommandError(f"{args.config} does not exist; pass the config with -c FILE")
    config, registry = load_with_plugins(args.config)
    unknown = sorted(set(leads) - ({args.rule} if args.rule else {r.name for r in config.rules}))
    if unknown:
        raise CommandError(f"--lead {unknown[0]}=...: no replayed rule is called {unknown[0]}")
    try:
        _, sim = week_sim(config, registry, args.source)
        if args.labels_out:
            _write_labels(args.labels_out, sim.describe())
            if args.labels_only:
                if not args.json:
                    print(f"labels: {args.labels_out} ({len(sim.labels())} labelled incidents)")
                return 0
        show = not args.quiet and not args.json and sys.stderr.isatty()
        unit = "polls" if args.jobs == 1 else "parts"
        progress = Progress(f"replaying the week ({args.jobs} processes)" if args.jobs > 1 else "replaying the week",
                            unit=unit) if show else None
        week = replay_week(config, registry, source=args.source, rules=[args.rule] if args.rule else None,
                           threshold=args.threshold, history=history, jobs=args.jobs, progress=progress)
    except BacktestError as exc:
        raise CommandError(str(exc)) from None
    warnings = early_warnings(week.rules)
    for name, within in warnings.items():  # an early warning may match from its horizon before
        leads.setdefault(name, within)
    result = evaluate([(r.name, r.series) for r in week.rules], week.week["labels"], week.pages,
                      tolerance=tolerance, lead=lead, leads=leads, series=week.week["series"],
                      warnings=set(warnings))
    if args.json:
        print_json(_document(week, result))
    else:
        _print(week, result, args)
    return 0


def _write_labels(path: str, data: dict) -> None:
    try:
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None


def _document(week, result) -> dict:
    w = week.week
    return {"source": week.source, "scenario": w["scenario"], "seed": w["seed"], "start": w["start"],
            "end": w["end"], "step": w["step"], "polls": week.polls, "history_s": week.history,
            "seconds": round(week.seconds, 2), "fits": week.fits, **result.as_dict(),
            "not_replayed": [{"rule": r, "why": why} for r, why in week.left_out], "labels": w["labels"]}


# -- text -----------------------------------------------------------------------------------------
def _when(ts: float, series: str | None = None) -> str:
    moment = datetime.fromtimestamp(ts, timezone.utc)
    text = moment.strftime("%a %m-%d %H:%M UTC")
    for region, hours in _TZ.items():
        if series and f'region="{region}"' in series:
            text += f" ({(moment + timedelta(hours=hours)).strftime('%H:%M')} {region} time)"
    return text


def _window(start: float, end: float) -> str:
    a, b = (datetime.fromtimestamp(t, timezone.utc) for t in (start, end))
    if a.date() == b.date():
        return f"{a.strftime('%a %m-%d %H:%M')}-{b.strftime('%H:%M')} UTC"
    return f"{a.strftime('%a %m-%d %H:%M')} to {b.strftime('%a %H:%M')} UTC"


def _dur(seconds) -> str:
    if seconds is None:
        return "-"
    return ("-" if seconds < 0 else "") + format_duration(abs(seconds))


def _ratio(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _print_warnings(result) -> None:
    """One line per early-warning rule: how far ahead it warned, and its false warnings."""
    for r in result.rules:
        if r.rule not in result.warnings:
            continue
        ahead = [-t for t in r.times_to_fire if t < 0]
        per_series: dict[str, int] = {}
        for f in r.false_pages:
            per_series[f.page.series] = per_series.get(f.page.series, 0) + 1
        leads = (f"lead time median {_dur(statistics.median(ahead))}, shortest {_dur(min(ahead))}" if ahead
                 else "no lead time")
        print(f"early warning {r.rule}: {len(ahead)} of {len(r.labels)} labelled incidents warned before they began "
              f"({leads}); {len(r.false_pages)} false warnings, at most {max(per_series.values(), default=0)} "
              f"per series over {len(r.series)} series")


def _print(week, result, args) -> None:
    w = week.week
    start = datetime.fromtimestamp(w["start"], timezone.utc).strftime("%Y-%m-%d %H:%M")
    end = datetime.fromtimestamp(w["end"], timezone.utc).strftime("%Y-%m-%d %H:%M")
    print(f"replayed the labelled week of source {week.source} ({start} to {end} UTC, seed {w['seed']}, "
          f"{week.polls} polls of {len(w['series'])} series, step {format_duration(w['step'])}, after "
          f"{format_duration(week.history)} of history) through {len(week.rules)} rule{'s' * (len(week.rules) != 1)} "
          f"in {week.seconds:.0f}s, "
          f"{week.fits} model fits")
    lead = f"{format_duration(result.lead)} before its start" if result.lead else "its start"
    own = "".join(f"; for {rule}, from {format_duration(v)} before its start" for rule, v in result.leads.items())
    print(f"a page matches a label when it is firing on one of the label's series between {lead} and "
          f"{format_duration(result.tolerance)} after its end{own}")
    if result.warnings:
        print(f"an early warning ({', '.join(sorted(result.warnings))}) also matches a label it is still firing at "
              "the start of; its time to fire is negative: the lead time")
    print()
    header = (f"{'rule':<24} {'labels':>6} {'found':>5} {'recall':>6} {'pages':>5} {'true':>4} {'expl.':>5} "
              f"{'false':>5} {'precision':>9}  time to fire (median / max)")
    print(header)
    rows = [(r.rule, r.as_dict()) for r in result.rules] + [("all rules", result.totals())]
    for name, d in rows:
        print(f"{name:<24} {d['labels']:>6} {d['found']:>5} {_ratio(d['recall']):>6} {d['pages']:>5} "
              f"{d['true_pages']:>4} {d['explained_pages']:>5} {d['false_pages']:>5} {_ratio(d['precision']):>9}  "
              f"{_dur(d['time_to_fire_median'])} / {_dur(d['time_to_fire_max'])}")
    _print_warnings(result)
    print()
    print("labelled incidents (what each rule watching them made of them):")
    outcomes: dict[str, list] = {}
    for r in result.rules:
        for o in r.labels:
            outcomes.setdefault(o.label, []).append((r.rule, o))
    for label in w["labels"]:
        print(f"  {label['id']:<26} {_window(label['start'], label['end']):<28} {label['note']}")
        for rule, o in outcomes.get(label["id"], []):
            when = (f"{_dur(-o.time_to_fire)} before its start" if (o.time_to_fire or 0) < 0
                    else f"after {_dur(o.time_to_fire)}")
            verdict = f"found {when} ({o.pages} page{'s' * (o.pages != 1)})" if o.found else "MISSED"
            print(f"      {rule}: {verdict}")
        if label["id"] not in outcomes:
            primary = ", ".join(e["series"] for e in label["effects"] if e["role"] == "primary")
            print(f"      no rule watches {primary}")
    false = [(r.rule, f) for r in result.rules for f in r.false_pages]
    print()
    print(f"false pages ({len(false)}): pages that match no label" + (":" if false else ""))
    for rule, f in sorted(false, key=lambda x: x[1].page.fired_at):
        p = f.page
        lasted = f"for {_dur(p.resolved_at - p.fired_at)}" if p.resolved_at is not None else "still firing at the end"
        near = f"; nearest label: {f.nearest}" if f.nearest else ""
        print(f"  {_when(p.fired_at, p.series)}  {rule}  {p.series}  {lasted}{near}")
        if p.reason:
            print(f"      {p.reason}")
    for rule, why in week.left_out:
        print(f"not replayed: {rule} ({why})")
    if args.labels_out:
        print(f"labels: {args.labels_out}")
