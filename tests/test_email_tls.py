"""The email notifier against a real aiosmtpd server: STARTTLS, implicit TLS, AUTH, threads.

The TLS certificate is issued for 127.0.0.1 by a throw-away CA the test makes (trustme);
the notifier trusts it through `ca_file`, as an operator with an internal CA would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword
from servers import RecordingSMTPServer

from alertd.base import PermanentError, PluginContext
from alertd.config.schema import ConfigError, parse_params
from alertd.default_plugins.notifiers.email_smtp import EmailNotifier
from alertd.render.renderer import SAMPLE_T0, sample_notification
from alertd.store import Store

USER, PASSWORD = "alertd", "hunter2-s3cr3t"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1", "localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return server_ctx, str(path)


class Logins:
    """An aiosmtpd authenticator that accepts one user and records every attempt."""

    def __init__(self):
        self.attempts = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.attempts.append((mechanism, login, tls))
        return AuthResult(success=(login, password) == (USER, PASSWORD), handled=False)


def notifier(port, store=None, **params) -> EmailNotifier:
    values = {"host": "127.0.0.1", "port": port, "sender": "alertd <alertd@shop.example>",
              "to": ["oncall@shop.example", "payments@shop.example"], "timezone": "UTC", **params}
    p = parse_params(EmailNotifier.Params, values)
    return EmailNotifier(p, PluginContext("oncall", lambda: SAMPLE_T0, store=store))


def send(n, *notices):
    return asyncio.run(_send(n, notices))


async def _send(n, notices):
    return [await n.send(x) for x in notices]


def test_starttls_with_login_delivers_a_multipart_mail_to_every_recipient(ca):
    server_ctx, ca_file = ca
    logins = Logins()
    with RecordingSMTPServer(tls_context=server_ctx, require_starttls=True, authenticator=logins,
                             auth_required=True, auth_require_tls=True) as smtp:
        answers = send(notifier(smtp.port, starttls=True, username=USER, password=PASSWORD,
                                ca_file=ca_file), sample_notification("firing"))
    assert answers[0].startswith("250 ")
    assert logins.attempts and logins.attempts[-1][1:] == (USER, True)  # after STARTTLS
    (envelope,) = smtp.envelopes
    assert envelope.rcpt_tos == ["oncall@shop.example", "payments@shop.example"]
    msg = envelope.message
    assert msg["Subject"] == "[alertd] [FIRING] payment_success_drop provider=adyen region=eu"
    assert msg.get_content_type() == "multipart/alternative"
    assert "Value:      0.31 (expected >= 0.9)" in msg.get_body(("plain",)).get_content()
    assert "<b>0.31</b> (expected &gt;= 0.9)" in msg.get_body(("html",)).get_content()
    assert PASSWORD.encode() not in envelope.raw


def test_a_wrong_password_is_permanent_and_never_shown(ca):
    server_ctx, ca_file = ca
    with RecordingSMTPServer(tls_context=server_ctx, require_starttls=True, authenticator=Logins(),
                             auth_required=True) as smtp:
        with pytest.raises(PermanentError, match="login failed: 535") as exc:
            send(notifier(smtp.port, starttls=True, username=USER, password="wrong-s3cr3t",
                          ca_file=ca_file), sample_notification("firing"))
    assert "wrong-s3cr3t" not in str(exc.value) and smtp.envelopes == []


def test_an_untrusted_certificate_is_permanent_with_a_hint(ca):
    server_ctx, _ = ca
    with RecordingSMTPServer(tls_context=server_ctx, require_starttls=True) as smtp:
        with pytest.raises(PermanentError, match="TLS certificate not trusted.*set ca_file"):
            send(notifier(smtp.port, starttls=True), sample_notification("firing"))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_implicit_tls(ca):
    server_ctx, ca_file = ca
    logins = Logins()
    # aiosmtpd advertises AUTH over implicit TLS only with auth_require_tls off (it counts
    # only STARTTLS as TLS); the connection is TLS from the first byte all the same.
    with RecordingSMTPServer(ssl_context=server_ctx, authenticator=logins, auth_required=True,
                             auth_require_tls=False) as smtp:
        answers = send(notifier(smtp.port, ssl=True, username=USER, password=PASSWORD,
                                ca_file=ca_file), sample_notification("firing"))
    assert answers[0].startswith("250 ") and len(smtp.envelopes) == 1
    assert logins.attempts[-1][1:] == (USER, True)


def test_later_mails_thread_under_the_first_one(smtp_server_threads):
    smtp, store = smtp_server_threads
    firing, repeat, resolved = (sample_notification("firing"),
                                sample_notification("firing"), sample_notification("resolved"))
    repeat = dataclasses.replace(repeat, idempotency_key="repeat", created_at=SAMPLE_T0 + 3600)
    send(notifier(smtp.port, store), firing, repeat, resolved)
    first, second, third = smtp.messages
    root = first["Message-ID"]
    assert first["In-Reply-To"] is None and first["References"] is None
    assert second["In-Reply-To"] == root == third["In-Reply-To"]
    assert third["References"] == root and third["Message-ID"] not in (root, second["Message-ID"])
    assert third["Subject"] == "[alertd] [RESOLVED] payment_success_drop provider=adyen region=eu"
    assert store.notifier_state.get(notifier(smtp.port).scope, "sample0000000000:17") is None


def test_a_group_resolve_references_every_first_mail(smtp_server_threads):
    smtp, store = smtp_server_threads
    one = sample_notification("firing")
    send(notifier(smtp.port, store), one, sample_notification("resolved", group=True))
    first, group = smtp.messages
    assert group["In-Reply-To"] == first["Message-ID"] == group["References"]


@pytest.fixture
def smtp_server_threads():
    with RecordingSMTPServer() as smtp:
        yield smtp, Store()


@pytest.mark.parametrize("params, message", [
    ({"ca_file": "/nonexistent/ca.pem"}, "ca_file /nonexistent/ca.pem does not exist"),
    ({"to": []}, "to lists no recipient"),
    ({"html_template": "{% for %}"}, "html_template: the template does not compile"),
])
def test_params_are_checked(params, message):
    values = {"host": "mail", "sender": "a@shop.example", "to": ["b@shop.example"], **params}
    with pytest.raises(ConfigError, match=message):
        parse_params(EmailNotifier.Params, values)
