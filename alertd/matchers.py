"""Label matchers as Prometheus and Alertmanager write them.

`parse_matcher('provider=~"adyen|stripe"')` -> Matcher; `parse_selector('orders{region!="eu"}')`
-> Selector. Regexes are fully anchored, as in Alertmanager. Errors raise ValueError with a
sentence naming the exact token. Regexes run on RE2 (`alertd.regex`, linear time, as in
Prometheus and Alertmanager): a label value that comes from data cannot stall a match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

from . import regex as re2

OPS = ("=~", "!~", "!=", "=")
_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
# parsed with RE2 too: a silence's matchers come over the API, and Python's re took minutes
# on 'a=' followed by thousands of spaces and a '}'
_MATCHER = re2.compile(rf'\s*({_NAME})\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|[^,}}]*?)\s*(?:,|$)')
_ONE = re2.compile(rf'(?s)\s*({_NAME})\s*(=~|!~|!=|=)\s*(.*?)\s*')
_SELECTOR = re2.compile(rf"(?s)\s*({_NAME}(?::{_NAME})*)?\s*(?:\{{(.*)\}})?\s*")


@dataclass(frozen=True)
class Matcher:
    """One label condition: `name op value`, op one of =, !=, =~, !~ (regexes anchored)."""

    name: str
    op: str
    value: str
    regex: re2.Regex | None = field(default=None, compare=False, repr=False)

    @classmethod
    def make(cls, name: str, op: str, value: str) -> "Matcher":
        if op not in OPS:
            raise ValueError(f'"{op}" is not a matcher operator; use one of =, !=, =~, !~')
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re2.compile(value)  # anchored by fullmatch, as Alertmanager's ^(?:value)$
            except re2.RegexError as exc:
                raise ValueError(f'the regex "{value}" of label "{name}" {exc.why}') from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = self.regex.fullmatch(actual)
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
    groups = _ONE.fullmatch_groups(text)
    if groups is None:
        raise ValueError(f'"{text}" is not a matcher; write label=value, label!=value, '
                         'label=~regex or label!~regex')
    return Matcher.make(groups[0], groups[1], _unquote(groups[2], text.strip()))


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """Parse a comma-separated list, with or without surrounding braces."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    data = text.encode("utf-8", "surrogatepass")
    out, pos, size = [], 0, len(data.rstrip())
    while pos < size:
        found = _MATCHER.prefix(data, pos)
        if found is None or found[0] == pos:
            rest = data[pos:].decode("utf-8", "surrogatepass").strip()
            raise ValueError(f'"{rest}" is not a matcher; write label=value, '
                             'label!=value, label=~regex or label!~regex')
        end, (name, op, value) = found
        whole = data[pos:end].decode("utf-8", "surrogatepass").strip(" ,")
        out.append(Matcher.make(name.decode(), op.decode(), _unquote(value.decode("utf-8", "surrogatepass"), whole)))
        pos = end
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
    groups = _SELECTOR.fullmatch_groups(text or "")
    if groups is None or (groups[0] is None and groups[1] is None):
        raise ValueError(f'"{text}" is not a series selector; write metric_name or '
                         'metric_name{label="value"}')
    matchers = parse_matchers(groups[1]) if groups[1] else ()
    return Selector(groups[0], matchers)
