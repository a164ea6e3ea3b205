"""Bounds on rendering a user's template: time, size, and the operations that allocate.

Jinja2's sandbox stops a template from reaching Python's internals, not from looping or
allocating: nested `range(100000)` loops ran `alertd validate` past a minute, and
`'x' * 1000000000` took gigabytes. Receivers' own templates (`title_template`, ...) are
rendered under `bounded()`, which adds:

- a time limit (`TIME_LIMIT`): a trace function on the rendering thread checks the clock
  on every Python call (the filters, macros and generators a template runs) and every line
  of the template's own code, and stops the render once it is over, or once the process has
  grown by more than `MEMORY_LIMIT`;
- size limits checked before an operation allocates: `*`, `+`, `**` and `%` in templates,
  `~` (joins), string methods and filters with a width or a count (`center`, `ljust`,
  `indent`, `wordwrap`, `replace`, `format`, `join`, `lipsum`), and the whole output.

Breaking a bound raises `RenderLimit` (a Jinja2 `SecurityError`): at load time a config
error, at run time the default template instead (see `alertd.render.renderer`). The built-in
templates are alertd's own and render without these checks.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import threading
import time

from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from markupsafe import Markup, soft_str

TIME_LIMIT = 0.25  # seconds one render may take (a normal one takes about a millisecond)
MEMORY_LIMIT = 256 << 20  # bytes the process may grow by during one render
MAX_SIZE = 1_000_000  # characters (or items) of any one value a template makes
MAX_OUTPUT = 4_000_000  # characters of a rendered template
_WIDE = re.compile(r"\{[^{}]*:[^{}]*(?:\d{6,}|\{)")  # str.format widths of 100000+, nested
_WIDE_PERCENT = re.compile(r"%[-#0 +]*(?:\*|\d{6,}|\d*\.(?:\*|\d{6,}))")


class RenderLimit(SecurityError):
    """A template went over a bound (time, memory or size); the message says which."""


def _too_big(what: str, size) -> RenderLimit:
    return RenderLimit(f"{what} would make a value of {size:,} characters or items; templates are "
                       f"limited to {MAX_SIZE:,}")


def _size(value) -> int | None:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


def check_binop(op: str, left, right) -> None:
    """Raise RenderLimit before `left op right` makes something too large."""
    if op == "*":
        for seq, n in ((left, right), (right, left)):
            if _size(seq) is not None and isinstance(n, int) and _size(seq) * n > MAX_SIZE:
                raise _too_big("'*'", _size(seq) * n)
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 100_000:
            raise RenderLimit("'*' of numbers this large is not allowed in templates")
    elif op == "+":
        if _size(left) is not None and _size(right) is not None and _size(left) + _size(right) > MAX_SIZE:
            raise _too_big("'+'", _size(left) + _size(right))
    elif op == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if right * math.log2(abs(left)) > 100_000:
                raise RenderLimit("'**' would make a number of more than 100,000 bits; not in templates")
    elif op == "%" and isinstance(left, str) and _WIDE_PERCENT.search(left):
        raise RenderLimit("a '%' format with a width or precision of 100,000 or more, or '*', is not "
                          "allowed in templates")


def check_format(fmt: str) -> None:
    if _WIDE.search(fmt):
        raise RenderLimit("a format with a width of 100,000 or more, or a nested width, is not allowed "
                          "in templates")


def sized_join(parts, markup: bool = False, limit: int = MAX_SIZE) -> str:
    """Jinja's str_join / markup_join of `parts`, refusing a result over `limit` characters."""
    out, total, html = [], 0, False
    for part in parts:
        text = soft_str(part)
        html = html or (markup and hasattr(text, "__html__"))
        total += len(text)
        if total > limit:
            raise _too_big("joining", total)
        out.append(text)
    return Markup("").join(out) if html else "".join(out)


# -- string methods and filters that take a width or a count ------------------------------------
_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs"}


def check_call(obj, args, kwargs) -> None:
    """Raise RenderLimit before a str method makes a value that is too large."""
    name = getattr(obj, "__name__", "")
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str):
        return
    if name in _WIDTH_METHODS:
        for n in (*args, *kwargs.values()):
            if isinstance(n, int) and n * (len(owner) if name == "expandtabs" else 1) > MAX_SIZE:
                raise _too_big(f"str.{name}", n)
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        times = owner.count(args[0]) if args[0] else len(owner) + 1
        grown = len(owner) + times * (len(args[1]) - len(args[0]))
        if grown > MAX_SIZE:
            raise _too_big("str.replace", grown)


def _bounded_filter(name: str, size):
    """Jinja's filter `name`, refusing to run when `size(*args, **kwargs)` is over MAX_SIZE."""
    original = FILTERS[name]

    def wrapper(*args, **kwargs):
        planned = size(*args, **kwargs)
        if planned > MAX_SIZE:
            raise _too_big(f"the {name} filter", planned)
        return original(*args, **kwargs)
    wrapper.__name__ = original.__name__
    if hasattr(original, "jinja_pass_arg"):  # filters given the environment or eval context
        wrapper.jinja_pass_arg = original.jinja_pass_arg
    return wrapper


def _number(value, default: int) -> int:
    if isinstance(value, str):
        return len(value)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _center(value, width=80, *rest, **kw) -> int:
    return max(len(str(value)), _number(width, 80))


def _indent(value, width=4, *rest, **kw) -> int:
    text = str(value)
    return len(text) + (text.count("\n") + 1) * max(_number(width, 4), 0)


def _wordwrap(env, value, width=79, *rest, **kw) -> int:
    text = str(value)  # a break every `width` characters, each break a wrapstring
    wrap = kw.get("wrapstring") or (rest[1] if len(rest) > 1 else None) or "\n"
    return len(text) + (len(text) // max(_number(width, 79), 1) + 1) * len(str(wrap))


def _replace(eval_ctx, value, old="", new="", count=None) -> int:
    text, old, new = str(value), str(old), str(new)
    times = (text.count(old) if old else len(text) + 1)
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * max(len(new) - len(old), 0)


def _format(value, *args, **kwargs) -> int:
    check_binop("%", str(value), None)
    return 0


def _join(eval_ctx, value, d="", attribute=None) -> int:
    return 0  # checked while joining: see _counted


def _counted(items):
    """Yield `items`, refusing once their text is over MAX_SIZE in total (before a join
    has materialised them all)."""
    total = 0
    for item in items:
        total += len(str(item))
        if total > MAX_SIZE:
            raise _too_big("joining", total)
        yield item


_join_filter = FILTERS["join"]


def _bounded_join(eval_ctx, value, d="", attribute=None):
    return _join_filter(eval_ctx, _counted(value), d, attribute)


_bounded_join.jinja_pass_arg = _join_filter.jinja_pass_arg

BOUNDED_FILTERS = {
    "center": _bounded_filter("center", _center),
    "indent": _bounded_filter("indent", _indent),
    "wordwrap": _bounded_filter("wordwrap", _wordwrap),
    "replace": _bounded_filter("replace", _replace),
    "format": _bounded_filter("format", _format),
    "join": _bounded_join,
}


def lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    """Jinja's lipsum, with at most 100 paragraphs of at most 200 words."""
    from jinja2.utils import generate_lorem_ipsum

    if n > 100 or max > 200:
        raise RenderLimit("lipsum is limited to 100 paragraphs of 200 words in templates")
    return generate_lorem_ipsum(n, html, min, max)


class BoundedSandbox:
    """Mixed into a Jinja2 sandbox environment: the size checks above (see the module doc)."""

    intercepted_binops = frozenset({"*", "+", "**", "%"})
    code_generator_class = None  # set below, once BoundedCodeGenerator exists
    sized_join = staticmethod(sized_join)

    def bound(self) -> None:
        """Install the bounded filters, lipsum and output join on this environment."""
        self.filters.update(BOUNDED_FILTERS)
        self.globals["lipsum"] = lipsum
        self.concat = lambda parts: sized_join(parts, limit=MAX_OUTPUT)

    def call_binop(self, context, operator, left, right):
        check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(*args, **kwargs):  # (self, context, obj, *args): names a template cannot clash with
        self, context, obj, *rest = args
        check_call(obj, rest, kwargs)
        return super(BoundedSandbox, self).call(context, obj, *rest, **kwargs)

    def wrap_str_format(self, value):
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            check_format(value.__self__)
        return wrapper


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with `a ~ b` (and every implicit join) checked for size."""

    def visit_Concat(self, node, frame) -> None:
        markup = "context.eval_ctx.volatile" if frame.eval_ctx.volatile else repr(bool(frame.eval_ctx.autoescape))
        self.write("environment.sized_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {markup})")


BoundedSandbox.code_generator_class = BoundedCodeGenerator


# -- the time and memory limit -------------------------------------------------------------------
def _rss() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class _Watch:
    """The trace function of one bounded render."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.seconds = seconds
        self.base = _rss()
        self.lines = 0

    def __call__(self, frame, event, arg):
        """Every Python call (a filter, a macro, a generator step): checked; the lines are
        followed in the template's own code only (a loop there need not call anything), as
        following every line of Jinja's runtime made a render about 7 times slower."""
        if event != "call":
            return None
        self.check()
        return self.line if frame.f_code.co_filename == "<template>" else None

    def line(self, frame, event, arg):
        self.check()
        return self.line

    def check(self) -> None:
        self.lines += 1
        if time.monotonic() > self.deadline:
            raise RenderLimit(f"rendering took more than {self.seconds:g}s (a loop too large?); "
                              "templates are limited in time")
        if not self.lines & 1023 and self.base and _rss() - self.base > MEMORY_LIMIT:
            raise RenderLimit(f"rendering took more than {MEMORY_LIMIT >> 20} MiB of memory; templates "
                              "are limited in memory")


_local = threading.local()


@contextlib.contextmanager
def bounded(seconds: float = TIME_LIMIT):
    """Run the body (a render) under the time and memory limit, on this thread."""
    if getattr(_local, "active", False):  # nested (a macro rendering another template): one watch
        yield
        return
    previous = sys.gettrace()
    _local.active = True
    sys.settrace(_Watch(seconds))
    try:
        yield
    finally:
        sys.settrace(previous)
        _local.active = False
