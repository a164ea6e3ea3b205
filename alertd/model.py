"""Plain data handed between the stages of the pipeline.

Nothing here has behaviour beyond formatting: sources produce `Sample`s, detectors turn a
`Batch` into `Scores`, the alert state machine turns scores into `Verdict`s and `Incident`s,
and the router turns incidents into `Notification`s for the outbox.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Mapping, NamedTuple

import numpy as np

Labels = tuple[tuple[str, str], ...]


def make_labels(mapping: Mapping[str, object] | None) -> Labels:
    """Labels as a sorted tuple of string pairs (hashable, canonical)."""
    if not mapping:
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in mapping.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@functools.lru_cache(maxsize=1 << 20)
def series_key(name: str, labels: Labels) -> str:
    """The Prometheus-style text key of a series: `name{a="1",b="2"}`."""
    if not labels:
        return name
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{inner}}}"


def forget_unused_series_keys(live: int) -> bool:
    """Empty `series_key`'s cache when it holds far more keys than there are `live` series
    (the daemon's prune job asks, after dropping silent series): the keys of series that
    went (pods, request ids) would otherwise stay in it until it holds a million, about
    400 bytes each (in a real-time soak with 1,500 new pod series an hour, 0.6 MB an hour
    for a month and a half). The next poll fills it again (about 1.5 us a series, once)."""
    if series_key.cache_info().currsize > 2 * live + 1000:
        series_key.cache_clear()
        return True
    return False


class Sample(NamedTuple):
    """One observation: a metric name, its labels, a timestamp (epoch s) and a value.

    Immutable like a frozen dataclass, but a named tuple: sources make one per series per
    poll, and a tuple is built about four times faster (10,000 samples: 3 ms, not 13 ms).
    """

    name: str
    labels: Labels
    ts: float
    value: float

    @property
    def key(self) -> str:
        return series_key(self.name, self.labels)


def fingerprint(rule: str, labels: Labels) -> str:
    """Stable hash of a rule name and a series' labels: one open incident per value."""
    payload = json.dumps([rule, list(labels)], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Status(IntEnum):
    """What a detector could say about one point."""

    OK = 0
    ANOMALOUS = 1
    WARMING_UP = 2  # not enough history yet: no verdict
    SKIPPED = 3  # the point itself is unusable (NaN, duplicate timestamp, ...)


@dataclass(frozen=True)
class Batch:
    """The input of one `Detector.score` call: the current point of n series of a rule.

    `history` holds up to `window` earlier values per series, oldest first, NaN-padded on
    the left where a series has fewer; `history_ts` holds their timestamps. Everything a
    detector may look at is here, so a score at time t can only use points up to t.
    """

    keys: list[str]
    labels: list[Labels]
    ts: np.ndarray  # (n,) timestamp of the current point
    values: np.ndarray  # (n,) current value
    history: np.ndarray  # (n, window) earlier values, oldest first
    history_ts: np.ndarray  # (n, window)
    seen: np.ndarray  # (n,) points seen so far per series, the current one included
    was_anomalous: np.ndarray  # (n,) bool: the previous verdict of this series

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class Scores:
    """A detector's answer for a `Batch`, one entry per series, as arrays.

    `score` is calibrated into [0, 1] (NaN where there is no verdict); `threshold` is in the
    same units; `lower`/`upper` are the expected range of the value (NaN if unknown);
    `context` optionally names what the point was compared with ("for Tue 14:00"); for an
    early warning (finite `crossing_at`) it is the whole forecast ("expected to reach 0 in
    about 2 h 40 (at 17:25 UTC), forecast by AutoETS").
    """

    status: np.ndarray  # (n,) int8 of Status
    score: np.ndarray  # (n,) float
    threshold: np.ndarray  # (n,) float
    lower: np.ndarray  # (n,) float
    upper: np.ndarray  # (n,) float
    context: list[str] | None = None
    # Early warnings (the `forecast` detector's will_cross): when the line is expected to be
    # crossed (epoch s, NaN: not within the horizon), and whether it already is (the breach is
    # then the threshold rule's: the warning resolves at once).
    crossing_at: np.ndarray | None = None
    crossed: np.ndarray | None = None

    @classmethod
    def empty(cls, n: int) -> "Scores":
        nan = np.full(n, np.nan)
        return cls(np.full(n, Status.WARMING_UP, dtype=np.int8), nan, nan.copy(), nan.copy(), nan.copy())


_STATUSES = tuple(Status)  # by value: an index, not an Enum call per verdict


def _status(k: int) -> Status:
    return _STATUSES[k] if 0 <= k < len(_STATUSES) else Status(k)  # (Status(k) raises)


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "?"
    if abs(x) >= 100 or x == int(x):
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}"
    return f"{x:.3g}"


@dataclass(frozen=True)
class Verdict:
    """The explained judgement of one point of one series, as notifications show it."""

    rule: str
    key: str
    labels: Labels
    ts: float
    value: float
    status: Status
    score: float
    threshold: float
    lower: float
    upper: float
    reason: str
    crossing_at: float = math.nan  # an early warning: when the line is expected to be crossed
    crossed: bool = False  # the line is crossed: the early warning's work is done

    @classmethod
    def from_scores(cls, rule: str, batch: Batch, scores: Scores, i: int, metric: str,
                    explain: bool = True) -> "Verdict":
        """The verdict on point `i` of a scored batch; with `explain` False its `reason` is
        left empty (the engine's normal points of open incidents: no one reads it)."""
        value = float(batch.values[i])
        lo, hi = float(scores.lower[i]), float(scores.upper[i])
        score, thr = float(scores.score[i]), float(scores.threshold[i])
        crossing = math.nan if scores.crossing_at is None else float(scores.crossing_at[i])
        crossed = scores.crossed is not None and bool(scores.crossed[i])
        reason = _reason(metric, value, lo, hi, score, thr, crossing, scores.context[i] if scores.context else "") \
            if explain else ""
        return cls(rule, batch.keys[i], batch.labels[i], float(batch.ts[i]), value,
                   _status(int(scores.status[i])), score, thr, lo, hi, reason, crossing, crossed)


def _reason(metric: str, value: float, lo: float, hi: float, score: float, thr: float, crossing: float,
            context: str) -> str:
    """A verdict's one-line reason: "orders 326, expected 89.5-116 ..., score 0.417 (threshold 0.060)"."""
    where = f" {context}" if context else ""
    if math.isfinite(lo) and math.isfinite(hi):
        sep = " to " if lo < 0 else "-"  # "expected 62-118", "expected -5 to 12"
        expected = f", expected {_fmt(lo)}{sep}{_fmt(hi)}{where}"
    elif math.isfinite(lo):
        expected = f", expected >= {_fmt(lo)}{where}"
    elif math.isfinite(hi):
        expected = f", expected <= {_fmt(hi)}{where}"
    else:
        expected = ""
    if not math.isfinite(value) and where:  # no value to show (e.g. silence): say what happened
        return f"{metric}:{where}, score {score:.3f} (threshold {thr:.3f})"
    if math.isfinite(crossing):  # an early warning: the context says when and by what
        return f"{metric} {_fmt(value)},{where}"
    return f"{metric} {_fmt(value)}{expected}, score {score:.3f} (threshold {thr:.3f})"


@dataclass
class Incident:
    """One open (or closed) problem: a rule firing for one series (one fingerprint).

    `state` is pending | firing | resolved. `flapping` is set while the series flaps (its
    fire/resolve churn is held back); `cause` is "anomaly" or "no_data" (a failed or empty
    poll under `no_data: alerting`, or "posted": an alert posted to the Alertmanager API, see
    `ends_at`). `resolution` says how it ended: "cleared", "manual",
    "series_missing", "forgotten" (an `absent` rule's series silent for longer than
    `retention`), "no_data" or "crossed" (an early warning whose line was crossed: the
    breach's own incident takes over; `crossing_at` is when the warning last expected it).
    Acknowledgement, silencing (`silenced_by`: silence ids),
    inhibition (`inhibited_by`: fingerprints of the inhibiting incidents) and the first
    notification (`notified_at`, or the reason it was `suppressed`) are kept on it too.
    """

    fingerprint: str
    rule: str
    labels: dict[str, str]
    state: str  # pending | firing | resolved
    severity: str
    started_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    count: int = 0
    last_value: float | None = None
    peak_score: float | None = None
    reason: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    ok_since: float | None = None  # first normal point while firing (for clear_for)
    id: int | None = None
    # The detector's view of the latest anomalous point, for notifications ("0.31, expected
    # >= 0.9, score 0.998 (threshold 0.5)"); None where unknown (older incidents, no range).
    expected_low: float | None = None
    expected_high: float | None = None
    score: float | None = None
    threshold: float | None = None
    flapping: bool = False
    cause: str = "anomaly"
    last_anomalous_at: float | None = None  # for keep_firing_for
    resolution: str | None = None
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    ack_comment: str | None = None
    resolved_by: str | None = None
    silenced_by: list[str] = field(default_factory=list)
    inhibited_by: list[str] = field(default_factory=list)
    notified_at: float | None = None
    suppressed: str | None = None
    # An alert posted to the Alertmanager API (cause "posted"): when it resolves unless it is
    # posted again (Alertmanager's endsAt), and the link its sender gave (generatorURL).
    ends_at: float | None = None
    generator_url: str | None = None
    # An early warning (a forecast rule's will_cross): when the line is expected to be crossed,
    # as of the latest warning verdict.
    crossing_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def as_dict(self) -> dict:
        """A plain dict (containers copied); faster than dataclasses.asdict on the hot path."""
        data = dict(self.__dict__)
        for key in _CONTAINERS:
            data[key] = type(data[key])(data[key])
        return data

    def copy(self) -> "Incident":
        """A snapshot that later changes to this incident do not reach."""
        return Incident.from_dict(self.as_dict())

    @classmethod
    def from_dict(cls, data: dict) -> "Incident":
        names = _incident_fields()
        if names.issuperset(data):
            return cls(**data)
        return cls(**{k: v for k, v in data.items() if k in names})


_CONTAINERS = ("labels", "annotations", "silenced_by", "inhibited_by")


@functools.lru_cache(maxsize=1)
def _incident_fields() -> frozenset[str]:
    return frozenset(f.name for f in fields(Incident))


@dataclass(frozen=True)
class Notification:
    """What a notifier sends: the state of one alert group for one receiver.

    `kind` says why it was sent:
    - "firing": the group has firing incidents (new ones, or a repeat after repeat_interval);
    - "resolved": every incident of the group is resolved;
    - "flapping": an incident started flapping (one notice; its churn is then held back);
    - "digest": several notices folded into one because the receiver's rate limit was
      reached (their titles are in `text`, their incidents in `incidents`).
    `incidents` carry their own state (firing, resolved, flapping, acknowledged, silenced),
    so a renderer can show each one. `idempotency_key` is stable for one state change of
    the group (group fingerprint, kind, sequence number): delivery is at-least-once, and
    receivers that accept a key (PagerDuty's dedup_key, webhooks) can drop duplicates.
    """

    receiver: str
    kind: str
    idempotency_key: str
    incidents: tuple[Incident, ...]
    title: str
    text: str
    created_at: float
    group_key: str = ""  # the alert group, as Alertmanager's groupKey
    group_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""  # where alertd's pages are (`http.external_url`): notices link there

    def as_dict(self) -> dict:
        data = {name: getattr(self, name) for name in _NOTIFICATION_FIELDS}
        data["group_labels"] = dict(self.group_labels)
        data["incidents"] = [i.as_dict() for i in self.incidents]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Notification":  # noqa: D102
        data = dict(data)
        data["incidents"] = tuple(Incident.from_dict(i) for i in data["incidents"])
        return cls(**data)


_NOTIFICATION_FIELDS = tuple(f.name for f in fields(Notification))
