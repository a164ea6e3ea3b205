"""What notification templates see: plain dicts built from a `Notification`.

`notification_view(n, tz, limit)` turns a notification into the variables every template
gets (documented in docs/notifications.md): the kind and status, the incidents (each an
`incident_view`: subject, value against the expected range, score, since when, links from
annotations, links to the incident page and a prefilled silence form when `http.external_url`
is set, else the CLI lines to silence and acknowledge), counts, common labels and the group
silence link or line. Numbers and times are formatted here, once, so templates stay short; raw
values are there too (`value_raw`, `started_ts`, ...) for templates of one's own.

Label values are only ever passed as data: nothing here is compiled as a template.
"""

from __future__ import annotations

import math
import re
import shlex
from datetime import datetime, timezone, tzinfo
from urllib.parse import urlencode

from ..durations import format_duration
from ..model import Incident, Notification

HIDDEN_LABELS = {"rule", "alertname", "severity"}
LINK_ANNOTATIONS = ("runbook_url", "dashboard_url")
TEXT_ANNOTATIONS = ("summary", "description")
SEVERITY_ORDER = {"critical": 0, "page": 0, "error": 1, "high": 1, "warning": 2, "medium": 2,
                  "info": 3, "low": 3}
SILENCE_FOR = "2h"
SILENCE_COMMENT = "investigating"


def fmt_number(x) -> str:
    """`0.31`, `12`, `1.5e-05`, `1234`: short, and exact for integers."""
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "?"
    if x == int(x) and abs(x) < 1e15:
        return f"{x:.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.3g}"


def fmt_expected(low: float | None, high: float | None) -> str:
    """`0.9-1`, `>= 0.9`, `<= 0.05`, or "" when the detector gave no range."""
    if low is not None and high is not None:
        return f"{fmt_number(low)}-{fmt_number(high)}"
    if low is not None:
        return f">= {fmt_number(low)}"
    if high is not None:
        return f"<= {fmt_number(high)}"
    return ""


def fmt_time(ts: float | None, tz: tzinfo | None, ref: float | None = None) -> str:
    """`22:13:20 UTC`; with the date when `ts` is more than 20 hours before `ref`."""
    if ts is None:
        return "?"
    moment = datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts).astimezone()
    zone = moment.tzname() or ""
    if ref is not None and abs(ref - ts) > 20 * 3600:
        return f"{moment:%Y-%m-%d %H:%M} {zone}".strip()
    return f"{moment:%H:%M:%S} {zone}".strip()


def fmt_iso(ts: float | None) -> str | None:
    """RFC 3339 in UTC with milliseconds (`2023-11-14T22:13:20.000Z`), or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ago(ts: float | None, ref: float) -> str:
    """`5m` between a data timestamp and the notification time, or "" when they disagree
    (a simulator or replay whose data time is not the daemon's clock)."""
    if ts is None or not 0 <= ref - ts <= 90 * 86400:
        return ""
    return format_duration(ref - ts)


def status_of(incident: Incident, kind: str) -> str:
    """What to call one incident of a notification: "resolved" if it is, "flapping" while it
    flaps, else the kind ("firing" for the incidents of a flapping notice or a digest)."""
    if incident.state == "resolved" or incident.resolved_at is not None:
        return "resolved"
    if getattr(incident, "flapping", False):
        return "flapping"
    return "firing" if kind in ("flapping", "digest") else kind


def shown_labels(labels: dict[str, str]) -> dict[str, str]:
    """The series labels people read: without rule, alertname, severity and `__x` labels."""
    return {k: v for k, v in sorted(labels.items())
            if k not in HIDDEN_LABELS and not k.startswith("__")}


def labels_text(labels: dict[str, str]) -> str:
    """`provider=adyen sku=42`."""
    return " ".join(f"{k}={v}" for k, v in shown_labels(labels).items())


def _matcher(name: str, value: str) -> str:
    value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return shlex.quote(f'{name}="{value}"')


def silence_command(rule: str | None, labels: dict[str, str]) -> str:
    """The exact `alertd silence add ...` line for these matchers, quoted for a POSIX shell."""
    parts = ["alertd", "silence", "add"]
    if rule:
        parts.append(_matcher("rule", rule))
    parts += [_matcher(k, v) for k, v in shown_labels(labels).items()
              if k.replace("_", "a").isalnum() and not k[0].isdigit()]
    if len(parts) == 3:  # no matcher: a silence would hide everything; offer none
        return ""
    return " ".join(parts) + f' --for {SILENCE_FOR} --comment "{SILENCE_COMMENT}"'


def ack_command(incident_id: int | None) -> str:
    return f"alertd incidents ack {incident_id}" if incident_id is not None else ""


def incident_url(external_url: str, incident_id: int | None) -> str:
    """The incident's page (history, chart, ack and silence buttons), or "" when unknown."""
    return f"{external_url}/incidents/{incident_id}" if external_url and incident_id is not None else ""


def silence_url(external_url: str, *, incident_id: int | None = None, rule: str | None = None,
                labels: dict[str, str] | None = None) -> str:
    """The silence form prefilled for one incident, or for a rule and labels; "" when unknown."""
    if not external_url:
        return ""
    if incident_id is not None:
        return f"{external_url}/silences/new?" + urlencode({"incident": incident_id})
    pairs = ([("rule", rule)] if rule else []) + list(shown_labels(labels or {}).items())
    if not pairs:
        return ""  # no matcher: a silence would hide everything; offer none
    return f"{external_url}/silences/new?" + urlencode([("matcher", _matcher_text(k, v)) for k, v in pairs],
                                                        safe='="')


def _matcher_text(name: str, value: str) -> str:
    """`name=value`, quoted only where the value needs it (the form reads both)."""
    if re.fullmatch(r"[\w.:/-]+", value):
        return f"{name}={value}"
    value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'{name}="{value}"'


# Why an incident ended, when it was not its series recovering: a resolved notice must not
# read as "back to normal" when the series merely went away (Incident.resolution).
RESOLUTION_TEXT = {
    "series_missing": "the series stopped reporting",
    "forgotten": "no data for longer than retention, no longer watched",
    "manual": "resolved by hand",
    "no_data": "no data, counted as normal",
    "crossed": "the line was crossed, its own incident takes over",
}


def resolved_why(inc: Incident) -> str:
    """Why a resolved incident ended, in words ("" when its series recovered)."""
    text = RESOLUTION_TEXT.get(inc.resolution or "", "")
    if text and inc.resolution == "manual" and inc.resolved_by:
        text += f" ({inc.resolved_by})"
    return text


def incident_view(inc: Incident, kind: str, ref: float, tz: tzinfo | None, external_url: str = "") -> dict:
    """One incident as templates see it (see the module docstring)."""
    status = status_of(inc, kind)
    labels = shown_labels(inc.labels)
    subject = f"{inc.rule} {labels_text(inc.labels)}".strip()
    annotations = dict(sorted(inc.annotations.items()))
    end = inc.resolved_at if status == "resolved" else None
    return {
        "id": inc.id, "fingerprint": inc.fingerprint, "rule": inc.rule, "state": inc.state,
        "status": status, "severity": inc.severity or "", "subject": subject,
        "labels": labels, "all_labels": dict(sorted(inc.labels.items())),
        "labels_text": labels_text(inc.labels),
        "annotations": annotations,
        "summary": annotations.get("summary", ""), "description": annotations.get("description", ""),
        "runbook_url": annotations.get("runbook_url", ""),
        "dashboard_url": annotations.get("dashboard_url", ""),
        "links": [(name.removesuffix("_url").capitalize(), annotations[name])
                  for name in LINK_ANNOTATIONS if annotations.get(name)],
        "other_annotations": {k: v for k, v in annotations.items()
                              if k not in TEXT_ANNOTATIONS + LINK_ANNOTATIONS},
        "value": fmt_number(inc.last_value) if inc.last_value is not None else "",
        "value_raw": inc.last_value,
        "expected": fmt_expected(inc.expected_low, inc.expected_high),
        "expected_low": inc.expected_low, "expected_high": inc.expected_high,
        "score": f"{inc.score:.3f}" if inc.score is not None else "",
        "peak_score": f"{inc.peak_score:.3f}" if inc.peak_score is not None else "",
        "threshold": fmt_number(inc.threshold) if inc.threshold is not None else "",
        "score_raw": inc.score, "peak_score_raw": inc.peak_score, "threshold_raw": inc.threshold,
        "reason": inc.reason or "", "count": inc.count,
        # an early warning: when its line is expected to be crossed (the reason says it in words)
        "crossing": fmt_time(inc.crossing_at, tz, ref) if inc.crossing_at is not None else "",
        "crossing_ts": inc.crossing_at, "crossing_iso": fmt_iso(inc.crossing_at),
        "since": fmt_time(inc.started_at, tz, ref), "since_ago": _ago(inc.started_at, ref),
        "fired": fmt_time(inc.fired_at, tz, ref) if inc.fired_at is not None else "",
        "resolved": fmt_time(end, tz, ref) if end is not None else "",
        "lasted": format_duration(max(0.0, end - inc.started_at)) if end is not None else "",
        "resolution": inc.resolution or "", "resolved_why": resolved_why(inc) if end is not None else "",
        "started_ts": inc.started_at, "fired_ts": inc.fired_at, "resolved_ts": inc.resolved_at,
        "started_iso": fmt_iso(inc.started_at), "resolved_iso": fmt_iso(end),
        "silence_command": silence_command(inc.rule, inc.labels),
        "ack_command": ack_command(inc.id) if status != "resolved" else "",
        "url": incident_url(external_url, inc.id),
        "silence_url": silence_url(external_url, incident_id=inc.id) if status != "resolved" else "",
    }


def _severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.get(severity.lower(), 4)


def notification_view(n: Notification, tz: tzinfo | None, limit: int = 0) -> dict:
    """Every variable a notification template gets; `limit` caps `listed` (0: no cap)."""
    external = getattr(n, "external_url", "") or ""
    views = [incident_view(i, n.kind, n.created_at, tz, external) for i in n.incidents]
    views.sort(key=lambda v: (v["status"] == "resolved", _severity_rank(v["severity"]),
                              v["started_ts"], v["subject"]))
    listed = views[:limit] if limit and len(views) > limit else views
    common = dict(views[0]["all_labels"]) if views else {}
    for v in views[1:]:
        common = {k: val for k, val in common.items() if v["all_labels"].get(k) == val}
    common_annotations = dict(views[0]["annotations"]) if views else {}
    for v in views[1:]:
        common_annotations = {k: val for k, val in common_annotations.items()
                              if v["annotations"].get(k) == val}
    rules = sorted({v["rule"] for v in views})
    rule = rules[0] if len(rules) == 1 else ""
    severities = sorted({v["severity"] for v in views if v["severity"]}, key=_severity_rank)
    firing = [v for v in views if v["status"] != "resolved"]
    resolved = [v for v in views if v["status"] == "resolved"]
    # In a group, each line names only what tells its incidents apart, and links shared by
    # every incident (a runbook) are shown once.
    common_links = [(name.removesuffix("_url").capitalize(), common_annotations[name])
                    for name in LINK_ANNOTATIONS if common_annotations.get(name)]
    for v in views:
        v["own_links"] = [link for link in v["links"] if link not in common_links]
        distinct = {k: val for k, val in v["labels"].items() if common.get(k) != val}
        v["short"] = " ".join(f"{k}={val}" for k, val in distinct.items()) or v["subject"]
        if not rule:
            v["short"] = f"{v['rule']} {v['short']}".strip() if distinct else v["subject"]
    # The headline: RESOLVED when nothing in it still fires; the count is of the firing ones.
    headline = n.kind.upper() if firing or not views else "RESOLVED"
    return {
        "kind": n.kind, "status": n.kind.upper(), "receiver": n.receiver,
        "headline": headline, "headline_count": len(firing) if firing else len(views),
        "idempotency_key": n.idempotency_key, "router_title": n.title, "note": n.text,
        "incidents": views, "listed": listed, "more": len(views) - len(listed),
        "count": len(views), "firing": firing, "resolved": resolved,
        "rules": rules, "rule": rule, "severity": severities[0] if severities else "",
        "common_labels": shown_labels(common), "common_labels_text": labels_text(common),
        "common_annotations": common_annotations, "common_links": common_links,
        "created": fmt_time(n.created_at, tz), "created_ts": n.created_at,
        "created_iso": fmt_iso(n.created_at),
        "silence_command": silence_command(rule or None, common) if views else "",
        "external_url": external,
        "silence_url": silence_url(external, rule=rule or None, labels=common) if views else "",
    }
