"""The `command` notifier: automated response by running a program of the site's own.

The program is started from an argument list (no shell), in a session of its own, with the
notification as JSON on stdin (alertd's webhook format) and as `ALERTD_*` environment
variables; its exit code is the delivery outcome: 0 delivered, a code in
`retry_exit_codes` (default 75, EX_TEMPFAIL) retried later, anything else failed for good.
A program still running at `timeout` is killed with its whole process group (SIGTERM, then
SIGKILL after `kill_grace`) and recorded as failed.

The daemon's environment is not passed on, except the variables named in `pass_env`
(PATH, HOME, LANG, ... by default) and those set in `env`: a remediation script does not
see alertd's secrets unless it is given them.

Of what the program writes on stdout and stderr, alertd keeps the last `KEEP` bytes of each
(for the outcome it records) and reads and drops the rest, so a chatty program cannot fill
alertd's memory (2.5 GB in 5 s once) nor stall on a full pipe.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import signal
from dataclasses import dataclass, field

from alertd import hookimpl
from alertd.base import Notifier, PermanentError, RetryableError
from alertd.config.schema import Duration
from alertd.model import Incident, Notification
from alertd.render.renderer import Renderer, TemplateParams
from alertd.render.view import status_of

from ...render.payloads import alertd_payload

DEFAULT_PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR")
KEEP = 64 * 1024  # bytes of a program's stdout (and of its stderr) kept: the tail
_NOT_NAME = re.compile(r"[^A-Z0-9_]")


def _tail(data: bytes, limit: int = 300) -> str:
    text = " ".join(data.decode(errors="replace").split())
    return text if len(text) <= limit else "…" + text[-limit:]


def env_name(label: str) -> str:
    return _NOT_NAME.sub("_", label.upper())


def _clean(value) -> str:
    return "" if value is None else str(value).replace("\0", "")


class CommandNotifier(Notifier):
    """Runs `command` for each notification (or each incident, with `per_incident`)."""

    type_name = "command"

    @dataclass(frozen=True)
    class Params(TemplateParams):
        """`command` (argument list), `timeout`, `env`, `pass_env`, `cwd`, `kinds`, ..."""

        command: list[str]
        timeout: Duration = Duration(30)
        kill_grace: Duration = Duration(5)
        env: dict[str, str] = field(default_factory=dict)
        pass_env: list[str] = DEFAULT_PASS_ENV
        cwd: str | None = None
        kinds: list[str] = ()
        per_incident: bool = False
        retry_exit_codes: list[int] = (75,)

        def check(self):
            if not self.command or not self.command[0]:
                raise ValueError("command is empty; give the program and its arguments as a "
                                 'list, e.g. ["/usr/local/bin/pause-promotion", "--reason", "alert"]')
            program = self.command[0]
            if os.sep in program:
                if not (os.path.isfile(program) and os.access(program, os.X_OK)):
                    raise ValueError(f"{program} is not an executable file; check the path and "
                                     "its permissions (chmod +x)")
            elif shutil.which(program) is None:
                raise ValueError(f'the program "{program}" is not found on PATH; give its full path')
            if self.cwd is not None and not os.path.isdir(self.cwd):
                raise ValueError(f"cwd {self.cwd} is not a directory")
            if self.timeout <= 0 or self.kill_grace < 0:
                raise ValueError("timeout must be more than 0s and kill_grace 0s or more")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.renderer = Renderer(params, receiver=context.name, log=context.log, limit=0)
        self.program = os.path.basename(params.command[0]) if params.command else "?"

    # -- what the program gets --------------------------------------------------------------
    def stdin(self, n: Notification) -> bytes:
        view = self.renderer.view(n)
        body = alertd_payload(n, view, self.renderer.render("title", view),
                              self.renderer.render("text", view))
        return json.dumps(body, ensure_ascii=False, indent=2).encode() + b"\n"

    def environment(self, n: Notification, title: str) -> dict[str, str]:
        env = {k: os.environ[k] for k in self.params.pass_env if k in os.environ}
        env.update(self.params.env)
        first: Incident | None = n.incidents[0] if n.incidents else None
        env.update({
            "ALERTD_KIND": n.kind, "ALERTD_RECEIVER": n.receiver,
            "ALERTD_IDEMPOTENCY_KEY": n.idempotency_key, "ALERTD_TITLE": title,
            "ALERTD_INCIDENT_COUNT": str(len(n.incidents)),
        })
        if first is not None:
            env.update({
                "ALERTD_RULE": first.rule, "ALERTD_SEVERITY": first.severity,
                "ALERTD_STATUS": status_of(first, n.kind), "ALERTD_FINGERPRINT": first.fingerprint,
                "ALERTD_INCIDENT_ID": _clean(first.id), "ALERTD_VALUE": _clean(first.last_value),
                "ALERTD_STARTED_AT": _clean(first.started_at),
                "ALERTD_RESOLVED_AT": _clean(first.resolved_at), "ALERTD_REASON": first.reason,
            })
            for key, value in first.labels.items():
                env[f"ALERTD_LABEL_{env_name(key)}"] = value
            for key, value in first.annotations.items():
                env[f"ALERTD_ANNOTATION_{env_name(key)}"] = value
        return {k: _clean(v) for k, v in env.items()}

    def preview(self, notification: Notification) -> str:
        env = self.environment(notification, self.renderer.render("title", notification))
        shown = "".join(f"{k}={v}\n" for k, v in sorted(env.items()) if k.startswith("ALERTD_"))
        return (f"run {json.dumps(list(self.params.command))} (timeout {self.params.timeout:g}s)\n"
                f"{shown}stdin:\n{self.stdin(notification).decode()}")

    # -- running ------------------------------------------------------------------------------
    async def send(self, notification: Notification) -> str:
        if self.params.kinds and notification.kind not in self.params.kinds:
            return f"skipped: {notification.kind} is not in kinds"
        if self.params.per_incident and len(notification.incidents) > 1:
            answers = [await self._run_one(dataclasses.replace(notification, incidents=(inc,)))
                       for inc in notification.incidents]
            return "; ".join(answers)
        return await self._run_one(notification)

    async def _run_one(self, n: Notification) -> str:
        p = self.params
        env = self.environment(n, self.renderer.render("title", n))
        try:
            proc = await asyncio.create_subprocess_exec(
                *p.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env, cwd=p.cwd, start_new_session=True)
        except OSError as exc:
            raise PermanentError(f"command {self.program} cannot be started: "
                                 f"{exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(_communicate(proc, self.stdin(n)), float(p.timeout))
        except asyncio.TimeoutError:
            await self._kill(proc)
            raise PermanentError(f"command {self.program} did not finish within {p.timeout:g}s "
                                 "and was killed") from None
        code = proc.returncode
        if code == 0:
            lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
            return "exit 0" + (f": {lines[-1].strip()[:200]}" if lines else "")
        detail = _tail(err) or _tail(out)
        if code < 0:
            message = f"command {self.program} was killed by signal {-code}"
        else:
            message = f"command {self.program} exited with {code}"
        message += f": {detail}" if detail else ""
        if code in p.retry_exit_codes:
            raise RetryableError(message)
        raise PermanentError(message)

    async def _kill(self, proc) -> None:
        """Stop the program and everything it started: SIGTERM, then SIGKILL."""
        for sig, wait in ((signal.SIGTERM, float(self.params.kill_grace)), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), wait)
                break
            except asyncio.TimeoutError:
                continue
        if self.context.log is not None:
            self.context.log.warning("command_killed", receiver=self.context.name,
                                     program=self.program, timeout=float(self.params.timeout))


async def _read_tail(stream, keep: int = KEEP) -> bytes:
    """Read `stream` to its end; the last `keep` bytes of it."""
    tail = bytearray()
    while chunk := await stream.read(65536):
        tail += chunk
        if len(tail) > keep:
            del tail[:len(tail) - keep]
    return bytes(tail)


async def _communicate(proc, data: bytes) -> tuple[bytes, bytes]:
    """Like `proc.communicate(data)`, keeping only the tails of stdout and stderr."""
    async def feed():
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the program did not read its stdin: its exit code tells the rest
        finally:
            proc.stdin.close()
    _, out, err = await asyncio.gather(feed(), _read_tail(proc.stdout), _read_tail(proc.stderr))
    await proc.wait()
    return out, err


@hookimpl
def register_notifiers(register):
    register(CommandNotifier)
