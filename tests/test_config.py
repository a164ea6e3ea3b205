"""Config validation: every mistake is one sentence naming file, line and key."""

from __future__ import annotations

import pytest

from alertd.config.load import load_config
from alertd.config.schema import ConfigError

GOOD = """\
sources:
  app: {type: test_list, every: 5s}
rules:
  - name: high
    source: app
    series: cpu{host=~".+"}
    detector: {type: test_above, limit: 90}
    for: 1m
receivers:
  console: [{type: console}]
routes:
  receiver: console
"""


def errors_of(write_config, registry, text, environ=None):
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ=environ or {})
    return [str(p).replace(str(path), "alertd.yaml") for p in info.value.problems]


def test_good_config_loads_into_frozen_objects(write_config, registry):
    config = load_config(write_config(GOOD), registry, environ={})
    assert config.sources["app"].every == 5.0
    rule = config.rules[0]
    assert rule.for_ == 60.0 and rule.detector.params.limit == 90.0
    assert str(rule.series) == 'cpu{host=~".+"}'
    with pytest.raises(Exception):
        rule.name = "other"


BAD = [
    ("yaml syntax",
     GOOD.replace("every: 5s}", "every: 5s"),
     ['alertd.yaml:3: (syntax): the file is not valid YAML: expected \',\' or \'}\', but got \':\'; fix the syntax near that line']),
    ("unknown top-level key",
     GOOD.replace("receivers:", "recievers:"),
     ['alertd.yaml:9: recievers: unknown key "recievers"; did you mean "receivers"?',
      'alertd.yaml:12: routes.receiver: the route names the receiver "console", which is not defined under receivers.']),
    ("unknown rule key",
     GOOD.replace("for: 1m", "fro: 1m"),
     ['alertd.yaml:8: rules[high].fro: unknown key "fro"; did you mean "for"?']),
    ("wrong type in plugin params",
     GOOD.replace("limit: 90", "limit: high"),
     ["alertd.yaml:7: rules[high].detector.limit: expected a number, got 'high'"]),
    ("unknown plugin param",
     GOOD.replace("limit: 90", "limt: 90"),
     ['alertd.yaml:7: rules[high].detector.limt: unknown key "limt"; did you mean "limit"?']),
    ("unknown plugin type",
     GOOD.replace("type: test_above", "type: test_abov"),
     ['alertd.yaml:7: rules[high].detector.type: unknown detector type "test_abov"; did you mean "test_above"?']),
    ("unknown source type",
     GOOD.replace("type: test_list", "type: test_lst"),
     ['alertd.yaml:2: sources.app.type: unknown source type "test_lst"; did you mean "test_list"?']),
    ("rule names a missing source",
     GOOD.replace("source: app", "source: ap"),
     ['alertd.yaml:5: rules[high].source: the rule names the source "ap", which is not defined under sources; did you mean "app"?']),
    ("route names a missing receiver",
     GOOD.replace("receiver: console", "receiver: consle"),
     ['alertd.yaml:12: routes.receiver: the route names the receiver "consle", which is not defined under receivers; did you mean "console"?']),
    ("bad duration",
     GOOD.replace("every: 5s", "every: 5 parsecs"),
     ["alertd.yaml:2: sources.app.every: '5 parsecs' is not a duration; write a number of seconds or a value like 30s, 5m, 1h"]),
    ("missing environment variable",
     GOOD.replace("[{type: console}]", '[{type: slack, webhook_url: "${SLACK_URL}"}]'),
     ["alertd.yaml:10: receivers.console[0].webhook_url: the environment variable SLACK_URL is not set; export it or write ${SLACK_URL:-default} to give a default"]),
    ("missing required key",
     GOOD.replace("    series: cpu{host=~\".+\"}\n", ""),
     ['alertd.yaml:4: rules[high]: the required key "series" is missing; add it (a string)']),
    ("bad selector regex",
     GOOD.replace('host=~".+"', 'host=~"(+"'),
     ['alertd.yaml:6: rules[high].series: the regex "(+" of label "host" is invalid: nothing to repeat at position 1']),
    ("source without schedule",
     GOOD.replace(", every: 5s", ""),
     ['alertd.yaml:2: sources.app: the source has no schedule; add "every: 30s" or "cron: \'*/5 * * * *\'"']),
    ("bad cron",
     GOOD.replace("every: 5s", "cron: '61 * * * *'"),
     ["alertd.yaml:2: sources.app.cron: \"61 * * * *\" is not a crontab expression (Error validating expression '61': the last value (61) is higher than the maximum value (59)); write five fields like \"*/5 * * * *\""]),
    ("duplicate rule name",
     GOOD + "  - {name: high, source: app, series: cpu, detector: {type: test_above}}\n",
     []),  # placeholder replaced below
]


@pytest.mark.parametrize("case,text,expected", [b for b in BAD if b[2]], ids=[b[0] for b in BAD if b[2]])
def test_bad_config_gives_exact_errors(write_config, registry, case, text, expected):
    assert errors_of(write_config, registry, text) == expected


def test_duplicate_rule_name(write_config, registry):
    text = GOOD.replace("receivers:", "  - {name: high, source: app, series: cpu, detector: {type: test_above}}\nreceivers:")
    assert errors_of(write_config, registry, text) == [
        'alertd.yaml:9: rules[high]: the rule name "high" is used twice; rule names must be unique']


def test_all_errors_of_a_file_are_reported_at_once(write_config, registry):
    text = (GOOD.replace("every: 5s", "every: soon").replace("limit: 90", "limt: 90")
            .replace("receiver: console", "receiver: nobody"))
    errors = errors_of(write_config, registry, text)
    assert len(errors) == 3
    assert [e.split(":")[1] for e in errors] == ["2", "7", "12"]


def test_env_expansion_and_secret_redaction(write_config, registry):
    text = GOOD.replace("[{type: console}]", '[{type: slack, webhook_url: "${SLACK_URL}"}]')
    config = load_config(write_config(text), registry, environ={"SLACK_URL": "http://127.0.0.1:9/hook-secret"})
    assert config.receivers["console"][0].params.webhook_url == "http://127.0.0.1:9/hook-secret"
    assert "http://127.0.0.1:9/hook-secret" in config.secrets


def test_env_default_syntax(write_config, registry):
    text = GOOD.replace("limit: 90", 'limit: "${CPU_LIMIT:-75}"')
    assert load_config(write_config(text), registry, environ={}).rules[0].detector.params.limit == 75.0


def test_if_env_disables_an_integration_without_its_variables(write_config, registry):
    text = GOOD.replace("[{type: console}]",
                        '[{type: console}, {type: slack, if_env: SLACK_URL, webhook_url: "${SLACK_URL}"}]')
    config = load_config(write_config(text), registry, environ={})
    assert [(n.type, n.enabled) for n in config.receivers["console"]] == [("console", True), ("slack", False)]
    enabled = load_config(write_config(text), registry, environ={"SLACK_URL": "http://127.0.0.1:9/x"})
    assert enabled.receivers["console"][1].enabled


def test_missing_file_is_one_sentence(tmp_path, registry):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml", registry)
    assert "the config file does not exist" in str(info.value)


def test_route_tree_matchers(write_config, registry):
    text = GOOD + """\
  routes:
    - match: {severity: critical}
      receiver: console
      continue: true
    - matchers: ['host=~"db.*"', 'team!="web"']
"""
    config = load_config(write_config(text), registry, environ={})
    first, second = config.routes.routes
    assert first.continue_ and [str(m) for m in first.matchers] == ['severity="critical"']
    assert [str(m) for m in second.matchers] == ['host=~"db.*"', 'team!="web"']
    assert second.receiver == "console"  # inherited
