"""Label matchers as Prometheus and Alertmanager write them.

`parse_matcher('provider=~"adyen|stripe"')` -> Matcher; `parse_selector('orders{region!="eu"}')`
-> Selector. Regexes are fully anchored, as in Alertmanager. Errors raise ValueError with a
sentence naming the exact token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

OPS = ("=~", "!~", "!=", "=")
_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_MATCHER = re.compile(rf'\s*({_NAME})\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^,}}]*?)\s*(?:,|$)')
_SELECTOR = re.compile(rf"^\s*({_NAME}(?::{_NAME})*)?\s*(?:\{{(.*)\}})?\s*$", re.S)


@dataclass(frozen=True)
class Matcher:
    """One label condition: `name op value`, op one of =, !=, =~, !~ (regexes anchored)."""

    name: str
    op: str
    value: str
    regex: re.Pattern | None = field(default=None, compare=False, repr=False)

    @classmethod
    def make(cls, name: str, op: str, value: str) -> "Matcher":
        if op not in OPS:
            raise ValueError(f'"{op}" is not a matcher operator; use one of =, !=, =~, !~')
        regex = None
        if op in ("=~", "!~"):
            try:
                re.compile(value)  # report errors at positions the user can see
                regex = re.compile(f"^(?:{value})$")
            except re.error as exc:
                raise ValueError(f'the regex "{value}" of label "{name}" is invalid: {exc}') from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self.regex.match(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        value = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.name}{self.op}"{value}"'


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """`text` quoted as Go's `%q` (strconv.Quote) quotes it: how Alertmanager writes label
    values in group keys and matchers in route keys."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _unquote(raw: str, text: str = "") -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"' and not _escaped_end(raw):
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    if raw.startswith('"') or (raw.endswith('"') and not _escaped_end(raw)):
        raise ValueError(f'the value {raw} in "{text or raw}" has an unbalanced quote; quote the whole '
                         'value, like name="value"')
    return raw


def _escaped_end(raw: str) -> bool:
    """Whether the final quote of `raw` is escaped by a backslash (an odd run of them)."""
    run = len(raw) - 1 - len(raw[:-1].rstrip("\\"))
    return run % 2 == 1


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher such as `severity="critical"` or `provider=~adyen|stripe`."""
    match = re.fullmatch(rf'\s*({_NAME})\s*(=~|!~|!=|=)\s*(.*?)\s*', text, re.S)
    if not match:
        raise ValueError(f'"{text}" is not a matcher; write label=value, label!=value, '
                         'label=~regex or label!~regex')
    return Matcher.make(match.group(1), match.group(2), _unquote(match.group(3), text.strip()))


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse a comma-separated list, with or without surrounding braces."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    out, pos = [], 0
    while pos < len(text.rstrip()):
        match = _MATCHER.match(text, pos)
        if not match or match.end() == pos:
            raise ValueError(f'"{text[pos:].strip()}" is not a matcher; write label=value, '
                             'label!=value, label=~regex or label!~regex')
        out.append(Matcher.make(match.group(1), match.group(2), _unquote(match.group(3), match.group(0).strip(' ,'))))
        pos = match.end()
    return tuple(out)


@dataclass(frozen=True)
class Selector:
    """A series selector: an optional metric name and label matchers."""

    name: str | None
    matchers: tuple[Matcher, ...] = ()

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.name is not None and name != self.name:
            return False
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        inner = ",".join(str(m) for m in self.matchers)
        return f"{self.name or ''}{{{inner}}}" if inner else (self.name or "{}")


def parse_selector(text: str) -> Selector:
    """Parse `metric{label="v",other=~"re"}`, `metric`, or `{label="v"}`."""
    match = _SELECTOR.match(text or "")
    if not match or (match.group(1) is None and match.group(2) is None):
        raise ValueError(f'"{text}" is not a series selector; write metric_name or '
                         'metric_name{label="value"}')
    matchers = parse_matchers(match.group(2)) if match.group(2) else ()
    return Selector(match.group(1), matchers)
