"""JSON from outside (HTTP answers, pushes, command output, API requests), parsed safely.

`json.loads` raises RecursionError, not ValueError, on documents nested about a thousand
deep (`[[[[...`), and that escaped every `except ValueError` that turns bad input into one
sentence; and a plain ValueError without the `msg` of a JSONDecodeError for an integer of
more than 4300 digits. `loads` reports both as the JSONDecodeError they are.
"""

from __future__ import annotations

import json


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
