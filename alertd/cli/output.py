"""Formatting shared by the incident, silence and notification commands (not a command)."""

from __future__ import annotations

import getpass
import json
import os
from datetime import datetime, timezone

from ..durations import format_duration


def when(ts) -> str:
    """UTC time as `2025-06-15 14:02:10`, or `-`."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def ago(ts, now) -> str:
    if not ts:
        return "-"
    delta = now - ts
    return f"{format_duration(abs(delta))} {'ago' if delta >= 0 else 'from now'}"


def labels_text(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def print_json(data) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def whoami() -> str:
    """Who is acting: $ALERTD_USER, $USER or the login name."""
    for name in ("ALERTD_USER", "USER", "LOGNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def incident_status(incident, silenced: list[str] | None = None) -> str:
    """`firing`, `firing,acked,silenced`, ... as one word list."""
    parts = [incident.state]
    if incident.flapping:
        parts.append("flapping")
    if incident.acknowledged:
        parts.append("acked")
    if incident.state != "resolved" and (silenced if silenced is not None else incident.silenced_by):
        parts.append("silenced")
    if incident.state != "resolved" and incident.inhibited_by:
        parts.append("inhibited")
    return ",".join(parts)
