"""The read-only status page at `/`: open incidents, sources, and each rule's recent series.

Server-rendered HTML with inline SVG charts (`alertd.http.charts`), no JavaScript; it
refreshes itself every 15 seconds. Each rule shows up to `SERIES_PER_RULE` of its series
(those with open incidents first) over their last `POINTS` stored points, with detections
as red dots and incidents as shaded bands.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from html import escape

from ..durations import format_duration
from ..routing.router import render_annotation
from ..routing.silences import SilenceService
from .charts import sparkline

SERIES_PER_RULE = 6
POINTS = 90
_SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}


def _when(ts) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _short(ts) -> str:
    return "-" if ts is None else time.strftime("%H:%M:%S", time.gmtime(ts))


def _ago(seconds) -> str:
    return "never" if seconds is None else f"{format_duration(max(0.0, seconds))} ago"


def _value(v) -> str:
    return "-" if v is None else f"{v:.4g}"


def _labels(labels: dict) -> str:
    return " ".join(f'<span class="label">{escape(k)}={escape(str(v))}</span>'
                    for k, v in sorted(labels.items())) or '<span class="muted">no labels</span>'


def _marks(incident) -> str:
    """Small tags for what holds an open incident's notices back."""
    marks = []
    if incident.acknowledged_at is not None:
        marks.append(("acked", f"acknowledged by {incident.acknowledged_by}"))
    if incident.silenced_by:
        marks.append(("silenced", "silenced by " + ", ".join(incident.silenced_by)))
    if incident.inhibited_by:
        marks.append(("inhibited", "inhibited by a firing incident"))
    if incident.flapping:
        marks.append(("flapping", "changing state too often; notices held back"))
    return "".join(f' <span class="mark" title="{escape(title)}">{name}</span>' for name, title in marks)


def _summary(incident) -> str:
    summary = incident.annotations.get("summary")
    return render_annotation(summary, incident) if summary else incident.reason


async def render(state) -> str:
    """The whole page as one HTML string (the samples are read in a worker thread)."""
    info = state.status()
    store = state.store()
    body = [_header(info)]
    if store is None:
        body.append('<p class="muted">alertd is starting…</p>')
        return _page("".join(body))
    open_incidents = sorted(store.incidents.open(), key=lambda i: (  # with acks and silences
        i.state != "firing", _SEVERITY_ORDER.get(i.severity, 9), -(i.started_at or 0)))
    recent = store.incidents.list(include_closed=True, limit=300)
    views = state.rules(SERIES_PER_RULE)
    body.append(_incidents_table(open_incidents, recent))
    body.append(_silences(store, state.clock))
    body.append(_sources_table(info))
    history = await read_history(store, [s.key for view in views for s in view.series], POINTS)
    body.append(_rules(views, recent, history))
    return _page("".join(body))


async def read_history(store, keys: list[str], points: int) -> dict:
    """The last `points` samples of `keys`, read on a connection of its own in a thread.

    Reading thousands of rows would otherwise hold up the event loop (and the ticks on it);
    SQLite's WAL mode lets this reader run beside the daemon's writes.
    """
    if not keys:
        return {}
    if store.path == ":memory:":
        return store.samples.recent(keys, points)

    def read():
        with store.reader() as reader:
            return reader.samples.recent(keys, points)

    return await asyncio.to_thread(read)


def _header(info) -> str:
    badges = []
    if info["problems"]:
        badges.append('<span class="badge bad">unhealthy</span>')
    elif info["draining"]:
        badges.append('<span class="badge warn">draining</span>')
    else:
        badges.append(f'<span class="badge {"ok" if info["ready"] else "warn"}">'
                      f'{"ready" if info["ready"] else "starting"}</span>')
    reload = info["last_reload"]
    if reload and not reload["ok"]:
        badges.append('<span class="badge bad">last reload failed</span>')
    inc = info["incidents"]
    facts = [f'{inc["firing"]} firing, {inc["pending"]} pending',
             f'outbox {info["outbox_pending"] if info["outbox_pending"] is not None else "-"}',
             f'up {format_duration(info["uptime"]) if info["uptime"] else "-"}',
             f'config {escape(info["config"])}']
    problems = "".join(f'<li>{escape(p)}</li>' for p in info["problems"])
    if reload and not reload["ok"]:
        problems += "".join(f"<li>{escape(p)}</li>" for p in reload["problems"][:5])
    return (f'<header><h1>alertd <small>{escape(info["version"])}</small></h1>{"".join(badges)}'
            f'<p class="facts">{" · ".join(facts)}</p>'
            + (f'<ul class="problems">{problems}</ul>' if problems else "") + "</header>")


def _incidents_table(open_incidents, recent) -> str:
    rows = []
    for i in open_incidents:
        rows.append(
            f'<tr><td><span class="state {i.state}">{i.state}</span>{_marks(i)}</td>'
            f'<td><span class="sev {escape(i.severity)}">{escape(i.severity)}</span></td>'
            f'<td><a href="/api/v1/incidents/{i.id}">{escape(i.rule)}</a></td><td>{_labels(i.labels)}</td>'
            f'<td title="{_when(i.started_at)} UTC">{_short(i.started_at)}</td>'
            f'<td class="num">{_value(i.last_value)}</td>'
            f'<td class="reason">{escape(_summary(i))}</td></tr>')
    if not rows:
        rows.append('<tr><td colspan="7" class="muted">No open incidents. All quiet.</td></tr>')
    resolved = [i for i in recent if i.state == "resolved"][:8]
    done = "".join(
        f'<tr><td><span class="state resolved">resolved</span></td>'
        f'<td><span class="sev {escape(i.severity)}">{escape(i.severity)}</span></td>'
        f'<td><a href="/api/v1/incidents/{i.id}">{escape(i.rule)}</a></td><td>{_labels(i.labels)}</td>'
        f'<td title="{_when(i.started_at)} UTC">{_short(i.started_at)}</td>'
        f'<td class="num">{_value(i.last_value)}</td>'
        f'<td class="reason">lasted {format_duration(max(0.0, (i.resolved_at or i.started_at) - i.started_at))}'
        f' · {escape(i.reason)}</td></tr>' for i in resolved)
    head = ("<tr><th>state</th><th>severity</th><th>rule</th><th>labels</th><th>since (UTC)</th>"
            "<th>value</th><th>why</th></tr>")
    extra = f'<tbody class="done">{done}</tbody>' if done else ""
    return (f'<section><h2>Incidents</h2><table class="incidents"><thead>{head}</thead>'
            f'<tbody>{"".join(rows)}</tbody>{extra}</table></section>')


def _silences(store, clock) -> str:
    """Active and pending silences, if any."""
    now = clock.now()
    silences = SilenceService(store, clock).list()
    if not silences:
        return ""
    rows = "".join(
        f'<tr><td><code>{escape(s.id[:8])}</code></td><td>{escape(s.state(now))}</td>'
        f'<td>{" ".join(f"<span class=label>{escape(str(m))}</span>" for m in s.matchers)}</td>'
        f'<td title="{_when(s.ends_at)} UTC">{format_duration(max(0.0, s.ends_at - now))} left</td>'
        f'<td>{escape(s.created_by)}</td><td class="reason">{escape(s.comment)}</td></tr>' for s in silences)
    return ('<section><h2>Silences</h2><table><thead><tr><th>id</th><th>state</th><th>matchers</th>'
            f'<th>ends</th><th>by</th><th>comment</th></tr></thead><tbody>{rows}</tbody></table></section>')


def _sources_table(info) -> str:
    now = info["now"]
    rows = []
    for name, s in info["sources"].items():
        schedule = f"every {format_duration(s['every'])}" if s["every"] else f"cron {escape(s['cron'] or '')}"
        errors = s["consecutive_errors"]
        status = (f'<span class="state firing">{errors} failed</span>' if errors
                  else '<span class="state ok">ok</span>' if s["last_ok"] else '<span class="muted">waiting</span>')
        rows.append(f"<tr><td>{escape(name)}</td><td>{escape(s['type'])}</td><td>{schedule}</td>"
                    f"<td>{status}</td><td>{_ago(None if s['last_ok'] is None else now - s['last_ok'])}</td>"
                    f'<td class="reason">{escape(s["last_error"] or "") if errors else ""}</td></tr>')
    return ('<section><h2>Sources</h2><table><thead><tr><th>source</th><th>type</th><th>schedule</th>'
            '<th>status</th><th>last success</th><th>last error</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _rules(views, recent, history) -> str:
    spans = defaultdict(list)
    for i in recent:
        spans[i.fingerprint].append((i.started_at, i.resolved_at, i.state))
    cards = []
    for view in views:
        rule, total = view.rule, view.total
        keys = [s.key for s in view.series]
        charts = []
        for series in view.series:
            key = series.key
            ts, values, _ = history.get(key, ((), (), 0))
            labels = dict(series.labels)
            last = f"{values[-1]:.4g}" if len(values) else "-"
            chart = sparkline(ts, values, detections=series.detections,
                              spans=spans.get(series.fingerprint, ()), label=key)
            charts.append(f'<div class="series"><div class="slabel">{_labels(labels)}'
                          f'<span class="last">{last}</span></div>{chart}</div>')
        if not charts:
            charts.append('<p class="muted">no series matched yet</p>')
        more = f'<p class="muted">and {total - len(keys)} more series</p>' if total > len(keys) else ""
        timing = f", for {format_duration(rule.for_)}" if rule.for_ else ""
        cards.append(f'<article class="rule"><h3>{escape(rule.name)} '
                     f'<span class="sev {escape(rule.severity)}">{escape(rule.severity)}</span></h3>'
                     f'<p class="muted"><code>{escape(str(rule.series))}</code> from {escape(rule.source)}, '
                     f'{escape(rule.detector.type)}{timing}</p>{"".join(charts)}{more}</article>')
    return f'<section><h2>Rules</h2><div class="rules">{"".join(cards)}</div></section>'


def _page(body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="15">
<title>alertd status</title>
<style>{_CSS}</style></head>
<body>{body}
<footer class="muted">Read-only. Refreshes every 15 s. JSON: <a href="/api/v1/status">/api/v1/status</a>,
<a href="/api/v1/incidents">/api/v1/incidents</a>, <a href="/metrics">/metrics</a>.
Red dots: detections; shaded: incidents.</footer>
</body></html>"""


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1280px;
padding:16px 24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 12px 0 0;display:inline-block}h1 small{font-size:13px;color:#6b7280;font-weight:400}
h2{font-size:16px;margin:22px 0 8px}h3{font-size:14px;margin:0 0 2px}
header{padding-bottom:8px;border-bottom:1px solid #e5e7eb}.facts{margin:6px 0 0;color:#374151}
.badge{display:inline-block;padding:2px 9px;border-radius:10px;font-size:12px;font-weight:600;margin-right:6px;
vertical-align:middle}.badge.ok{background:#dcfce7;color:#166534}.badge.warn{background:#fef3c7;color:#92400e}
.badge.bad{background:#fee2e2;color:#991b1b}.problems{color:#991b1b;margin:6px 0}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #e5e7eb;border-radius:6px}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #f3f4f6;vertical-align:top}
th{font-size:12px;color:#6b7280;font-weight:600;background:#f9fafb}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.reason{color:#374151;max-width:460px}tbody.done td{color:#6b7280}
.state,.sev{display:inline-block;padding:1px 7px;border-radius:4px;font-size:12px;font-weight:600}
.state.firing{background:#fee2e2;color:#b91c1c}.state.pending{background:#fef3c7;color:#92400e}
.state.resolved,.state.ok{background:#dcfce7;color:#166534}
.sev.critical{background:#7f1d1d;color:#fff}.sev.warning{background:#fde68a;color:#78350f}.sev.info{background:#e0e7ff;color:#3730a3}
.label{display:inline-block;background:#f3f4f6;border-radius:4px;padding:0 5px;margin:0 3px 2px 0;font-size:12px;
font-family:ui-monospace,monospace}
.mark{display:inline-block;margin-left:4px;padding:0 5px;border-radius:4px;font-size:11px;
background:#e5e7eb;color:#374151}.muted{color:#6b7280}a{color:#1d4ed8;text-decoration:none}a:hover{text-decoration:underline}
.rules{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}
.rule{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:10px 12px}
.rule p{margin:0 0 6px;font-size:12px}.series{margin:6px 0 2px}.slabel{font-size:12px;display:flex;
justify-content:space-between;align-items:center}.last{font-weight:600;font-variant-numeric:tabular-nums}
svg.spark{display:block;background:#fcfcfd;border:1px solid #f3f4f6;border-radius:4px}
svg .nodata{font-size:11px;fill:#9ca3af}
footer{margin:24px 0 8px;font-size:12px}
"""
