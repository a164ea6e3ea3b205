"""JSON from outside (HTTP answers, pushes, command output, API requests), parsed safely.

`json.loads` raises RecursionError, not ValueError, on documents nested about a thousand
deep (`[[[[...`), and that escaped every `except ValueError` that turns bad input into one
sentence. `loads` reports it as the ValueError it is.
"""

from __future__ import annotations

import json


def loads(data):
    """`json.loads(data)`; a ValueError (json.JSONDecodeError, never RecursionError) for input
    that is not usable JSON."""
    try:
        return json.loads(data)
    except RecursionError:  # a JSONDecodeError, as callers may read its `msg`
        raise json.JSONDecodeError("the JSON is nested too deeply", data if isinstance(data, str) else "",
                                   0) from None
