"""The `email` notifier: sends a text (plus simple HTML) email through an SMTP server.

`smtplib` blocks, so every delivery runs in a worker thread (`context.run_blocking`, or
`asyncio.to_thread` outside the daemon). The password never appears in errors or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from alertd import hookimpl
from alertd.base import DeliveryError, Notifier, PermanentError, RetryableError
from alertd.model import Notification
from alertd.render import body_lines, title
from alertd.schema import Duration, Secret


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


def _html(head: str, lines: list[str]) -> str:
    """A minimal HTML alternative: headline, then each line; indented lines as a list."""
    parts, in_list = [f"<html><body><h3>{html.escape(head)}</h3>"], False
    for line in lines:
        indented = line.startswith("  ")
        if indented != in_list:
            parts.append("<ul>" if indented else "</ul>")
            in_list = indented
        if indented:
            parts.append(f"<li>{html.escape(line.strip())}</li>")
        elif line:
            parts.append(f"<p><b>{html.escape(line)}</b></p>")
    parts.append("</ul>" if in_list else "")
    parts.append('<p style="color:#888">sent by alertd</p></body></html>')
    return "".join(parts)


class EmailNotifier(Notifier):
    """Emails each notification to `to` via SMTP (plain, STARTTLS or implicit TLS, optional AUTH).

    Connection errors, timeouts and 4xx answers are retryable; 5xx answers (a rejected
    recipient or sender, failed authentication) and missing server features are permanent.
    """

    type_name = "email"

    @dataclass(frozen=True)
    class Params:
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

    # -- message -----------------------------------------------------------------------
    def message(self, n: Notification) -> EmailMessage:
        """The email: subject, From/To/Date, a Message-ID stable across retries, text + HTML."""
        head = title(n)
        lines = body_lines(n)
        msg = EmailMessage()
        msg["Subject"] = " ".join(f"{self.params.subject_prefix} {head}".split())
        msg["From"] = self.params.sender
        msg["To"] = ", ".join(self.params.to)
        msg["Date"] = formatdate(n.created_at, localtime=True)
        domain = _address(self.params.sender).rpartition("@")[2] or "alertd.invalid"
        # Same outbox row (retry) -> same Message-ID, so mail systems can drop duplicates;
        # a repeat notice has a new created_at, hence a new Message-ID.
        digest = hashlib.sha256(f"{n.idempotency_key}|{n.created_at!r}".encode()).hexdigest()[:32]
        msg["Message-ID"] = f"<alertd.{digest}@{domain}>"
        msg["X-Alertd-Idempotency-Key"] = " ".join(n.idempotency_key.split())
        msg["X-Alertd-Receiver"] = " ".join(n.receiver.split())
        msg.set_content("\n".join(lines) + "\n\n-- \nsent by alertd\n")
        msg.add_alternative(_html(head, lines), subtype="html")
        return msg

    # -- delivery (in a worker thread) ---------------------------------------------------
    def _deliver(self, msg: EmailMessage) -> str:
        p = self.params
        timeout = float(p.timeout)
        if p.ssl:
            smtp = _SMTPSSL(p.host, p.port, timeout=timeout, context=ssl.create_default_context())
        else:
            smtp = _SMTP(p.host, p.port, timeout=timeout)
        with smtp:
            if p.starttls:
                smtp.starttls(context=ssl.create_default_context())
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
            return make(True, f"TLS certificate not trusted: {exc.verify_message}")
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
