"""Regular expressions that run in linear time (RE2), for every regex that meets data.

Python's `re` backtracks: `host=(?P<host>([a-z0-9-]+\\.?)+) status=5\\d\\d` against one line
`host=aaaa...a status=200` tries exponentially many ways to split the name, holding the GIL
(the HTTP server, the dispatcher and the watchdog stop) for minutes. RE2 (`google-re2`), the
engine behind Prometheus, Alertmanager and Loki, matches in time linear in the text, whatever
the pattern. So every regex that data goes through (logfile metrics, `=~` and `!~` label
matchers in rules, routes, inhibitions and silences) is compiled here.

The syntax is the one users write for Python and Prometheus, minus what needs backtracking:
backreferences, lookahead and lookbehind, atomic groups and possessive quantifiers. Such a
pattern is refused when the config is read, with one sentence naming what is unsupported.
Two quiet differences: `\\d`, `\\w` and `\\s` match ASCII only, and `$` matches only at the
very end (Python's also matches before a final newline).

    rx = compile(r'status=(?P<status>5\\d\\d)')     # ValueError with one sentence when refused
    rx.fullmatch("503")                            # anchored at both ends (matchers)
    rx.search(b"... status=503 ...")               # the groups as bytes, or None (log lines)
"""

from __future__ import annotations

import re

from re2 import _re2  # the RE2 binding itself: the `re2` module's wrapper costs ~5x per call

_OPTIONS = _re2.RE2.Options()
_OPTIONS.log_errors = False  # RE2 would print every refused pattern on stderr
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH
_ANCHOR_START = _re2.RE2.Anchor.ANCHOR_START
_NO_SPAN = (-1, -1)

# what RE2 refuses that Python accepts, by the start of RE2's error -> the name users know
_UNSUPPORTED = (
    (re.compile(r"invalid escape sequence: \\[0-9]"), "a backreference (\\1)"),
    (re.compile(r"invalid perl operator: \(\?P(=|$)"), "a named backreference ((?P=name))"),
    (re.compile(r"invalid perl operator: \(\?[=!]"), "a lookahead ((?=...) or (?!...))"),
    (re.compile(r"invalid perl operator: \(\?<[=!]"), "a lookbehind ((?<=...) or (?<!...))"),
    (re.compile(r"invalid perl operator: \(\?>"), "an atomic group ((?>...))"),
    (re.compile(r"invalid perl operator: \(\?\("), "a conditional group ((?(1)...))"),
    (re.compile(r"invalid perl operator: \(\?#"), "a comment group ((?#...))"),
    (re.compile(r"invalid perl operator: \(\?[a-z]*x"), "the verbose flag (?x)"),
    (re.compile(r"invalid perl operator: \(\?[a-z]*[aLu]"), "the flags (?a), (?L) and (?u)"),
    (re.compile(r"bad repetition operator: (\*|\+|\?|\{[0-9,]*\})\+"), "a possessive quantifier (such as a++)"),
    (re.compile(r"invalid escape sequence: \\Z"), "\\Z (write \\z or $ for the end of the text)"),
    (re.compile(r"invalid escape sequence: \\N"), "\\N{name} (write the character itself)"),
    (re.compile(r"invalid repetition size"), "a repetition count over 1000 (such as a{2000})"),
    (re.compile(r"pattern too large"), "a pattern this large (more than RE2's 8 MiB program)"),
)


class RegexError(ValueError):
    """A pattern RE2 refuses. The message is one sentence (`the regex "x" ` + `why`); `why`
    alone lets a caller name the pattern its own way (`the regex "x" of label "y" ...`)."""

    def __init__(self, pattern: str, why: str):
        super().__init__(f'the regex "{pattern}" {why}')
        self.pattern, self.why = pattern, why


def _refusal(pattern: str, error: str) -> str:
    """Why RE2 refused `pattern` (given RE2's `error`), as the end of a sentence."""
    for test, what in _UNSUPPORTED:
        if test.match(error):
            return (f"uses {what}, which alertd does not support: its regexes run on RE2 (as "
                    "Prometheus, Alertmanager and Loki do), which matches in linear time; rewrite it without that")
    try:
        re.compile(pattern)
    except re.error as exc:  # Python's message names the position
        return f"is invalid: {exc}"
    except (OverflowError, RecursionError, ValueError) as exc:
        return f"is invalid: {exc}"
    return f"is not supported by RE2, the engine alertd uses ({error})"


class Regex:
    """A compiled pattern (RE2). See the module docstring."""

    __slots__ = ("pattern", "groupindex", "groups", "_match")

    def __init__(self, pattern: str):
        if not isinstance(pattern, str):
            raise RegexError(str(pattern), f"is {type(pattern).__name__}, not text")
        try:
            compiled = _re2.RE2(pattern.encode("utf-8"), _OPTIONS)
        except UnicodeEncodeError:
            raise RegexError(pattern, "is not valid text (it has a lone surrogate)") from None
        if not compiled.ok():
            raise RegexError(pattern, _refusal(pattern, compiled.error().decode("utf-8", "replace")))
        self.pattern = pattern
        self.groups = compiled.NumberOfCapturingGroups()
        self.groupindex = {name.decode("utf-8"): index for name, index in compiled.NamedCapturingGroups()}
        self._match = compiled.Match

    def fullmatch(self, text: str) -> bool:
        """Whether the whole of `text` matches (as Prometheus and Alertmanager anchor matchers)."""
        data = text.encode("utf-8", "surrogatepass")
        return self._match(_BOTH, data, 0, len(data))[0] != _NO_SPAN

    def fullmatch_groups(self, text: str) -> tuple | None:
        """The groups (str, or None for a group that took no part) when all of `text` matches."""
        data = text.encode("utf-8", "surrogatepass")
        spans = self._match(_BOTH, data, 0, len(data))
        if spans[0] == _NO_SPAN:
            return None
        return tuple(None if s == _NO_SPAN else data[s[0]:s[1]].decode("utf-8", "surrogatepass")
                     for s in spans[1:])

    def prefix(self, data: bytes, pos: int = 0) -> tuple[int, tuple] | None:
        """(end, groups as bytes or None) of a match starting exactly at `pos`, or None."""
        spans = self._match(_ANCHOR_START, data, pos, len(data))
        if spans[0] == _NO_SPAN:
            return None
        return spans[0][1], tuple(None if s == _NO_SPAN else data[s[0]:s[1]] for s in spans[1:])

    def search(self, line: bytes) -> tuple | None:
        """The groups (bytes, or None) of the first match anywhere in `line`, or None."""
        spans = self._match(_UNANCHORED, line, 0, len(line))
        if spans[0] == _NO_SPAN:
            return None
        return tuple(None if s == _NO_SPAN else line[s[0]:s[1]] for s in spans[1:])

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"

    def __reduce__(self):  # picklable and copyable: compiled again from the pattern
        return (Regex, (self.pattern,))


def compile(pattern: str) -> Regex:  # noqa: A001 - the name re users expect
    """The pattern compiled by RE2; RegexError (a ValueError) with one sentence if refused."""
    return Regex(pattern)


class RegexSet:
    """Which of several patterns match somewhere in a line, in one pass (RE2::Set).

    A log line is first tested against all metrics' patterns at once (a DFA, no group
    extraction); only the patterns that match are then run for their groups.
    """

    def __init__(self, patterns: list[str]):
        self._set = _re2.Set(_UNANCHORED, _OPTIONS)
        for pattern in patterns:
            if self._set.Add(pattern.encode("utf-8")) < 0:
                Regex(pattern)  # raises with the reason
                raise RegexError(pattern, "cannot be combined with the others (RE2::Set refused it)")
        self._set.Compile()
        self.matching = self._set.Match  # matching(line: bytes) -> list of pattern indices
