"""structlog setup: JSON lines when stdout is not a TTY, readable lines when it is.

Secrets (values of `Secret` params and their environment variables) are replaced by `***`
in every log line by the `redact` processor, whatever key they hide under.
"""

from __future__ import annotations

import logging
import sys

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


def configure(level: str = "info", json_lines: bool | None = None, stream=None) -> None:
    """Configure structlog for the process (call once at start)."""
    stream = stream or sys.stdout
    if json_lines is None:
        json_lines = not stream.isatty()
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


def get_logger(**bind):
    return structlog.get_logger("alertd").bind(**bind)
