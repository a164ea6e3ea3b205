"""The `email` notifier: sends a text and HTML email through an SMTP server, threaded per incident.

`smtplib` blocks, so every delivery runs in a worker thread (`context.run_blocking`, or
`asyncio.to_thread` outside the daemon). The password never appears in errors or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formatdate, parseaddr

from alertd import hookimpl
from alertd.base import DeliveryError, Notifier, PermanentError, RetryableError
from alertd.config.schema import Duration, Secret
from alertd.model import Notification
from alertd.render.renderer import HtmlTemplateText, Renderer, TemplateParams


class _ReplyMixin:
    """Remembers the server's answer to DATA ("250 2.0.0 Ok: queued as 4F2A1")."""

    last_reply: tuple[int, bytes] | None = None

    def data(self, msg):
        self.last_reply = super().data(msg)
        return self.last_reply


class _SMTP(_ReplyMixin, smtplib.SMTP):
    pass


class _SMTPSSL(_ReplyMixin, smtplib.SMTP_SSL):
    pass


def _address(text: str) -> str:
    return parseaddr(text)[1]


class EmailNotifier(Notifier):
    """Emails each notification to `to` via SMTP (plain, STARTTLS or implicit TLS, optional AUTH).

    The mail has a text and an HTML part rendered from templates. The first mail about an
    incident gets a Message-ID that later mails (repeats, the resolve) reference through
    In-Reply-To and References, so mail clients thread them; the Message-ID is kept in the
    store. Connection errors, timeouts and 4xx answers are retryable; 5xx answers (a rejected
    recipient or sender, failed authentication) and missing server features are permanent.
    """

    type_name = "email"

    @dataclass(frozen=True)
    class Params(TemplateParams):
        """SMTP server, TLS mode, optional login, sender, recipients, timeout, subject prefix."""

        host: str
        sender: str
        to: list[str]
        port: int = 25
        starttls: bool = False
        ssl: bool = False
        username: str | None = None
        password: Secret | None = field(default=None, repr=False)
        timeout: Duration = Duration(10)
        subject_prefix: str = "[alertd]"
        max_incidents: int = 50
        ca_file: str | None = None
        html_template: HtmlTemplateText | None = None

        def check(self):
            if self.starttls and self.ssl:
                raise ValueError("set either ssl (implicit TLS, usually port 465) or starttls "
                                 "(usually port 587), not both")
            if not 0 < self.port < 65536:
                raise ValueError(f"port {self.port} is not a TCP port; use 25, 465 or 587")
            if self.password is not None and not self.username:
                raise ValueError("password is set but username is not; set both to log in")
            if not self.to:
                raise ValueError("to lists no recipient; add at least one address")
            for addr in (self.sender, *self.to):
                if "@" not in _address(addr):
                    raise ValueError(f'"{addr}" is not an email address; write name@example.com')
            if self.timeout <= 0:
                raise ValueError("timeout must be more than 0s; write a value such as 10s")
            if self.max_incidents < 1:
                raise ValueError("max_incidents must be at least 1")
            if self.ca_file is not None and not os.path.isfile(self.ca_file):
                raise ValueError(f"ca_file {self.ca_file} does not exist; give the path of a "
                                 "PEM file with the CA certificates to trust")

    def __init__(self, params, context):
        super().__init__(params, context)
        self.renderer = Renderer(params, receiver=context.name, log=context.log,
                                 limit=params.max_incidents)
        self.scope = f"email:{context.name}:{','.join(sorted(_address(a) for a in params.to))}"
        self.domain = _address(params.sender).rpartition("@")[2] or "alertd.invalid"

    # -- message -----------------------------------------------------------------------
    def message_id(self, n: Notification) -> str:
        """Same outbox row (a retry) -> same Message-ID, so mail systems drop duplicates;
        a repeat notice has a new created_at, hence a new Message-ID."""
        digest = hashlib.sha256(f"{n.idempotency_key}|{n.created_at!r}".encode()).hexdigest()[:32]
        return f"<alertd.{digest}@{self.domain}>"

    def thread_roots(self, n: Notification) -> list[str]:
        """Message-IDs of the first mails about the notification's incidents (known ones)."""
        state = getattr(self.context.store, "notifier_state", None)
        if state is None:
            return []
        roots = [state.get(self.scope, f"{i.fingerprint}:{i.id}") for i in n.incidents]
        return list(dict.fromkeys(r for r in roots if r))

    def message(self, n: Notification) -> EmailMessage:
        """The email: subject, From/To/Date, Message-ID and thread headers, text + HTML."""
        r = self.renderer
        view = r.view(n)
        title = r.render("title", view)
        msg = EmailMessage()
        msg["Subject"] = " ".join(f"{self.params.subject_prefix} {title}".split())
        msg["From"] = self.params.sender
        msg["To"] = ", ".join(self.params.to)
        msg["Date"] = (format_datetime(datetime.fromtimestamp(n.created_at, self.renderer.tz))
                       if self.renderer.tz is not None else formatdate(n.created_at, localtime=True))
        msg["Message-ID"] = self.message_id(n)
        roots = [root for root in self.thread_roots(n) if root != msg["Message-ID"]]
        if roots:
            msg["In-Reply-To"] = roots[0]
            msg["References"] = " ".join(roots)
        msg["X-Alertd-Idempotency-Key"] = " ".join(n.idempotency_key.split())
        msg["X-Alertd-Receiver"] = " ".join(n.receiver.split())
        if view["severity"]:
            msg["X-Alertd-Severity"] = view["severity"]
        text = r.render("text", view)
        msg.set_content(f"{title}\n\n{text}\n\n-- \nsent by alertd to {n.receiver} at {view['created']}\n")
        msg.add_alternative(r.render("html", view, title=title), subtype="html")
        return msg

    def preview(self, notification: Notification) -> str:
        msg = self.message(notification)
        head = "".join(f"{k}: {v}\n" for k, v in msg.items() if k.lower() not in ("content-type", "mime-version"))
        html = msg.get_body(("html",)).get_content()
        return (f"{head}\n{msg.get_body(('plain',)).get_content().rstrip()}\n\n"
                f"[and an HTML part of {len(html)} characters]")

    def _remember(self, n: Notification, message_id: str) -> None:
        state = getattr(self.context.store, "notifier_state", None)
        if state is None:
            return
        now = self.context.now()
        for inc in n.incidents:
            key = f"{inc.fingerprint}:{inc.id}"
            if inc.state == "resolved" or inc.resolved_at is not None:
                state.delete(self.scope, key)
            elif state.get(self.scope, key) is None:
                state.put(self.scope, key, message_id, now)

    # -- delivery (in a worker thread) ---------------------------------------------------
    def _deliver(self, msg: EmailMessage) -> str:
        p = self.params
        timeout = float(p.timeout)
        context = ssl.create_default_context(cafile=p.ca_file)
        if p.ssl:
            smtp = _SMTPSSL(p.host, p.port, timeout=timeout, context=context)
        else:
            smtp = _SMTP(p.host, p.port, timeout=timeout)
        with smtp:
            if p.starttls:
                smtp.starttls(context=context)
            if p.username:
                smtp.login(p.username, str(p.password or ""))
            refused = smtp.send_message(msg, from_addr=_address(p.sender),
                                        to_addrs=[_address(a) for a in p.to])
        code, text = smtp.last_reply or (250, b"ok")
        answer = f"{code} {text.decode(errors='replace')}"
        if refused:
            answer += "; refused " + ", ".join(
                f"{addr} ({c} {r.decode(errors='replace')})" for addr, (c, r) in refused.items())
        return self._scrub(answer)

    async def send(self, notification: Notification) -> str:
        msg = self.message(notification)
        run = self.context.run_blocking or asyncio.to_thread
        try:
            answer = await run(self._deliver, msg)
        except Exception as exc:  # classified below; anything unknown is retried
            raise self._classify(exc) from None
        self._remember(notification, msg["Message-ID"])
        if "; refused " in answer and self.context.log is not None:
            self.context.log.warning("email_recipients_refused", receiver=self.context.name,
                                     answer=answer)
        return answer

    def _scrub(self, text: str) -> str:
        password = str(self.params.password or "")
        return text.replace(password, "***") if password else text

    def _classify(self, exc: Exception) -> DeliveryError:
        """Turn an smtplib / socket error into a Retryable- or PermanentError, without secrets."""
        where = f"smtp {self.params.host}:{self.params.port}"

        def make(permanent: bool, what: str) -> DeliveryError:
            cls = PermanentError if permanent else RetryableError
            return cls(self._scrub(f"{where}: {' '.join(what.split())}"))

        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            detail = ", ".join(f"{addr} ({code} {resp.decode(errors='replace')})"
                               for addr, (code, resp) in exc.recipients.items())
            return make(all(c >= 500 for c in codes), f"every recipient was refused: {detail}")
        if isinstance(exc, smtplib.SMTPResponseException):  # sender, data, auth, helo, connect
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
                else str(exc.smtp_error)
            what = {smtplib.SMTPSenderRefused: "sender refused",
                    smtplib.SMTPDataError: "message refused",
                    smtplib.SMTPAuthenticationError: "login failed",
                    smtplib.SMTPConnectError: "greeting refused",
                    smtplib.SMTPHeloError: "HELO refused"}.get(type(exc), "error")
            return make(500 <= exc.smtp_code < 600, f"{what}: {exc.smtp_code} {text}")
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return make(False, f"server disconnected: {exc}")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return make(True, f"{exc} Check starttls/ssl/username for this server")
        if isinstance(exc, smtplib.SMTPException):
            return make(True, str(exc))
        if isinstance(exc, ssl.SSLCertVerificationError):
            return make(True, f"TLS certificate not trusted: {exc.verify_message}; set ca_file "
                              "to the CA that signed the server's certificate")
        if isinstance(exc, ssl.SSLError):
            return make(True, f"TLS handshake failed: {exc.reason or exc}; check ssl (implicit "
                              "TLS, port 465) against starttls (port 587)")
        if isinstance(exc, (TimeoutError, socket.timeout)):
            return make(False, f"timed out after {self.params.timeout:g}s")
        if isinstance(exc, socket.gaierror):
            return make(False, f"cannot resolve host: {exc.strerror or exc}")
        if isinstance(exc, OSError):
            return make(False, f"cannot connect: {exc.strerror or exc}")
        return make(False, f"{type(exc).__name__}: {exc}")


@hookimpl
def register_notifiers(register):
    register(EmailNotifier)
