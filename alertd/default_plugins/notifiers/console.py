"""The `console` notifier: one readable line per incident on stdout or stderr.

When the daemon logs JSON lines (stdout is not a TTY, as under systemd), a notice is a log
event instead, `console_notice`, with the same lines in `lines`: a plain `[FIRING] ...`
line in the journal would stop every `journalctl ... | jq` at it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

from alertd import hookimpl
from alertd.base import Notifier, PermanentError, RetryableError
from alertd.log import json_mode
from alertd.model import Notification
from alertd.render.renderer import Renderer, TemplateParams


class ConsoleNotifier(Notifier):
    """Prints `[FIRING] rule labels: explanation (since 14:02:10 UTC, 5m ago)` lines.

    A resolved incident prints `[RESOLVED] rule labels: lasted 4m10s (from 14:02:10 UTC)`.
    `text_template` replaces the lines with a template of one's own.
    """

    type_name = "console"

    @dataclass(frozen=True)
    class Params(TemplateParams):
        """`stream`: where to write, stdout (default) or stderr."""

        stream: Literal["stdout", "stderr"] = "stdout"

    def __init__(self, params, context):
        super().__init__(params, context)
        self.renderer = Renderer(params, receiver=context.name, log=context.log, limit=0)

    def lines(self, notification: Notification) -> list[str]:
        """What `send` prints, one string per line."""
        text = self.renderer.render("text", notification, default="console")
        return [line for line in text.splitlines() if line.strip()]

    async def send(self, notification: Notification) -> str:
        lines = self.lines(notification)
        n = f"{len(lines)} line{'s' if len(lines) != 1 else ''}"
        if json_mode() and self.context.log is not None:
            self.context.log.info("console_notice", kind=notification.kind, title=notification.title,
                                  lines=lines, group=dict(notification.group_labels),
                                  incidents=[{"id": i.id, "rule": i.rule, "state": i.state, "labels": dict(i.labels)}
                                             for i in notification.incidents])
            return f"logged {n} as a console_notice event"
        # Looked up at send time, so a redirected sys.stdout (tests, daemons) is honoured.
        stream = sys.stderr if self.params.stream == "stderr" else sys.stdout
        try:
            stream.write("".join(line + "\n" for line in lines))
            stream.flush()
        except ValueError as exc:  # the stream is closed: it will not come back
            raise PermanentError(f"cannot write to {self.params.stream}: {exc}") from None
        except OSError as exc:  # EAGAIN, a full pipe, ...
            raise RetryableError(f"cannot write to {self.params.stream}: {exc}") from None
        return f"printed {n}"


@hookimpl
def register_notifiers(register):
    register(ConsoleNotifier)
