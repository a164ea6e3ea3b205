"""A rule's `annotations` as Jinja2 templates, in the notification templates' sandbox.

    annotations:
      summary: "Payment success {{ value }} at {{ labels.provider }}"
      description: "{{ $labels.provider }} at {{ $value | humanizePercentage }} for {{ duration }}"

Annotations are rendered for every incident with its own values, where people read them:
notices (`alertd.routing.notices`), `alertd incidents show`, the API and the pages. Prometheus'
habits are accepted, so rules copied from a Prometheus rule file read the same: `$labels`,
`$value`, `.Labels`, `.Value`, the functions `humanize`, `humanize1024`, `humanizeDuration`,
`humanizePercentage`, `humanizeTimestamp`, `title`, `toUpper`, `toLower` and `printf`, as
filters (`{{ $value | humanize }}`) or in Go's call form (`{{ humanize $value }}`,
`{{ printf "%.2f" $value }}`). docs/notifications.md lists every variable.

`check_annotation(text)` is what `alertd validate` (and a reload) runs on every annotation:
it must compile and render for a sample incident. At run time a template that fails (say a
filter gets a label the incident lacks) is shown as written and logged (`annotation_failed`),
so a notice always goes out. Label values are data, never template code.

Annotations are the config's text like receivers' templates, so they get the same bounds
(`alertd.render.guard`): the size checks before an operation allocates, and the time and
memory limit (an expression alone can loop: `(range(100000)|map('center', 99999)|list)`
took 12 s and 10 GB). `validate` refuses a template that breaks a bound on the sample
incident; one that breaks it on a real incident is shown as written from then on, without
rendering it again (it would hold the event loop each time: the pages render annotations
for every incident they list).
"""

from __future__ import annotations

import re
from functools import lru_cache

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import UndefinedError

from .guard import RenderLimit, bounded, check_binop
from .humanize import FILTERS, printf
from .renderer import _make_env, describe_error, sample_incident
from .view import fmt_expected, fmt_number

_BLOCK = re.compile(r"(\{\{.*?\}\}|\{%.*?%\})", re.S)
_DOLLAR = re.compile(r"\$(labels|value|externalLabels|externalURL)\b")
_DOT = re.compile(r"(?<![\w\])}.])\.(Labels|Value)\b")
_FUNCS = "|".join(sorted(FILTERS, key=len, reverse=True))
_CALL = re.compile(r"^(\{\{-?\s*)(" + _FUNCS + r")\s+((?:\"[^\"]*\"\s+)?)([\w.\[\]'\"]+)(\s*-?\}\})$", re.S)
_PIPE_PRINTF = re.compile(r"\|\s*printf\s+(\"[^\"]*\")")
_NAMES = {"labels": "labels", "value": "value", "externalLabels": "external_labels",
          "externalURL": "external_url", "Labels": "labels", "Value": "value"}


class AnnotationValue(float):
    """The incident's value: a number for filters and arithmetic, printed with 4 significant
    digits (`0.31`, `1234`, `1.5e-05`) as alertd always showed `{{ value }}`."""

    def __str__(self) -> str:
        return f"{float(self):.4g}"


def translate(text: str) -> str:
    """Prometheus' spellings inside `{{ }}` and `{% %}` turned into Jinja2's."""

    def block(match):
        part = _DOLLAR.sub(lambda m: _NAMES[m.group(1)], match.group(0))
        part = _DOT.sub(lambda m: _NAMES[m.group(1)], part)
        part = _PIPE_PRINTF.sub(r"| printf(\1)", part)
        call = _CALL.match(part)
        if call:  # Go's call form: {{ humanize value }}, {{ printf "%.2f" value }}
            head, func, fmt, arg, tail = call.groups()
            args = f"({fmt.strip()})" if fmt.strip() else ""
            part = f"{head}{arg} | {func}{args}{tail}"
        return part

    return _BLOCK.sub(block, text)


def _printf(value, fmt: str = "%v") -> str:
    """Go's printf, refusing a width of 100,000 or more (one C call would allocate it)."""
    check_binop("%", str(fmt), value)
    return printf(value, fmt)


def _env():
    env = _make_env(False, limits=True)  # the receivers' templates' bounded sandbox, text flavour
    functions = {**FILTERS, "printf": _printf}
    env.filters.update(functions)
    env.globals.update(functions)
    return env


_ENV = _env()
_OVER_LIMIT: set[str] = set()  # texts that broke a bound on a real incident: shown as written


def _render(template, values: dict) -> str:
    with bounded():
        return template.render(values)


@lru_cache(maxsize=1024)
def _compile(text: str):
    return _ENV.from_string(translate(text))


def variables(incident, external_url: str = "") -> dict:
    """What an annotation template sees of one incident (docs/notifications.md)."""
    value = incident.last_value
    labels = dict(incident.labels)
    return {
        "value": AnnotationValue(value) if value is not None else "",
        "labels": labels, "rule": incident.rule, "alertname": incident.rule,
        "severity": incident.severity or "", "state": incident.state,
        "expected": fmt_expected(incident.expected_low, incident.expected_high),
        "expected_low": incident.expected_low, "expected_high": incident.expected_high,
        "score": incident.score, "threshold": incident.threshold, "peak_score": incident.peak_score,
        "reason": incident.reason or "", "count": incident.count, "id": incident.id,
        "fingerprint": incident.fingerprint, "started": incident.started_at, "fired": incident.fired_at,
        "value_text": fmt_number(value) if value is not None else "",
        "external_url": external_url, "external_labels": {},
    }


def render_annotation(text: str, incident, *, external_url: str = "") -> str:
    """One annotation rendered for `incident`; raises what the template raises."""
    return _render(_compile(text), variables(incident, external_url)).strip()


def render_annotations(incident, *, external_url: str = "", log=None) -> dict[str, str]:
    """Every annotation of `incident` rendered; one that fails is shown as written (logged)."""
    out = {}
    for key, text in incident.annotations.items():
        if "{" not in text or text in _OVER_LIMIT:
            out[key] = text
            continue
        try:
            out[key] = render_annotation(text, incident, external_url=external_url)
        except Exception as exc:
            out[key] = text
            over = isinstance(exc, RenderLimit)
            if over:
                _OVER_LIMIT.add(text)
            if log is not None or over:
                (log or _default_log()).warning(
                    "annotation_failed", rule=incident.rule, annotation=key, error=describe_error(exc),
                    using="the text as written" + (" from now on" if over else ""))
    return out


def _default_log():
    from ..log import get_logger

    return get_logger()


class _AnyLabels(dict):
    """The sample's labels, with a value for every name (a real incident may have it)."""

    def __missing__(self, key):
        return "1"


def check_annotation(text) -> None:
    """ValueError with one sentence when `text` does not compile or fails on a sample incident."""
    if not isinstance(text, str):
        raise ValueError(f"an annotation must be text, not {type(text).__name__}")
    try:
        template = _compile(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"the template does not compile ({describe_error(exc)}); fix the Jinja2 syntax "
                         "(docs/notifications.md lists the variables)") from None
    sample = sample_incident()
    values = variables(sample)
    values["labels"] = _AnyLabels(values["labels"])
    try:
        _render(template, values)
    except UndefinedError:
        return  # a name the sample lacks; a real incident may have it
    except Exception as exc:
        raise ValueError(f"the template fails on a sample incident ({describe_error(exc)}); fix it "
                         "(docs/notifications.md lists the variables)") from None
