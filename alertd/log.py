"""structlog setup: JSON lines when stdout is not a TTY, readable lines when it is.

Secrets (values of `Secret` params and their environment variables) are replaced by `***`
in every log line by the `redact` processor, whatever key they hide under.

In JSON mode nothing else may print a plain line into the journal, or `journalctl ... | jq`
stops at it: records of the standard `logging` module (APScheduler, asyncio, libraries),
Python warnings, and exceptions nobody caught (in the main thread or any other) become
JSON events too, with the traceback as a field (`exception`) of the event.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
import warnings

import structlog

_SECRETS: set[str] = set()


def add_secrets(values) -> None:
    """Remember secret values so no log line ever shows them."""
    _SECRETS.update(v for v in values if v and len(v) >= 4)


def redact_text(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


def _redact(_, __, event_dict):
    if not _SECRETS:
        return event_dict
    return {k: redact_text(v) if isinstance(v, str) else v for k, v in event_dict.items()}


_STATE = {"json": False}


def json_mode() -> bool:
    """Whether log lines are JSON (set by `configure`)."""
    return _STATE["json"]


class _ToStructlog(logging.Handler):
    """Standard `logging` records as structlog events (JSON lines like every other)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = {"logger": record.name}
            if record.exc_info and record.exc_info[0] is not None:
                fields["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            level = record.levelname.lower() if record.levelname.lower() in _LEVELS else "warning"
            getattr(structlog.get_logger("alertd"), level)(record.getMessage(), **fields)
        except Exception:  # a log line must never take the caller down
            self.handleError(record)


_LEVELS = ("debug", "info", "warning", "error", "critical")


def _uncaught(exc_type, exc, tb, thread: str | None = None) -> None:
    structlog.get_logger("alertd").critical(
        "uncaught_exception", error=f"{exc_type.__name__}: {exc}", thread=thread,
        exception="".join(traceback.format_exception(exc_type, exc, tb)).rstrip())


def _uncaught_in_thread(args) -> None:
    if args.exc_type is SystemExit:
        return
    _uncaught(args.exc_type, args.exc_value, args.exc_traceback, getattr(args.thread, "name", None))


def _route_the_rest(level: int) -> None:
    """Send logging, warnings and uncaught exceptions through structlog."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ToStructlog)]:
        root.removeHandler(handler)
    root.addHandler(_ToStructlog())
    # libraries' info chatter ("Running job ...", each second) stays out, as it did before
    root.setLevel(max(level, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn -> the "py.warnings" logger -> a JSON event
    warnings.simplefilter("default")
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread


def configure(level: str = "info", json_lines: bool | None = None, stream=None) -> None:
    """Configure structlog for the process (call once at start)."""
    stream = stream or sys.stdout
    if json_lines is None:
        json_lines = not stream.isatty()
    _STATE["json"] = bool(json_lines)
    renderer = (structlog.processors.JSONRenderer() if json_lines
                else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    if json_lines:
        _route_the_rest(getattr(logging, level.upper(), logging.INFO))


def json_error(event: str, error: str, **fields) -> None:
    """A fatal error of a command as one JSON line on stderr (before or without `configure`):
    under systemd, `alertd run`'s last words must be JSON like the rest of its journal."""
    import json
    import time as _time

    record = {"error": redact_text(error), **fields, "event": event, "level": "error",
              "timestamp": _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime()) + "Z"}
    if "problems" in record:
        record["problems"] = [redact_text(str(p)) for p in record["problems"]]
    print(json.dumps(record), file=sys.stderr, flush=True)


def get_logger(**bind):
    return structlog.get_logger("alertd").bind(**bind)
