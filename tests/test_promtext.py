"""The Prometheus text parser: the fast path agrees with prometheus_client's parser."""

from __future__ import annotations

import math

import pytest

from alertd.sources import promtext
from alertd.sources.promtext import ExpositionError, parse_exposition

TEXTS = [
    '# HELP a x\n# TYPE a counter\na_total{x="1",y="two words"} 3 1700000000000\nb 4\nc{} NaN\nd{z="q"} +Inf\n',
    'f{x="1",} 2\ng 1e3\nh{ a = "1" , b="2" } -5\n',
    'e{x="a\\"b",y="line\\nbreak"} 1\n',  # escapes: only the full parser reads them
    'dup{a="1"} 1\ndup{a="2"} 2\n',
]


def _key(samples):
    return [(s.name, s.labels, s.ts, "nan" if math.isnan(s.value) else s.value) for s in samples]


@pytest.mark.parametrize("text", TEXTS)
def test_fast_path_and_full_parser_agree(text, monkeypatch):
    fast = parse_exposition(text, 5.0, {"job": "j"})
    monkeypatch.setattr(promtext, "_parse_plain", lambda *a: None)
    assert _key(fast) == _key(parse_exposition(text, 5.0, {"job": "j"}))


def test_a_bad_line_is_named():
    with pytest.raises(ExpositionError, match=r"line 3 is not in the Prometheus text format .*'c\{d=1\} 2'"):
        parse_exposition("a 1\n# comment\nc{d=1} 2\n", 0.0)
