"""Regexes that meet data run on RE2 (alertd/regex.py): linear time, Alertmanager's semantics.

Label matchers are compared with Alertmanager's own (`amtool config routes test`, Debian's
prometheus-alertmanager), including the patterns that made Python's `re` backtrack for minutes.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess

import pytest

from alertd import regex
from alertd.matchers import Matcher, parse_matcher, parse_matchers, parse_selector

SLOW = "host=" + "a" * 43 + " status=200 path=/"
CASES = [  # (pattern, label value): what Alertmanager says is what alertd says
    ("(a|aa)+", "aaaa"), ("(a|aa)+", "aaab"), ("(a|aa)+b", "a" * 60),
    (r"host=(?P<host>([a-z0-9-]+\.?)+) status=5\d\d", SLOW), (r"(x+x+)+y", "x" * 5000),
    ("a.*", "xa"), ("eu|us", "eu"), ("eu|us", "eu-west"), (r"\d+", "١٢٣"), (r"\d+", "123"),
    ("(?i)ADYEN", "adyen"), (r"\p{Greek}+", "αβγ"), ("[[:alpha:]]+", "abc"), ("", ""), ("", "x"),
    ("x*", ""), ("a{2}", "aa"), (".+", "ü"), ("[^/]+", "a/b"),
]


@pytest.mark.timeout(30)  # Python's re: minutes for the backtracking cases
def test_matchers_agree_with_alertmanager_and_stay_fast(tmp_path):
    amtool = shutil.which("amtool") or "/usr/bin/amtool"
    if not shutil.which(amtool):
        pytest.fail("amtool is not installed; run `sh scripts/system-deps.sh` (make test does) or "
                    "apt-get install prometheus-alertmanager")
    routes = "\n".join(f"    - {{receiver: r{i}, continue: true, matchers: ['l{i}=~{_go_quote(p)}']}}"
                       for i, (p, _) in enumerate(CASES))
    receivers = "\n".join(f"  - name: r{i}" for i in range(len(CASES)))
    (tmp_path / "am.yml").write_text(f"route:\n  receiver: miss\n  routes:\n{routes}\nreceivers:\n"
                                     f"  - name: miss\n{receivers}\n")
    args = [f"l{i}={value}" for i, (_, value) in enumerate(CASES)]
    out = subprocess.run([amtool, "config", "routes", "test", f"--config.file={tmp_path / 'am.yml'}", *args],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    theirs = {int(name[1:]) for name in out.strip().split(",") if name.startswith("r")}
    ours = {i for i, (p, value) in enumerate(CASES) if Matcher.make(f"l{i}", "=~", p).matches({f"l{i}": value})}
    assert ours == theirs
    assert ours == {0, 6, 9, 10, 11, 12, 13, 15, 16, 17}  # \d is ASCII in both; anchored at both ends


def _go_quote(pattern: str) -> str:
    """A matcher value in double quotes, as Alertmanager's parser wants it (YAML single-quoted)."""
    return '"' + pattern.replace("\\", "\\\\").replace('"', '\\"').replace("'", "''") + '"'


@pytest.mark.parametrize("pattern, what", [
    (r"(\w+) \1", r"a backreference (\1)"),
    (r"(?P<n>a)(?P=n)", "a named backreference ((?P=name))"),
    (r"(?=a)a", "a lookahead ((?=...) or (?!...))"),
    (r"(?<!a)b", "a lookbehind ((?<=...) or (?<!...))"),
    (r"(?>a)", "an atomic group ((?>...))"),
    (r"a*+", "a possessive quantifier (such as a++)"),
    (r"(?x) a b", "the verbose flag (?x)"),
    (r"end\Z", r"\Z (write \z or $ for the end of the text)"),
    (r"a{2000}", "a repetition count over 1000 (such as a{2000})"),
])
def test_what_re2_cannot_run_is_one_sentence_naming_it(pattern, what):
    with pytest.raises(ValueError) as info:
        Matcher.make("host", "=~", pattern)
    assert str(info.value) == (
        f'the regex "{pattern}" of label "host" uses {what}, which alertd does not support: its regexes run '
        "on RE2 (as Prometheus, Alertmanager and Loki do), which matches in linear time; rewrite it without that")


def test_a_malformed_regex_keeps_pythons_words_and_position():
    with pytest.raises(regex.RegexError, match=r'the regex "\(a" is invalid: missing \), unterminated subpattern '
                                               r"at position 0"):
        regex.compile("(a")


@pytest.mark.timeout(30)  # Python's re took minutes on these (a silence's matchers come over the API)
def test_parsing_matchers_and_selectors_is_linear():
    for text in ["a=" + " " * 20000 + "x}", 'a="' + " " * 20000 + "x}", "a=x" + " " * 20000 + "}"]:
        with pytest.raises(ValueError):
            parse_matchers(text)
    with pytest.raises(ValueError):
        parse_matcher('a="' + " " * 20000 + "x")
    assert parse_matchers('rule="x", provider=~"adyen|stripe" ,  env!="dev"') == (
        Matcher.make("rule", "=", "x"), Matcher.make("provider", "=~", "adyen|stripe"), Matcher.make("env", "!=", "dev"))
    assert str(parse_selector('orders{region=~"eu.*",  shop="main"}')) == 'orders{region=~"eu.*",shop="main"}'


def test_log_line_search_gives_groups_as_bytes_and_compiled_regexes_pickle():
    rx = regex.compile(r"status=(?P<status>5\d\d)(?: upstream=(?P<up>\S+))?")
    assert rx.groupindex == {"status": 1, "up": 2} and rx.groups == 2
    assert rx.search(b"GET / status=503 upstream=api-1") == (b"503", b"api-1")
    assert rx.search(b"status=502") == (b"502", None) and rx.search(b"status=200") is None
    again = pickle.loads(pickle.dumps(Matcher.make("x", "=~", "a|b")))
    assert again.matches({"x": "b"}) and not again.matches({"x": "c"})
    assert regex.RegexSet(["a", "b+", "c"]).matching(b"xbbx") == [1]
