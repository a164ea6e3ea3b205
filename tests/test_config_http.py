"""The `http` and `shutdown_timeout` config keys: values, defaults and one-sentence errors."""

from __future__ import annotations

import pytest

from alertd.config.http import parse_listen
from alertd.config.load import load_config
from alertd.config.schema import ConfigError

TOKEN = "0123456789abcdef0123"


def load(write_config, registry, text, environ=None):
    return load_config(write_config(text), registry, environ=environ or {})


def errors(write_config, registry, text, environ=None):
    with pytest.raises(ConfigError) as info:
        load(write_config, registry, text, environ)
    return [f"{p.line}: {p.key}: {p.message}" for p in info.value.problems]


def test_defaults(write_config, registry):
    config = load(write_config, registry, "sources: {}\n")
    assert (config.http.enabled, config.http.host, config.http.port, config.http.token) == \
        (True, "127.0.0.1", 9464, None)
    assert config.shutdown_timeout == 10.0 and config.http.where == ""


def test_values_token_from_env_file_and_secrets(write_config, registry, tmp_path):
    config = load(write_config, registry, f'http: {{listen: "[::1]:0", token: "${{API}}"}}\nshutdown_timeout: 30s\n',
                  {"API": TOKEN})
    assert (config.http.host, config.http.port, config.http.listen) == ("::1", 0, "[::1]:0")
    assert config.http.token == TOKEN and TOKEN in config.secrets and config.shutdown_timeout == 30
    assert repr(config.http.token) == "'***'"
    env_only = load(write_config, registry, "http: {listen: 'localhost:8080'}\n", {"ALERTD_API_TOKEN": TOKEN})
    assert env_only.http.token == TOKEN and env_only.http.loopback
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    from_file = load(write_config, registry, f"http: {{token_file: {token_file}}}\n")
    assert from_file.http.token == TOKEN and TOKEN in from_file.secrets
    public = load(write_config, registry, "http: {listen: '0.0.0.0:9464'}\n")
    assert not public.http.loopback and public.http.where.endswith(":1")


def test_every_http_mistake_is_reported_at_once(write_config, registry, tmp_path):
    text = """\
shutdown_timeout: 0s
http:
  listen: "127.0.0.1:99999"
  token: short
  tokn: x
"""
    assert errors(write_config, registry, text) == [
        "1: shutdown_timeout: the drain time must be more than 0s; write for example 10s",
        '3: http.listen: the port of "127.0.0.1:99999" must be a number from 0 to 65535; write host:port, '
        'such as "127.0.0.1:9464" or "[::1]:9464"',
        "4: http.token: the API token is 5 characters long; use at least 16 random characters "
        "(for example the output of: openssl rand -hex 32)",
        '5: http.tokn: unknown key "tokn"; did you mean "token"?']
    missing = tmp_path / "nope"
    assert errors(write_config, registry, f"http: {{token_file: {missing}}}\n") == [
        f"1: http.token_file: cannot read the token file {missing}: No such file or directory; "
        "create it (mode 0600) or remove token_file"]
    assert errors(write_config, registry, f"http: {{token: {TOKEN}, token_file: /x}}\n") == [
        '1: http: set "token" or "token_file", not both']
    assert errors(write_config, registry, "http: {enabled: maybe}\n") == [
        "1: http.enabled: expected true or false, got 'maybe'"]


@pytest.mark.parametrize("text,problem", [
    ("9464", "is not an address to listen on"),
    ("::1:9464", "is not an address to listen on"),
    ("example.com:80", '"example.com" is not an IP address'),
    ("127.0.0.1:http", "must be a number from 0 to 65535"),
])
def test_bad_listen_addresses(text, problem):
    with pytest.raises(ValueError) as info:
        parse_listen(text)
    assert problem in str(info.value)


def test_pages_keys_external_url_login_and_cookie(write_config, registry):
    config = load(write_config, registry, "http:\n  external_url: https://alertd.example.com/ops/\n"
                  "  login: {method: header, user_header: X-Remote-User, trusted_proxies: [10.0.0.0/8],"
                  " session_ttl: 1h, pages: login}\n")
    hc = config.http
    assert hc.external_url == "https://alertd.example.com/ops" and hc.cookie_secure is True
    login = hc.login
    assert (login.method, login.user_header, login.session_ttl, login.pages_need_login) == \
        ("header", "x-remote-user", 3600.0, True)
    assert login.trusts("10.1.2.3") and not login.trusts("192.168.0.1") and not login.trusts("junk")
    plain = load(write_config, registry, "http: {external_url: 'http://10.0.0.5:9464', cookie_secure: true}\n").http
    assert plain.cookie_secure is True and plain.login.method == "token" and not plain.login.pages_need_login
    assert load(write_config, registry, "sources: {}\n").http.external_url == ""


@pytest.mark.parametrize("text, message", [
    ("http: {external_url: alertd.example.com}", 'http.external_url: "alertd.example.com" is not an absolute http(s) URL'),
    ("http: {external_url: 'https://a.example/?x=1'}", "http.external_url: \"https://a.example/?x=1\" has a query"),
    ("http: {login: {method: cookie}}", 'http.login.method: \'cookie\' is not allowed; valid ones are "basic", "header", "token"'),
    ("http: {login: {trusted_proxies: [proxy.local]}}", 'http.login.trusted_proxies: "proxy.local" is not an IP'),
    ("http: {login: {session_ttl: 0s}}", "http.login.session_ttl: session_ttl must be more than 0s"),
    ("http: {cookie_secure: sometimes}", "http.cookie_secure: expected auto, true or false"),
])
def test_pages_keys_errors(write_config, registry, text, message):
    assert any(message in e for e in errors(write_config, registry, text + "\n")), \
        errors(write_config, registry, text + "\n")


def test_notices_link_to_the_pages_at_the_external_url(write_config, registry, clock, tmp_path):
    import json

    from routing_helpers import BASE, Shop
    shop = Shop(write_config, registry, clock, tmp_path,
                "http: {external_url: 'https://alertd.example.com'}\n" + BASE.replace("group_wait: 30s", "group_wait: 0s"))
    try:
        shop.feed({"a": 95})
        (row,) = shop.rows()
        assert json.loads(row["payload"])["external_url"] == "https://alertd.example.com"
    finally:
        shop.close()
