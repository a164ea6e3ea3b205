"""What a tick reuses from the last poll of a source, and a call made at most once."""

from __future__ import annotations

from ..model import Sample, series_key


class Once:
    """A call made at most once, by whichever caller comes first; `error` is what it raised."""

    def __init__(self, call):
        self.call = call
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        """Whether it was called (or is under way)."""
        return self.call is None

    def __call__(self) -> None:
        call, self.call = self.call, None
        if call is not None:
            try:
                call()
            except BaseException as exc:
                self.error = exc
                raise


def poll_keys(samples: list[Sample], last: list) -> list[str]:
    """The series key of every sample. `last` holds the names, labels and keys of the
    source's previous poll: a poll of the same series (the usual case) reuses its keys."""
    if not samples:
        return []
    names, labels, _, _ = zip(*samples)
    if last and names == last[0] and labels == last[1]:
        return last[2]
    keys = list(map(series_key, names, labels))
    last[:] = [names, labels, keys]
    return keys
