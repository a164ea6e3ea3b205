"""JSON from outside (HTTP answers, pushes, command output, API requests), parsed safely.

`json.loads` raises RecursionError, not ValueError, on documents nested about a thousand
deep (`[[[[...`), and that escaped every `except ValueError` that turns bad input into one
sentence. `loads` reports it as the ValueError it is.
"""

from __future__ import annotations

import json


def loads(data):
    """`json.loads(data)`; ValueError (never RecursionError) for input that is not usable JSON."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
