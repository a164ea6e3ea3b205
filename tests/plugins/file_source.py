"""A fixture source for tests that run the real daemon as a subprocess: values from a file.

`test_file` reads a JSON list of `[name, {labels}, value]` from `path` at each poll and returns
them stamped with the daemon clock's `now()`; the test changes the file to change the data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from alertd import hookimpl
from alertd.base import Source, SourceError
from alertd.model import Sample, make_labels


class FileSource(Source):
    """Samples from a JSON file the test writes: [[name, {labels}, value], ...]."""

    type_name = "test_file"

    @dataclass(frozen=True)
    class Params:
        path: str

    async def collect(self):
        try:
            rows = json.loads(Path(self.params.path).read_text())
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot read {self.params.path}: {exc}") from None
        now = self.context.now()
        return [Sample(name, make_labels(labels), now, float(value)) for name, labels, value in rows]


@hookimpl
def register_sources(register):
    register(FileSource)
