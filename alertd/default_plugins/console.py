"""The `console` notifier: one readable line per incident on stdout or stderr."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Literal

from alertd import hookimpl
from alertd.base import Notifier, PermanentError, RetryableError
from alertd.model import Notification
from alertd.render import tagged_lines


class ConsoleNotifier(Notifier):
    """Prints `[FIRING] rule labels: explanation (since 14:02:10)` lines to a terminal or journal.

    A resolved incident prints `[RESOLVED] rule labels: lasted 4m10s (from 14:02:10)`.
    """

    type_name = "console"

    @dataclass(frozen=True)
    class Params:
        """`stream`: where to write, stdout (default) or stderr."""

        stream: Literal["stdout", "stderr"] = "stdout"

    async def send(self, notification: Notification) -> str:
        # Looked up at send time, so a redirected sys.stdout (tests, daemons) is honoured.
        stream = sys.stderr if self.params.stream == "stderr" else sys.stdout
        lines = tagged_lines(notification)
        try:
            stream.write("".join(line + "\n" for line in lines))
            stream.flush()
        except ValueError as exc:  # the stream is closed: it will not come back
            raise PermanentError(f"cannot write to {self.params.stream}: {exc}") from None
        except OSError as exc:  # EAGAIN, a full pipe, ...
            raise RetryableError(f"cannot write to {self.params.stream}: {exc}") from None
        return f"printed {len(lines)} line{'s' if len(lines) != 1 else ''}"


@hookimpl
def register_notifiers(register):
    register(ConsoleNotifier)
