"""The `command` source: run an executable each poll and read a number, JSON or Prometheus text.

The command is an argument list, run without a shell, in its own process group so that a
timeout kills it and everything it started. A non-zero exit status, a timeout, or output
that is not what `format` says is one `SourceError` sentence with an excerpt of stderr or
stdout.

    sources:
      queue:
        type: command
        every: 1m
        command: [/usr/local/bin/queue-depth, --queue, orders]
        format: number           # number | json | prometheus
        name: order_queue_depth
        labels: {queue: orders}
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass, field
from typing import Literal

from alertd import hookimpl, jsontext
from alertd.base import Source, SourceError
from alertd.model import Sample, make_labels
from alertd.sources.common import deadline, describe_payload, excerpt
from alertd.sources.json_map import JsonMetric, extract
from alertd.sources.promtext import ExpositionError, parse_exposition


class Command(Source):
    """Runs a command per poll (argument list, no shell) and parses its standard output."""

    type_name = "command"

    @dataclass(frozen=True)
    class Params:
        """`format: number` needs `name`; `format: json` needs `metrics` (JMESPath)."""

        command: list[str]
        format: Literal["number", "json", "prometheus"] = "number"
        name: str | None = None
        labels: dict[str, str] = field(default_factory=dict)
        metrics: list[JsonMetric] = ()
        env: dict[str, str] = field(default_factory=dict)
        cwd: str | None = None
        max_bytes: int = 1_000_000

        def check(self) -> None:
            if not self.command or not self.command[0]:
                raise ValueError("command is empty; write the program and its arguments as a list, "
                                 "e.g. [/usr/local/bin/queue-depth, --queue, orders]")
            if self.format == "number" and not self.name:
                raise ValueError('format "number" needs "name", the metric name of the number')
            if self.format == "json" and not self.metrics:
                raise ValueError('format "json" needs "metrics": [{name: ..., value: <JMESPath>}]')
            if self.format != "json" and self.metrics:
                raise ValueError('"metrics" is only used with format "json"')
            if self.max_bytes <= 0:
                raise ValueError("max_bytes must be a positive number of bytes")

    async def collect(self) -> list[Sample]:
        stdout = await self._run()
        now = self.context.now()
        text = stdout.decode("utf-8", errors="replace")
        p = self.params
        if p.format == "number":
            try:
                value = float(text.strip())
            except ValueError:
                raise SourceError(f"{self._argv0()} printed {describe_payload(stdout)}, not a number",
                                  "bad_payload") from None
            return [Sample(p.name, make_labels(p.labels), now, value)]
        if p.format == "json":
            try:
                doc = jsontext.loads(text)
            except ValueError as exc:
                raise SourceError(f"{self._argv0()} printed {describe_payload(stdout)}, not JSON ({exc})",
                                  "bad_payload") from None
            samples = extract(doc, p.metrics, now, f"the output of {self._argv0()}")
        else:
            try:
                samples = parse_exposition(text, now)
            except ExpositionError as exc:
                raise SourceError(f"{self._argv0()} printed something that is not Prometheus text: {exc}",
                                  "bad_payload") from None
        if p.labels:
            samples = [Sample(s.name, make_labels({**dict(s.labels), **p.labels}), s.ts, s.value)
                       for s in samples]
        return samples

    def _argv0(self) -> str:
        return f"the command {os.path.basename(self.params.command[0])}"

    async def _run(self) -> bytes:
        p = self.params
        limit = deadline(self.context)
        env = {**os.environ, **p.env} if p.env else None
        try:
            proc = await asyncio.create_subprocess_exec(
                *p.command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, cwd=p.cwd, start_new_session=True)
        except OSError as exc:
            raise SourceError(f"cannot run {p.command[0]}: {exc.strerror or exc}", "exec") from None
        try:
            stdout, stderr = await asyncio.wait_for(self._read(proc), limit)
        except asyncio.TimeoutError:
            raise SourceError(f"{self._argv0()} did not finish within {limit:g}s and was killed; "
                              "raise the source's timeout or make it faster", "timeout") from None
        finally:
            await _kill(proc)  # on timeout, cancellation or too much output: no orphans
        if proc.returncode != 0:
            what = f"exited with status {proc.returncode}" if proc.returncode > 0 else \
                f"was killed by signal {-proc.returncode}"
            shown = stderr.strip() or stdout.strip()
            raise SourceError(f"{self._argv0()} {what}" + (f": {excerpt(shown, 160)}" if shown else ""),
                              "exit_status")
        return stdout

    async def _read(self, proc) -> tuple[bytes, bytes]:
        limit = self.params.max_bytes
        stderr_task = asyncio.ensure_future(_drain(proc.stderr, 64 * 1024))
        try:
            stdout = await proc.stdout.read(limit + 1)
            while len(stdout) <= limit:
                more = await proc.stdout.read(limit + 1 - len(stdout))
                if not more:
                    break
                stdout += more
            if len(stdout) > limit:
                raise SourceError(f"{self._argv0()} printed more than max_bytes ({limit} bytes); "
                                  "make it print less or raise max_bytes", "too_large")
            stderr = await stderr_task
            await proc.wait()
            return stdout, stderr
        finally:
            stderr_task.cancel()


async def _drain(stream, keep: int) -> bytes:
    """Read a stream to its end (so the writer never blocks), keeping the first `keep` bytes."""
    kept = b""
    while chunk := await stream.read(65536):
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    return kept


async def _kill(proc) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 5)


@hookimpl
def register_sources(register):
    register(Command)
