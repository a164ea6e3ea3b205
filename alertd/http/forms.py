"""HTML form bodies (`application/x-www-form-urlencoded`), parsed with limits.

The server already caps a request body (1 MiB); a form is smaller still: at most
`MAX_FORM_BYTES`, `MAX_FIELDS` fields and `MAX_VALUE` characters a value, valid UTF-8. A form
that breaks a limit is answered 413 or 400 with one sentence, and nothing is done.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from .server import HttpError, Request

MAX_FORM_BYTES = 64 * 1024
MAX_FIELDS = 100
MAX_VALUE = 8 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class Form:
    """The fields of a form: `get(name)` the last value (stripped), `getlist(name)` all."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = pairs

    def get(self, name: str, default: str = "") -> str:
        values = self.getlist(name)
        return values[-1].strip() if values else default

    def getlist(self, name: str) -> list[str]:
        return [v for k, v in self.pairs if k == name]

    def __contains__(self, name: str) -> bool:
        return any(k == name for k, _ in self.pairs)


def parse_form(request: Request) -> Form:
    """The request's form fields; HttpError (415, 413, 400) when it is not a usable form."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise HttpError(415, f"this address takes an HTML form ({FORM_TYPE}), not {kind or 'no content type'}")
    if len(request.body) > MAX_FORM_BYTES:
        raise HttpError(413, f"the form is larger than {MAX_FORM_BYTES // 1024} KiB")
    try:
        text = request.body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, encoding="utf-8",
                          errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise HttpError(400, "the form is not valid UTF-8") from None
    except ValueError:
        raise HttpError(400, f"the form has more than {MAX_FIELDS} fields") from None
    for name, value in pairs:
        if len(value) > MAX_VALUE or len(name) > 100:
            raise HttpError(400, f'the form field "{name[:40]}" is longer than {MAX_VALUE} characters')
    return Form(pairs)
