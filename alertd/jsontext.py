"""JSON text: from outside (HTTP answers, pushes, command output, API requests), parsed
safely; and written fast where the store keeps it (`dumps`).

`json.loads` raises RecursionError, not ValueError, on documents nested about a thousand
deep (`[[[[...`), and that escaped every `except ValueError` that turns bad input into one
sentence; and a plain ValueError without the `msg` of a JSONDecodeError for an integer of
more than 4300 digits. `loads` reports both as the JSONDecodeError they are.
"""

from __future__ import annotations

import dataclasses
import json

import orjson

_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_PLAIN = orjson.OPT_NON_STR_KEYS


def loads(data):
    """`json.loads(data)`; a ValueError (json.JSONDecodeError, never RecursionError) for input
    that is not usable JSON."""
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        raise
    except RecursionError:  # a JSONDecodeError, as callers may read its `msg`
        raise json.JSONDecodeError("the JSON is nested too deeply", _text(data), 0) from None
    except ValueError as exc:  # an integer of more than 4300 digits, bytes that are not UTF-8
        raise json.JSONDecodeError(str(exc), _text(data), 0) from None


def _text(data) -> str:
    return data if isinstance(data, str) else ""


def dumps(value, *, sort_keys: bool = False) -> str:
    """JSON text of `value`, as `json.dumps` would parse back, written by orjson (about ten
    times faster: an alert storm writes every incident of every notice into the outbox).

    The text is compact (no spaces after `,` and `:`); a NaN or infinity becomes `null`, as
    JSON has no such numbers. Dataclass instances are written as objects of their fields
    (a notification and its incidents, without copying them into dicts first). A value orjson
    does not take (an integer beyond 64 bits, ...) is written by `json.dumps` instead."""
    try:
        return orjson.dumps(value, option=_SORTED if sort_keys else _PLAIN).decode()
    except TypeError:
        return json.dumps(value, sort_keys=sort_keys, separators=(",", ":"), default=_fields)


def _fields(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
