"""Notification templates: what on-call people read, the sandbox, and per-receiver overrides."""

from __future__ import annotations

import dataclasses
import shlex

import pytest
from structlog.testing import capture_logs

from alertd.base import PluginContext
from alertd.cli.entry import main
from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.default_plugins.notifiers.console import ConsoleNotifier
from alertd.matchers import parse_matcher
from alertd.model import Notification
from alertd.render.renderer import (
    Renderer,
    TemplateParams,
    TemplateText,
    plain_text,
    sample_incident,
    sample_notification,
)

UTC = TemplateParams(timezone="UTC")
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: the samples' notification time


def text_of(n, params=UTC, **kw) -> str:
    return plain_text(n, Renderer(params, **kw))


def notice(*incidents, kind="firing", title="", text="") -> Notification:
    return Notification("oncall", kind, "k", tuple(incidents), title, text, T0)


# -- what the defaults say ------------------------------------------------------------------
def test_firing_notice_reads_at_a_glance():
    lines = text_of(sample_notification("firing")).splitlines()
    assert lines[0] == "[FIRING] payment_success_drop provider=adyen region=eu"
    assert "Payment success 0.31 at adyen" in lines
    for expected in ("Severity:   critical",
                     "Value:      0.31 (expected >= 0.9)",
                     "Score:      0.999 (threshold 0.5)",
                     "Since:      22:08:20 UTC (5m ago)",
                     "Runbook:    https://runbooks.example.com/payments/provider-down",
                     "Dashboard:  https://grafana.example.com/d/payments?var-provider=adyen",
                     "Silence: alertd silence add 'rule=\"payment_success_drop\"' 'provider=\"adyen\"' "
                     "'region=\"eu\"' --for 2h --comment \"investigating\"",
                     "Ack:     alertd incidents ack 17"):
        assert expected in lines


def test_resolved_notice_says_how_long_it_lasted():
    text = text_of(sample_notification("resolved"))
    assert text.startswith("[RESOLVED] payment_success_drop provider=adyen region=eu\n")
    assert "Resolved after 4m50s (22:08:20 UTC to 22:13:10 UTC)." in text
    assert "Last value: 0.97 (expected >= 0.9)" in text
    assert "Silence:" not in text and "Ack:" not in text  # nothing to act on any more


def test_a_resolve_that_is_not_a_recovery_says_why_on_every_receiver():
    # a series that went away, or an incident resolved by hand, must not read as "back to normal"
    base = sample_notification("resolved")
    (inc,) = base.incidents
    gone = dataclasses.replace(base, incidents=(dataclasses.replace(inc, resolution="series_missing"),))
    text = text_of(gone)
    assert "Resolved after 4m50s (22:08:20 UTC to 22:13:10 UTC): the series stopped reporting." in text
    renderer = Renderer(UTC)
    view = renderer.view(gone)
    assert "lasted 4m50s (from 22:08:20 UTC): the series stopped reporting" in renderer.render("console", view)
    slack = renderer.render("slack", view, inc=view["incidents"][0], single=True)
    assert "(22:08:20 UTC to 22:13:10 UTC): the series stopped reporting" in slack
    assert "(22:08:20 UTC to 22:13:10 UTC): the series stopped reporting" in renderer.render("html", view)
    by_hand = dataclasses.replace(inc, resolution="manual", resolved_by="alice")
    group = notice(by_hand, dataclasses.replace(inc, id=18, labels={**inc.labels, "provider": "stripe"}),
                   kind="resolved")
    assert "resolved after 4m50s (resolved by hand (alice))" in text_of(group)
    cleared = dataclasses.replace(base, incidents=(dataclasses.replace(inc, resolution="cleared"),))
    assert "Resolved after 4m50s (22:08:20 UTC to 22:13:10 UTC)." in text_of(cleared)  # a recovery: no why


def test_group_lists_its_incidents_compactly():
    text = text_of(sample_notification("firing", group=True))
    lines = text.splitlines()
    assert lines[0] == "[FIRING:3] payment_success_drop region=eu"
    assert "3 firing · severity critical" in lines
    items = [line for line in lines if line.startswith("- ")]
    assert items == [
        "- provider=paypal: 0.35 (expected >= 0.9), score 0.997, since 22:06:20 UTC (7m ago) · ack: alertd incidents ack 19",
        "- provider=stripe: 0.33 (expected >= 0.9), score 0.998, since 22:07:20 UTC (6m ago) · ack: alertd incidents ack 18",
        "- provider=adyen: 0.31 (expected >= 0.9), score 0.999, since 22:06:20 UTC (5m ago) · ack: alertd incidents ack 17"
        .replace("22:06:20", "22:08:20"),
    ]
    assert "Runbook:    https://runbooks.example.com/payments/provider-down" in lines  # once
    assert ("Silence all: alertd silence add 'rule=\"payment_success_drop\"' 'region=\"eu\"' "
            "--for 2h --comment \"investigating\"") in lines


def test_long_group_is_cut_with_plus_n_more():
    incidents = [sample_incident(i) for i in range(5)]
    text = text_of(notice(*incidents), limit=2)
    assert text.splitlines()[0] == "[FIRING:5] payment_success_drop region=eu"
    assert sum(line.startswith("- ") for line in text.splitlines()) == 2
    assert "+3 more" in text


def test_mixed_group_separates_firing_and_resolved():
    gone = dataclasses.replace(sample_incident(1), state="resolved", resolved_at=T0 - 30)
    text = text_of(notice(sample_incident(0), gone, sample_incident(2)))
    assert text.splitlines()[0] == "[FIRING:2] payment_success_drop region=eu"
    assert "2 firing, 1 resolved · severity critical" in text
    firing, resolved = text.split("Firing:\n")[1].split("Resolved:\n")
    assert "provider=adyen" in firing and "provider=paypal" in firing
    assert resolved.startswith("- provider=stripe: resolved after 5m30s, last value 0.33")


def test_other_kinds_render_with_a_generic_headline_and_the_routers_note():
    n = notice(sample_incident(0), kind="flapping", text="changed state 6 times in 10m")
    text = text_of(n)
    assert text.splitlines()[0] == "[FLAPPING] payment_success_drop provider=adyen region=eu"
    assert "changed state 6 times in 10m" in text
    bare = notice(kind="digest", title="12 notices held back", text="the receiver was over budget")
    assert text_of(bare) == "12 notices held back\n\nthe receiver was over budget"


def test_dates_appear_for_old_incidents_and_ago_only_when_times_agree():
    old = dataclasses.replace(sample_incident(0), started_at=T0 - 2 * 86400)
    assert "Since:      2023-11-12 22:13 UTC (2d ago)" in text_of(notice(old))
    ahead = dataclasses.replace(sample_incident(0), started_at=T0 + 3600)  # a fast simulator
    assert "Since:      23:13:20 UTC\n" in text_of(notice(ahead))


def test_times_follow_the_receivers_time_zone():
    text = text_of(sample_notification("firing"), TemplateParams(timezone="Europe/Berlin"))
    assert "Since:      23:08:20 CET (5m ago)" in text


def test_incidents_without_a_range_show_the_detectors_reason():
    bare = dataclasses.replace(sample_incident(0), expected_low=None, score=None, threshold=None,
                               peak_score=None)
    assert f"Value:      {bare.reason}" in text_of(notice(bare))


# -- labels are data ------------------------------------------------------------------------
EVIL = "{{ 7*7 }}{% if true %}x{% endif %}<!channel> & 'it\"s'"


def evil_incident():
    return dataclasses.replace(sample_incident(0), labels={"provider": EVIL},
                               annotations={"summary": "sum {{ 6*7 }}"})


def test_a_label_value_with_template_syntax_is_printed_not_evaluated():
    n = notice(evil_incident())
    renderer = Renderer(UTC)
    assert renderer.title(n) == f"[FIRING] payment_success_drop provider={EVIL}"
    text = renderer.text(n)
    assert "sum {{ 6*7 }}" in text and "49" not in text and "42" not in text
    html = renderer.render("html", n, title="t")
    assert "{{ 7*7 }}" in html and "&lt;!channel&gt;" in html and "<!channel>" not in html
    slack = renderer.render("slack", renderer.view(n), inc=renderer.view(n)["incidents"][0], single=True)
    assert "&lt;!channel&gt; &amp; 'it\"s'" in slack  # no mention, quotes stay quotes


def test_a_users_template_gets_label_values_as_text():
    params = TemplateParams(timezone="UTC", title_template=TemplateText.from_config(
        "{{ incidents[0].labels.provider }} / {{ incidents[0].summary }}"))
    assert Renderer(params).title(notice(evil_incident())) == f"{EVIL} / sum {{{{ 6*7 }}}}"


def test_the_silence_line_round_trips_through_a_shell_and_the_matcher_parser():
    n = notice(evil_incident())
    line = Renderer(UTC).view(n)["incidents"][0]["silence_command"]
    argv = shlex.split(line)
    assert argv[:3] == ["alertd", "silence", "add"] and argv[-4:] == ["--for", "2h", "--comment", "investigating"]
    matchers = [parse_matcher(arg) for arg in argv[3:-4]]
    assert [(m.name, m.op, m.value) for m in matchers] == [
        ("rule", "=", "payment_success_drop"), ("provider", "=", EVIL)]


def test_without_an_external_url_notices_print_the_cli_lines():
    from urllib.parse import parse_qsl, urlsplit

    from alertd.render.renderer import plain_text, sample_notification
    from alertd.routing.silences import parse_silence_matchers
    plain = plain_text(sample_notification("firing"), Renderer(UTC))
    assert "Ack:     alertd incidents ack 17" in plain and "Silence: alertd silence add" in plain
    assert "/incidents/" not in plain and "/silences/" not in plain
    linked = plain_text(sample_notification("firing", external_url="https://a.example/alertd"), Renderer(UTC))
    assert "Open:    https://a.example/alertd/incidents/17" in linked and "alertd incidents ack" not in linked
    # the group's silence link carries matchers the silence form parses back
    view = Renderer(UTC).view(sample_notification("firing", group=True, external_url="https://a.example"))
    query = parse_qsl(urlsplit(view["silence_url"]).query)
    matchers = parse_silence_matchers([v for k, v in query if k == "matcher"])
    assert [(m.name, m.value) for m in matchers] == [("rule", "payment_success_drop"), ("region", "eu")]


def test_the_sandbox_refuses_python_internals():
    with pytest.raises(ValueError, match="fails on a sample incident.*SecurityError|unsafe"):
        TemplateText.from_config("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ValueError, match="fails on a sample incident"):
        TemplateText.from_config("{% set x = incidents.append(1) %}{{ x }}")  # immutable data


# -- overrides in the config ----------------------------------------------------------------
def test_validate_reports_a_broken_override_with_receiver_and_line(write_config, registry, capsys):
    path = write_config("""
        receivers:
          oncall:
            - type: console
              text_template: |
                {{ incidents[0].subject }}
                {{ incidents[0].value ( }}
            - type: console
              title_template: "{{ kind | nosuchfilter }}"
              timezone: Mars/Olympus
        """)
    with pytest.raises(ConfigError) as err:
        load_config(path, registry, environ={})
    got = [(p.line, p.key, p.message) for p in err.value.problems]
    assert got[0][:2] == (4, "receivers.oncall[0].text_template")
    assert got[0][2].startswith("the template does not compile (template line 2: unexpected '}'")
    assert got[1][:2] == (8, "receivers.oncall[1].title_template")
    assert "No filter named 'nosuchfilter'" in got[1][2]
    assert got[2][:2] == (9, "receivers.oncall[1].timezone")
    assert got[2][2] == '"Mars/Olympus" is not a time zone; write an IANA name such as UTC or Europe/Berlin'
    assert main(["validate", "-c", str(path)]) == 1
    err_text = capsys.readouterr().err
    assert f"{path}:4: receivers.oncall[0].text_template: the template does not compile" in err_text


def test_a_valid_override_is_used(write_config, registry, capsys):
    path = write_config("""
        receivers:
          oncall:
            - type: console
              timezone: UTC
              text_template: |
                {% for inc in incidents %}
                {{ inc.severity | upper }} {{ inc.rule }} is at {{ inc.value }} since {{ inc.since }}
                {% endfor %}
        """)
    config = load_config(path, registry, environ={})
    nc = config.receivers["oncall"][0]
    notifier = ConsoleNotifier(nc.params, PluginContext("oncall", lambda: T0))
    assert notifier.lines(sample_notification("firing")) == [
        "CRITICAL payment_success_drop is at 0.31 since 22:08:20 UTC"]


def test_an_override_failing_at_run_time_falls_back_to_the_default_and_logs_why():
    params = ConsoleNotifier.Params(timezone="UTC", text_template=TemplateText.from_config(
        "{{ incidents[0].labels.provider.upper() }} is down"))  # fine for the sample
    notifier = ConsoleNotifier(params, PluginContext("oncall", lambda: T0))
    regional = dataclasses.replace(sample_incident(0), labels={"region": "eu"})
    with capture_logs() as logs:
        lines = notifier.lines(notice(regional))
    assert lines == ["[FIRING] payment_success_drop region=eu: payment_success_ratio 0.31, expected "
                     ">= 0.9, score 0.999 (threshold 0.5) (since 22:08:20 UTC, 5m ago)"]
    (entry,) = [e for e in logs if e["event"] == "template_failed"]
    assert entry["receiver"] == "oncall" and entry["template"] == "text_template"
    assert entry["error"] == "template line 1: 'dict object' has no attribute 'provider'"
    assert entry["using"] == "the default template"
    assert notifier.lines(sample_notification("firing")) == ["ADYEN is down"]


# -- templates that loop or allocate without end --------------------------------------------------
BOMBS = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "a huge string": "{{ 'x' * 1000000000 }}",
    "a huge list": "{{ ([0] * 1000000000)|length }}",
    "a huge number": "{{ 7 ** 100000000 }}",
    "a wide method": "{{ 'x'.ljust(1000000000) }}",
    "a wide filter": "{{ incidents[0].rule|center(1000000000) }}",
    "a wide format": "{{ '%1000000000d'|format(1) }}",
    "a wide str.format": "{{ '{:>1000000000}'.format(1) }}",
    "doubling by ~": "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
                     "{% endfor %}{{ ns.s|length }}",
    "doubling by replace": "{% set ns = namespace(s='xx') %}{% for i in range(40) %}"
                           "{% set ns.s = ns.s|replace('x', 'xx') %}{% endfor %}{{ ns.s|length }}",
    "a joined map": "{{ range(100000)|map('center', 99999)|join }}",
    "a listed map": "{{ (range(100000)|map('center', 99999)|list)|length }}",
    "recursion": "{% macro d(n) %}{% if n %}{{ d(n-1) }}{{ d(n-1) }}{% else %}x{% endif %}{% endmacro %}{{ d(40) }}",
    "a huge output": "{% for i in range(100000) %}{{ 'y' * 99999 }}{% endfor %}",
    "lipsum": "{{ lipsum(100000, max=100000) }}",
}


@pytest.mark.timeout(60)  # was: `alertd validate` past 60 s and 6.5 GB
@pytest.mark.parametrize("name", BOMBS)
def test_a_template_that_loops_or_allocates_without_end_is_a_config_error(name):
    with pytest.raises(ValueError) as info:
        TemplateText.from_config(BOMBS[name])
    message = str(info.value)
    assert message.startswith("the template fails on a sample incident (") and message.endswith(
        "; fix it (docs/notifications.md lists the variables)")
    assert "limited" in message or "not allowed in templates" in message or "not in templates" in message


def test_a_bomb_that_only_real_incidents_set_off_falls_back_once_until_the_reload():
    params = ConsoleNotifier.Params(timezone="UTC", text_template=TemplateText.from_config(
        "{% if incidents[0].rule == 'checkout' %}{% for i in range(100000) %}{% for j in range(100000) %}"
        "{% endfor %}{% endfor %}{% endif %}{{ incidents[0].rule }} fired"))  # the samples pass
    notifier = ConsoleNotifier(params, PluginContext("oncall", lambda: T0))
    checkout = dataclasses.replace(sample_incident(0), rule="checkout")
    with capture_logs() as logs:
        first = notifier.lines(notice(checkout))
        second = notifier.lines(notice(checkout))
    assert first == second and first[0].startswith("[FIRING] checkout provider=adyen region=eu: ")
    (entry,) = [e for e in logs if e["event"] == "template_failed"]  # once, not at every notice
    assert entry["error"].startswith("template line 1: rendering took more than 0.25s (a loop too large?)")
    assert entry["using"] == "the default template until the next reload"


def test_validate_refuses_template_bombs_at_their_lines(write_config, registry, capsys):
    path = write_config("""
        receivers:
          oncall:
            - type: console
              title_template: "{{ 'x' * 1000000000 }}"
              text_template: "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        """)
    assert main(["validate", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:4: receivers.oncall[0].title_template: the template fails on a sample incident " \
           "(template line 1: '*' would make a value of 1,000,000,000 characters or items" in err
    assert f"{path}:5: receivers.oncall[0].text_template: the template fails on a sample incident " \
           "(template line 1: rendering took more than 0.25s (a loop too large?)" in err
