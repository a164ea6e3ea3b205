"""Example site plugin: a `disk_space` source reporting free space per mount point.

This file is a complete alertd plugin and a short guide to writing one. alertd loads every
`*.py` file in the directories listed under `plugin_dirs:` in alertd.yaml (default
`plugins/`), exactly like the built-in plugins in `alertd/default_plugins/`.

1. Subclass a base class (everything comes from `alertd`, one import): `Source` (collects
   samples), `Detector` (scores a batch of series) or `Notifier` (delivers notifications;
   `HttpNotifier` for one that POSTs).
2. Give it a `type_name` (what users write as `type:` in the YAML) and a frozen dataclass
   `Params`. alertd validates the user's YAML against `Params` before anything starts, with
   the same errors as its own keys: unknown key (with a suggestion), wrong type, bad
   duration. Use `alertd.Duration` for durations and `Secret` for secrets (they are
   redacted in logs and `alertd validate`). An optional `check()` method raises
   `ValueError("one clear sentence")` for rules spanning several fields.
3. Implement the work: `async collect()` for a source, returning `alertd.Sample`s.
   Blocking calls belong in a thread: `await self.context.run_blocking(func, *args)`.
4. Register it with a hookimpl, as below. `alertd plugins` then lists it with this file as
   its origin, and `alertd validate` checks its parameters.

Test it with `alertd.testing` (`collect_once(DiskSpace, {"paths": ["/"]})`; see
docs/plugins.md). To ship a plugin as a package instead, declare an entry point in its
pyproject.toml:

    [project.entry-points.alertd]
    disk_space = "my_package.disk_space"
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from alertd import Sample, Source, SourceError, hookimpl, make_labels


class DiskSpace(Source):
    """Reports `disk_free_ratio{path}` (0..1) and `disk_free_bytes{path}` for each path."""

    type_name = "disk_space"

    @dataclass(frozen=True)
    class Params:
        paths: list[str] = ("/",)

        def check(self):
            if not self.paths:
                raise ValueError("paths is empty; list at least one mount point such as /")

    async def collect(self) -> list[Sample]:
        now = self.context.now()
        samples = []
        for path in self.params.paths:
            try:
                usage = await self.context.run_blocking(shutil.disk_usage, path)
            except OSError as exc:
                raise SourceError(f"cannot read disk usage of {path}: {exc.strerror}") from None
            labels = make_labels({"path": path})
            samples.append(Sample("disk_free_ratio", labels, now, usage.free / usage.total))
            samples.append(Sample("disk_free_bytes", labels, now, float(usage.free)))
        return samples


@hookimpl
def register_sources(register):
    register(DiskSpace)
