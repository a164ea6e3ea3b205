"""Rendering notifications with Jinja2 templates in a sandbox.

The default templates are files in `alertd/render/templates/` (title, plain text, email HTML, Slack
mrkdwn, console lines, one-line summary). A receiver may override the title, text and (email)
HTML templates with its own Jinja2 text (`title_template`, `text_template`, `html_template`),
checked when the config is loaded: a template that does not compile, or fails on a sample
incident, is a config error naming the receiver and the line. At run time a failing override
is logged and the default template is used instead, so a notice always goes out.

Templates run in Jinja2's immutable sandbox and get the data of `alertd.render.view` as variables:
label values and annotations are data, never template code. A receiver's own templates are
also bounded in time, memory and size (`alertd.render.guard`): one that loops or allocates
without end is a config error when it does so on the sample incidents, and at run time is
replaced by the default template until the next reload. Three flavours escape data for
where it goes: "text" (nothing), "html" (HTML autoescape) and "slack" (`&`, `<`, `>` as
Slack's mrkdwn wants them, so a label value cannot mention @channel or fake a link).
"""

from __future__ import annotations

import re
import shlex
import traceback
import zoneinfo
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from jinja2 import ChainableUndefined, FileSystemLoader, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..durations import format_duration
from ..model import Incident, Notification
from .guard import BoundedSandbox, RenderLimit, bounded
from .view import fmt_expected, fmt_iso, fmt_number, fmt_time, notification_view

TEMPLATE_DIR = Path(__file__).parent / "templates"
DEFAULTS = {  # name -> (file, flavour)
    "title": ("title.j2", "text"),
    "text": ("text.j2", "text"),
    "html": ("email.html.j2", "html"),
    "slack": ("slack_incident.j2", "slack"),
    "slack_footer": ("slack_footer.j2", "slack"),
    "console": ("console.j2", "text"),
    "summary": ("summary.j2", "text"),
}


def mrkdwn_escape(text) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _duration(seconds) -> str:
    try:
        return format_duration(float(seconds))
    except (TypeError, ValueError):
        return ""


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, where reaching for an unsafe attribute (`__class__`,
    `_private`, a function's globals) is an error at once. Jinja's own sandbox only returns
    an undefined value there, which a lenient template prints as nothing: the escape fails,
    but silently, and the author never learns why."""

    def unsafe_undefined(self, obj, attribute):
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is "
                            "unsafe (templates see only incident data)")


class _BoundedSandbox(BoundedSandbox, _Sandbox):
    """The sandbox for receivers' own templates: with the size checks of alertd.render.guard."""


def _make_env(escaped: bool, limits: bool = False) -> ImmutableSandboxedEnvironment:
    env = (_BoundedSandbox if limits else _Sandbox)(
        loader=FileSystemLoader(TEMPLATE_DIR), autoescape=escaped, undefined=ChainableUndefined,
        trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(num=fmt_number, duration=_duration, shell_quote=shlex.quote,
                       mrkdwn=mrkdwn_escape, iso=fmt_iso, expected=fmt_expected)
    if limits:
        env.bound()
    return env


_ENVS = {"text": _make_env(False), "html": _make_env(True)}
_ENVS["slack"] = _ENVS["html"]  # HTML-escaped, then quotes restored (see `_finish`)
_USER_ENVS = {"text": _make_env(False, limits=True), "html": _make_env(True, limits=True)}
_USER_ENVS["slack"] = _USER_ENVS["html"]


def _env(flavour: str) -> ImmutableSandboxedEnvironment:
    return _ENVS[flavour]


def _user_env(flavour: str) -> ImmutableSandboxedEnvironment:
    """The environment of a receiver's own templates (bounded, see alertd.render.guard)."""
    return _USER_ENVS[flavour]


def _finish(text: str, flavour: str, one_line: bool = False) -> str:
    """Tidy a rendered template: one line for titles, no trailing blanks, at most one empty line."""
    if flavour == "slack":  # markupsafe escapes quotes too; Slack shows them literally
        text = text.replace("&#34;", '"').replace("&#39;", "'")
    if one_line:
        return " ".join(text.split())
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def _template_line(exc: BaseException) -> int | None:
    """The template line a rendering error happened on, from Jinja's rewritten traceback."""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<template>":
            return frame.lineno
    return None


def describe_error(exc: BaseException) -> str:
    """`line 2: unexpected '}'` for a template error, without Jinja's internals."""
    line = exc.lineno if isinstance(exc, TemplateSyntaxError) else _template_line(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    if not isinstance(exc, (TemplateSyntaxError, RenderLimit)) and type(exc).__module__ != "jinja2.exceptions":
        message = f"{type(exc).__name__}: {message}"
    return f"template line {line}: {message}" if line else message


# -- config types -----------------------------------------------------------------------------
class TemplateText(str):
    """A receiver's own Jinja2 template, checked when the config is loaded."""

    description = "a Jinja2 template (text)"
    flavour = "text"

    @classmethod
    def from_config(cls, value) -> "TemplateText":
        if not isinstance(value, str):
            raise ValueError(f"expected a Jinja2 template as text, got {type(value).__name__}")
        try:
            template = _user_env(cls.flavour).from_string(value)
        except TemplateSyntaxError as exc:
            raise ValueError(f"the template does not compile ({describe_error(exc)}); fix the "
                             "Jinja2 syntax (docs/notifications.md lists the variables)") from None
        for sample in (sample_notification("firing"), sample_notification("resolved"),
                       sample_notification("firing", group=True)):
            try:
                with bounded():
                    template.render(notification_view(sample, zoneinfo.ZoneInfo("UTC"), 20))
            except UndefinedError:
                continue  # a label the sample lacks; real incidents may have it
            except Exception as exc:
                raise ValueError(f"the template fails on a sample incident ({describe_error(exc)}); "
                                 "fix it (docs/notifications.md lists the variables)") from None
        return cls(value)


class HtmlTemplateText(TemplateText):
    """A receiver's own Jinja2 template for HTML (values are HTML-escaped)."""

    description = "a Jinja2 template (HTML)"
    flavour = "html"


class TimeZoneName(str):
    """An IANA time zone name such as `Europe/Berlin` or `UTC`."""

    description = "a time zone name such as UTC or Europe/Berlin"

    @classmethod
    def from_config(cls, value) -> "TimeZoneName":
        try:
            zoneinfo.ZoneInfo(str(value))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'"{value}" is not a time zone; write an IANA name such as UTC or '
                             "Europe/Berlin") from None
        return cls(value)


@dataclass(frozen=True, kw_only=True)
class TemplateParams:
    """Parameters shared by the notifiers that render text: template overrides and time zone.

    `title_template` and `text_template` replace the default title and body (Jinja2, with
    the variables of docs/notifications.md); `timezone` is how times are shown (default:
    the host's local time zone).
    """

    title_template: TemplateText | None = None
    text_template: TemplateText | None = None
    timezone: TimeZoneName | None = None


# -- rendering --------------------------------------------------------------------------------
class Renderer:
    """Renders one receiver's notifications: its overrides first, the defaults as fallback.

    `text_flavour` is how the `text` override escapes data ("slack" for Slack); `limit` caps
    how many incidents a grouped notice lists before "+N more".
    """

    def __init__(self, params=None, *, receiver: str = "", log=None, text_flavour: str = "text",
                 limit: int = 20):
        self.receiver, self.log, self.limit = receiver, log, limit
        tz_name = getattr(params, "timezone", None)
        self.tz: tzinfo | None = zoneinfo.ZoneInfo(tz_name) if tz_name else None
        self.overrides = {}
        for name, flavour in (("title", "text"), ("text", text_flavour), ("html", "html")):
            source = getattr(params, f"{name}_template", None)
            if source:
                try:
                    self.overrides[name] = (_user_env(flavour).from_string(source), flavour)
                except TemplateSyntaxError as exc:  # checked at load; only if built by hand
                    self._fallback(name, exc)

    def view(self, n: Notification) -> dict:
        """The template variables of `n` (see `alertd.render.view`)."""
        return notification_view(n, self.tz, self.limit)

    def has_override(self, name: str) -> bool:
        return name in self.overrides

    def render(self, name: str, n: Notification | dict, *, default: str | None = None, **extra) -> str:
        """Render template `name` (an override if the receiver has one, else `default` or the
        built-in file of that name) with the view of `n` plus `extra` variables."""
        view = n if isinstance(n, dict) else self.view(n)
        variables = {**view, **extra}
        one_line = name in ("title", "summary")
        if name in self.overrides:
            template, flavour = self.overrides[name]
            try:
                with bounded():
                    return _finish(template.render(variables), flavour, one_line)
            except RenderLimit as exc:  # it will do it again: not on every notice (it holds the loop)
                self.overrides.pop(name, None)
                self._fallback(name, exc, until="the next reload")
            except Exception as exc:
                self._fallback(name, exc)
        return self.render_default(default or name, variables)

    def render_default(self, name: str, variables: dict) -> str:
        """Render the built-in template `name` (no override)."""
        file, flavour = DEFAULTS[name]
        return _finish(_env(flavour).get_template(file).render(variables), flavour,
                       name in ("title", "summary"))

    def title(self, n) -> str:
        return self.render("title", n)

    def text(self, n) -> str:
        return self.render("text", n)

    def _fallback(self, name: str, exc: Exception, until: str = "") -> None:
        log = self.log
        if log is None:
            from ..log import get_logger

            log = get_logger()
        log.warning("template_failed", receiver=self.receiver, template=f"{name}_template",
                    error=describe_error(exc),
                    using="the default template" + (f" until {until}" if until else ""))


# -- samples (notify-test, validation, docs) --------------------------------------------------
SAMPLE_T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def sample_incident(n: int = 0, *, state: str = "firing", t0: float = SAMPLE_T0,
                    test: bool = False) -> Incident:
    """A payment provider outage as alertd would report it; `n` picks the provider."""
    provider = ("adyen", "stripe", "paypal", "klarna", "mollie")[n % 5]
    summary = f"Payment success 0.31 at {provider}"
    if test:
        summary = "Test notification from alertd notify-test; nothing is wrong"
    resolved = state == "resolved"
    return Incident(
        fingerprint=f"sample{n:010d}", rule="alertd_notify_test" if test else "payment_success_drop",
        labels={"provider": provider, "region": "eu"}, state=state, severity="critical",
        started_at=t0 - 300 - 60 * n, fired_at=t0 - 60 - 60 * n,
        resolved_at=t0 - 10 if resolved else None, resolution="cleared" if resolved else None, count=12 + n,
        last_value=0.97 if resolved else round(0.31 + 0.02 * n, 2), peak_score=0.999,
        reason=f"payment_success_ratio {0.31 + 0.02 * n:.2f}, expected >= 0.9, score 0.999 "
               "(threshold 0.5)",
        annotations={"summary": summary,
                     "runbook_url": "https://runbooks.example.com/payments/provider-down",
                     "dashboard_url": f"https://grafana.example.com/d/payments?var-provider={provider}"},
        id=17 + n, expected_low=0.9, expected_high=None, score=0.999 - 0.001 * n, threshold=0.5)


def sample_notification(kind: str = "firing", *, group: bool = False, receiver: str = "oncall",
                        now: float = SAMPLE_T0, test: bool = False, external_url: str = "") -> Notification:
    """A notification of the sample incident (or a group of three) at time `now`."""
    state = "resolved" if kind == "resolved" else "firing"
    incidents = tuple(sample_incident(i, state=state, t0=now, test=test)
                      for i in range(3 if group else 1))
    key = f"{incidents[0].fingerprint}:{incidents[0].id}:{kind}" + (":group" if group else "")
    return Notification(receiver, kind, key, incidents, "", "", now, external_url=external_url)


def plain_text(n: Notification, renderer: Renderer | None = None) -> str:
    """Title, a blank line, then the body: what a plain-text integration shows."""
    renderer = renderer or Renderer()
    return f"{renderer.title(n)}\n\n{renderer.text(n)}"


__all__ = ["Renderer", "TemplateParams", "TemplateText", "HtmlTemplateText", "TimeZoneName",
           "mrkdwn_escape", "plain_text", "sample_incident", "sample_notification", "fmt_time"]
