"""Signed session cookies and CSRF tokens for the pages.

A session is a cookie the server can check without storing it: JSON (user, login method,
expiry, a random id, a fingerprint of the credential used) in base64url, a dot, and its
HMAC-SHA256 under a key of 32 random bytes kept in the store (`kv` table, made on first use),
so sessions survive a restart. The cookie is `HttpOnly`, `SameSite=Strict`, `Path=/`, and
`Secure` when `http.cookie_secure` says so (behind TLS). Changing the API token ends every
session made with it (the credential's fingerprint no longer matches).

Every form that changes something carries a CSRF token: the HMAC of the session's id, so a
token is only good with its own session (a page of another site can neither read it nor
send the cookie: SameSite=Strict). Comparisons are constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "alertd_session"
KEY_NAME = "http_session_key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def credential_tag(secret) -> str:
    """A short fingerprint of the credential a session was made with ("" for none)."""
    return hashlib.sha256(str(secret).encode()).hexdigest()[:12] if secret else ""


@dataclass(frozen=True)
class Session:
    """Who is logged in, how, until when; `sid` binds the CSRF token to this session."""

    user: str
    method: str
    expires: float
    sid: str
    tag: str = ""


class Signer:
    """Signs and checks session cookies and CSRF tokens with one key."""

    def __init__(self, key: bytes):
        self.key = key

    @classmethod
    def from_store(cls, store) -> "Signer":
        """The store's key, made (32 random bytes) the first time."""
        text = store.get_kv(KEY_NAME)
        if not text:
            text = secrets.token_hex(32)
            store.set_kv(KEY_NAME, text)
        return cls(bytes.fromhex(str(text)))

    def _mac(self, purpose: str, data: str) -> str:
        return _b64(hmac.new(self.key, f"{purpose}\n{data}".encode(), hashlib.sha256).digest())

    def issue(self, user: str, method: str, expires: float, tag: str = "") -> str:
        """A cookie value for a new session."""
        payload = _b64(json.dumps({"u": user, "m": method, "e": expires, "i": secrets.token_hex(12),
                                   "t": tag}, separators=(",", ":")).encode())
        return f"{payload}.{self._mac('session', payload)}"

    def read(self, value: str | None, now: float) -> Session | None:
        """The session of a cookie value, or None when it is missing, forged or expired."""
        if not value or value.count(".") != 1 or len(value) > 1024:
            return None
        payload, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        try:
            data = json.loads(_unb64(payload))
            session = Session(str(data["u"]), str(data["m"]), float(data["e"]), str(data["i"]), str(data.get("t", "")))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > now else None

    def csrf(self, binding: str) -> str:
        """The CSRF token for a session id (or another binding: a login nonce, a proxy user)."""
        return self._mac("csrf", binding)

    def csrf_ok(self, binding: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(binding))


def read_cookie(header: str | None, name: str) -> str | None:
    """One cookie's value from a Cookie header."""
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def set_cookie(name: str, value: str, *, max_age: int, secure: bool) -> str:
    """A Set-Cookie header value (HttpOnly, SameSite=Strict, Path=/; Secure when asked)."""
    return (f"{name}={value}; Max-Age={max(0, int(max_age))}; Path=/; HttpOnly; SameSite=Strict"
            + ("; Secure" if secure else ""))
