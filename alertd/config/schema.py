"""Validate YAML values into frozen dataclasses, collecting clear errors.

Core config sections and every plugin's `Params` are plain (frozen) dataclasses whose type
hints say what is allowed. `build(cls, value, where)` converts a YAML mapping into an
instance, and records one `Problem` per mistake (unknown key with the nearest valid key,
wrong type, bad duration, missing key, missing environment variable) instead of stopping at
the first. Supported hints: str, int, float, bool, `Duration`, `Secret`, `Literal[...]`,
`X | None`, `list[X]`, `dict[str, X]`, nested dataclasses, `Any`, and any class with a
`from_config(value)` classmethod that returns the checked value or raises ValueError with a
sentence (e.g. `alertd.render.TemplateText`, a Jinja2 template that must compile).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, Union
from urllib.parse import parse_qsl, urlsplit

from ..durations import parse_duration
from .yamlsrc import YamlList, YamlMap


class Duration(float):
    """Type hint marker: a duration in seconds, written `30s`, `5m`, `1h` or a number."""


class Secret(str):
    """Type hint marker: a string that must never be logged or printed (redacted)."""

    def __repr__(self) -> str:
        return "'***'"


class CredentialURL(str):
    """Type hint marker: a URL that is shown, except its password and query values, which are
    secrets (`https://user:pass@host/path?api_key=...` keeps pass and the key out of logs)."""


@dataclass(frozen=True)
class Problem:
    """One config mistake: where it is and one sentence saying what is wrong and what to do."""

    file: str
    line: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class ConfigError(Exception):
    """A config file (or a single value) is invalid; `problems` lists every mistake found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class Where:
    """The position of a value being validated, and the list collecting problems."""

    file: str
    line: int
    key: str
    problems: list[Problem] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    environ: dict | None = None  # None: os.environ

    def at(self, line: int | None, key: str) -> "Where":
        """The same file, problems and secrets, at another line and key path."""
        return Where(self.file, line or self.line, key, self.problems, self.secrets, self.environ)

    def child(self, key: str, line: int | None = None) -> "Where":
        return self.at(line, f"{self.key}.{key}" if self.key else str(key))

    def item(self, index: int, line: int | None = None) -> "Where":
        return self.at(line, f"{self.key}[{index}]")

    def error(self, message: str) -> None:
        self.problems.append(Problem(self.file, self.line, self.key or "(top level)", message))


class Invalid(Exception):
    """Raised inside conversion when a value is unusable; turned into a Problem."""


class ParamError(ValueError):
    """Raised by a `Params.check()` for one key: the problem is reported at that key."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def suggest(word: str, choices) -> str:
    """'; did you mean "x"?' for the nearest choice, or a list of valid ones."""
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    if close:
        return f'; did you mean "{close[0]}"?'
    if choices and len(choices) <= 12:
        return "; valid ones are " + ", ".join(f'"{c}"' for c in choices) + "."
    return "."


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, where: Where) -> str:
    """Replace `${NAME}` and `${NAME:-default}` with environment values."""
    environ = os.environ if where.environ is None else where.environ

    def repl(match):
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise Invalid(f"the environment variable {name} is not set; export it or "
                      f"write ${{{name}:-default}} to give a default")

    return _ENV.sub(repl, text)


def _type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if hint is Duration:
        return "a duration such as 30s, 5m or 1h"
    if hint in (str, Secret, CredentialURL):
        return "a string"
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a number"
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(f'"{a}"' for a in typing.get_args(hint))
    return getattr(hint, "description", str(hint))


def _describe(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "empty"
    return repr(value)


def convert(hint, value, where: Where):
    """Convert one YAML value to `hint`, raising Invalid with a sentence when impossible."""
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return value
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return convert(args[0], value, where) if len(args) == 1 else value
    if isinstance(value, str) and "${" in value:
        value = expand_env(value, where)
    parse = getattr(hint, "from_config", None) if isinstance(hint, type) else None
    if parse is not None:  # a type that checks itself (e.g. a template that must compile)
        try:
            return parse(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
    if hint is Secret:
        if not isinstance(value, (str, int)):
            raise Invalid(f"expected a string, got {_describe(value)}")
        value = Secret(str(value))
        if len(value) >= 4:
            where.secrets.add(str(value))
            where.secrets.update(_url_secret_parts(value))
        return value
    if hint is CredentialURL:
        if isinstance(value, (dict, list)) or value is None:
            raise Invalid(f"expected a URL, got {_describe(value)}")
        value = CredentialURL(str(value))
        where.secrets.update(_url_credentials(value))
        return value
    if hint is Duration:
        try:
            return Duration(parse_duration(value))
        except ValueError:
            raise Invalid(f"{_describe(value)} is not a duration; write a number of seconds or "
                          "a value like 30s, 5m, 1h") from None
    if hint is str:
        if isinstance(value, (dict, list)) or value is None:
            raise Invalid(f"expected a string, got {_describe(value)}")
        return str(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", ""):
            return value.lower() in ("true", "yes", "1")
        raise Invalid(f"expected true or false, got {_describe(value)}")
    if hint in (int, float):
        if isinstance(value, bool) or isinstance(value, (dict, list)) or value is None:
            raise Invalid(f"expected {_type_name(hint)}, got {_describe(value)}")
        try:
            number = float(value) if hint is float else int(str(value), 10) if isinstance(value, str) else value
        except ValueError:
            raise Invalid(f"expected {_type_name(hint)}, got {_describe(value)}") from None
        if hint is int and (not isinstance(number, int) and not float(number).is_integer()):
            raise Invalid(f"expected an integer, got {_describe(value)}")
        return hint(number)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise Invalid(f"{_describe(value)} is not allowed{suggest(value, allowed)}")
        return value
    if origin is list:
        (item_hint,) = typing.get_args(hint) or (Any,)
        if value is None:
            return ()
        if not isinstance(value, list):
            value = [value] if not isinstance(value, dict) else value
            if isinstance(value, dict):
                raise Invalid(f"expected a list, got {_describe(value)}")
        out = []
        for i, item in enumerate(value):
            line = value.line_of(i) if isinstance(value, YamlList) else None
            sub = where.item(i, line)
            try:
                out.append(convert(item_hint, item, sub))
            except Invalid as exc:
                sub.error(str(exc))
        return tuple(out)
    if origin is dict:
        _, value_hint = typing.get_args(hint) or (str, Any)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise Invalid(f"expected a mapping, got {_describe(value)}")
        out = {}
        for k, v in value.items():
            line = value.line_of(k) if isinstance(value, YamlMap) else None
            sub = where.child(str(k), line)
            try:
                out[str(k)] = convert(value_hint, v, sub)
            except Invalid as exc:
                sub.error(str(exc))
        return out
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    raise Invalid(f"cannot check values of type {hint!r}")


def yaml_key(f: dataclasses.Field) -> str:
    """The key users write for a field: `field(metadata={"key": "for"})` renames `for_`."""
    return f.metadata.get("key", f.name)


def _is_key(f: dataclasses.Field) -> bool:
    """Whether users write this field: init fields, unless marked `metadata={"derived": True}`
    (set by the loader from other settings, never from YAML)."""
    return f.init and not f.metadata.get("derived")


def fields_of(cls) -> dict[str, Any]:
    """YAML key -> resolved type hint of a dataclass (the fields users write)."""
    hints = typing.get_type_hints(cls)
    return {yaml_key(f): hints[f.name] for f in dataclasses.fields(cls) if _is_key(f)}


def build(cls, value, where: Where, *, ignore: frozenset[str] = frozenset(), extra_keys=()):
    """Build dataclass `cls` from mapping `value`, recording problems at `where`.

    Keys in `ignore` are skipped silently (the caller handles them); `extra_keys` are
    offered as suggestions for unknown keys. Returns an instance, or None when a required
    key is missing or a value is unusable (the problems say why).
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        where.error(f"expected a mapping of keys, got {_describe(value)}")
        return None
    hints = fields_of(cls)
    kwargs, ok = {}, True
    for key in value:
        if key in hints or key in ignore:
            continue
        line = value.line_of(key) if isinstance(value, YamlMap) else None
        where.child(str(key), line).error(
            f'unknown key "{key}"{suggest(key, list(hints) + list(extra_keys))}')
        ok = False
    for f in dataclasses.fields(cls):
        if not _is_key(f):
            continue
        key = yaml_key(f)
        line = value.line_of(key) if isinstance(value, YamlMap) else None
        sub = where.child(key, line)
        if key not in value:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                where.error(f'the required key "{key}" is missing; add it '
                            f"({_type_name(hints[key])})")
                ok = False
            continue
        before = len(where.problems)
        try:
            kwargs[f.name] = convert(hints[key], value[key], sub)
        except Invalid as exc:
            sub.error(str(exc))
        if len(where.problems) > before:
            ok = False
    if not ok:
        return None
    try:
        instance = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        where.error(str(exc))
        return None
    check = getattr(instance, "check", None)
    if callable(check):
        try:
            check()
        except ParamError as exc:  # names the key at fault: report it there
            line = value.line_of(exc.key) if isinstance(value, YamlMap) and exc.key in value else None
            where.child(exc.key, line).error(str(exc))
            return None
        except (Invalid, ValueError) as exc:
            where.error(str(exc))
            return None
    return instance


def parse_params(cls, value: dict | None, *, file: str = "<params>", key: str = "params"):
    """Build `cls` from a plain dict, raising ConfigError listing every problem."""
    where = Where(file, 0, key)
    result = build(cls, value or {}, where)
    if where.problems:
        raise ConfigError(where.problems)
    return result


def _url_secret_parts(value: str) -> list[str]:
    """The secret-bearing parts of a secret URL (path and query, password), so a service that
    echoes only the path (as many error pages do) does not leak it either."""
    if not value.startswith(("http://", "https://")):
        return []
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:  # not a URL at all: the whole value is secret already
        return []
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    found = [tail] if len(tail) >= 8 else []
    if parts.password and len(parts.password) >= 4:
        found.append(parts.password)
    return found


def _url_credentials(value: str) -> list[str]:
    """The password and the query values (4 characters or more) of a URL."""
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return []
    found = [password] if password and len(password) >= 4 else []
    found += [v for _, v in parse_qsl(parts.query) if len(v) >= 4]
    return found
