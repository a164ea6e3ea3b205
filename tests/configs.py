"""One builder for the YAML configs of daemon tests: `config_text(**sections)`.

The base is a small working config (one `test_list` source that never polls on its own, one
`test_above` rule, one recording receiver, groups flushed at once); a keyword replaces that
section, `None` removes it, and any other top-level key is added. Values are Python data,
written out in the flow style a person would type, one entry per line:

    config_text(sources={"app": {"type": "test_list", "every": "10s"}},
                rules=[rule("cpu_high"), rule("mem_high", series="mem")],
                routes={"receiver": "rec", "group_wait": "30s"})
"""

from __future__ import annotations

import json
import re

import yaml

NEVER = "0 0 1 1 *"  # a cron schedule that does not fire during a test: the test polls by hand

BASE = {
    "http": {"enabled": False},
    "sources": {"app": {"type": "test_list", "cron": NEVER}},
    "rules": None,  # filled below (rule() is defined after)
    "receivers": {"rec": [{"type": "test_record"}]},
    "routes": {"receiver": "rec", "group_by": ["..."], "group_wait": "0s", "group_interval": "10s"},
}
ORDER = ("plugin_dirs", "store", "shard", "http", "detector_timeout", "shutdown_timeout", "retention",
         "time_intervals", "sources", "rules", "receivers", "routes", "inhibit_rules")
_PLAIN = re.compile(r"^[\w/][\w./:-]*$")


def rule(name: str, *, source: str = "app", series: str = "cpu", limit: float = 90, **extra) -> dict:
    """A rule with the `test_above` detector (anomalous above `limit`)."""
    return {"name": name, "source": source, "series": series,
            "detector": {"type": "test_above", "limit": limit}, **extra}


BASE["rules"] = [rule("cpu_high")]


def flow(value) -> str:
    """`value` in YAML flow style: {a: 1, b: [x, y]}, strings quoted only where needed."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow_key(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and yaml.safe_load(text) == text:  # reads back as this very string
        return text
    return json.dumps(text)  # a JSON string is a valid YAML double-quoted scalar


def flow_key(key) -> str:
    return flow(str(key))


def config_text(**sections) -> str:
    """The base config with `sections` replaced, removed (None) or added."""
    merged = {**BASE, **sections}
    keys = [k for k in ORDER if k in merged] + [k for k in merged if k not in ORDER]
    lines = []
    for key in keys:
        value = merged[key]
        if value is None:
            continue
        if key in ("sources", "receivers") and isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {flow_key(name)}: {flow(item)}" for name, item in value.items()]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{key}:")
            lines += [f"  - {flow(item)}" for item in value]
        else:
            lines.append(f"{key}: {flow(value)}")
    return "\n".join(lines) + "\n"


_DETECTOR_RULE = """\
{retention}sources:
  src: {{type: test_list, every: {every}}}
rules:
  - name: r
    source: src
    series: {series}
    detector: {detector}
    {timing}
receivers:
  rec: [{{type: test_record}}]
"""


def detector_rule_text(detector: str, *, timing: str = "", series: str = "orders", every: str = "60s",
                       retention: str | None = None) -> str:
    """One rule `r` of series `series` with `detector` (YAML flow text, as a person writes it
    on one line: its errors are at line 7, line 8 with `retention`) and `timing` keys."""
    head = f"retention: {retention}\n" if retention is not None else ""
    return _DETECTOR_RULE.format(retention=head, every=every, series=series, detector=detector, timing=timing)
