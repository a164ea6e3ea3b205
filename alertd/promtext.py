"""The Prometheus text exposition format -> samples (for `command` and `push`).

Parsing uses `prometheus_client.parser`; this module adds what alertd needs around it:
samples with canonical labels, a default timestamp for lines that carry none, extra labels
(a push path's `job`), and an error that names the offending line with an excerpt.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from .model import Sample, make_labels
from .sources_util import excerpt


class ExpositionError(ValueError):
    """The text is not in the Prometheus exposition format; the message names the line."""


def parse_exposition(text: str, now: float, extra_labels: dict[str, str] | None = None) -> list[Sample]:
    """Samples of every line of `text`; lines without a timestamp get `now`.

    `extra_labels` are added to every sample (they win over the line's own labels, as a
    Pushgateway grouping key does). Raises ExpositionError naming the first bad line.
    """
    extra = dict(extra_labels or {})
    out: list[Sample] = []
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = {**s.labels, **extra} if extra else s.labels
                ts = s.timestamp if s.timestamp is not None else now
                out.append(Sample(s.name, make_labels(labels), float(ts), float(s.value)))
    except Exception as exc:  # the parser raises ValueError, IndexError, ...; find the line
        raise ExpositionError(_locate(text, exc)) from None
    return out


def _locate(text: str, exc: Exception) -> str:
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            list(text_string_to_metric_families(stripped + "\n"))
        except Exception as line_exc:
            return (f"line {number} is not in the Prometheus text format "
                    f"({_reason(line_exc)}): {excerpt(line, 60)}")
    return f"the text is not in the Prometheus text format ({_reason(exc)})"


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__
