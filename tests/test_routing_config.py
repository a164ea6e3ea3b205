"""Routing, inhibition, time interval, receiver and lifecycle keys: parsed, inherited, and
every mistake reported as one sentence with file, line and key."""

from __future__ import annotations

import pytest

from alertd.config.load import load_config
from alertd.config.schema import ConfigError
from alertd.config.yamlsrc import load_yaml

GOOD = """\
sources:
  app: {type: test_list, every: 5s}
rules:
  - name: high
    source: app
    series: cpu{host=~".+"}
    detector: {type: test_above, limit: 90}
    keep_firing_for: 2m
    no_data: alerting
    flapping: {window: 11, low: 15, high: 30}
receivers:
  console: [{type: console}]
  oncall:
    rate_limit: {rate: 10, per: 1h, burst: 3}
    deadline: 30m
    fallback: console
    integrations:
      - {type: console, send_resolved: false}
time_intervals:
  - name: weekends
    time_intervals:
      - weekdays: [saturday, sunday]
        location: Europe/Berlin
  - name: office
    time_intervals:
      - times: [{start_time: 09:00, end_time: 17:30}]
        weekdays: ['monday:friday']
        days_of_month: ['1:10', '-3:-1']
        months: [january, '3:6']
        years: ['2025:2030']
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [host]
  - source_match: {rule: down}
    target_match_re: {rule: "high|low"}
routes:
  receiver: console
  group_by: [rule]
  group_wait: 10s
  routes:
    - match: {severity: critical}
      receiver: oncall
      group_by: ['...']
      repeat_interval: 1h
      mute_time_intervals: [weekends]
      routes:
        - matchers: ['host=~"db.*"']
          active_time_intervals: [office]
"""


def errors_of(write_config, registry, text):
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, registry, environ={})
    return [str(p).replace(str(path), "alertd.yaml") for p in info.value.problems]


def test_good_routing_config(write_config, registry):
    config = load_config(write_config(GOOD), registry, environ={})
    root = config.routes
    assert (root.group_by, root.group_wait, root.group_interval, root.repeat_interval) == (("rule",), 10, 300, 14400)
    (critical,) = root.routes
    assert critical.group_by_all and critical.group_wait == 10 and critical.repeat_interval == 3600
    assert critical.mute_time_intervals == ("weekends",)
    (db,) = critical.routes
    # children inherit receiver, grouping and timers, but not time intervals (as in Alertmanager)
    assert db.receiver == "oncall" and db.group_by_all and db.repeat_interval == 3600
    assert db.mute_time_intervals == () and db.active_time_intervals == ("office",)
    office = config.time_intervals["office"][0]
    assert office.times == ((540, 1050),) and office.weekdays == ((0, 4),)
    assert office.days_of_month == ((1, 10), (-3, -1)) and office.months == ((1, 1), (3, 6))
    first, second = config.inhibit_rules
    assert [str(m) for m in first.source] == ['severity="critical"'] and first.equal == ("host",)
    assert [str(m) for m in second.target] == ['rule=~"high|low"']
    settings = config.delivery("oncall")
    assert settings.rate_limit.per_second == pytest.approx(10 / 3600) and settings.rate_limit.capacity == 3
    assert settings.deadline == 1800 and settings.fallback == "console"
    assert config.delivery("console").rate_limit is None and config.delivery("console").deadline == 3600
    assert [n.send_resolved for n in config.receivers["oncall"]] == [False]
    rule = config.rules[0]
    assert rule.keep_firing_for == 120 and rule.no_data == "alerting"
    assert (rule.flapping.window, rule.flapping.low, rule.flapping.high) == (11, 15, 30)


def test_defaults_follow_alertmanager(write_config, registry):
    text = GOOD.split("time_intervals:")[0].replace("    fallback: console\n", "")
    config = load_config(write_config(text + "routes:\n  receiver: console\n"), registry, environ={})
    root = config.routes
    assert (root.group_by, root.group_by_all) == ((), False)
    assert (root.group_wait, root.group_interval, root.repeat_interval) == (30, 300, 4 * 3600)
    assert config.rules[0].flapping.enabled and config.inhibit_rules == ()


def test_flapping_false_turns_detection_off(write_config, registry):
    config = load_config(write_config(GOOD.replace("flapping: {window: 11, low: 15, high: 30}", "flapping: false")),
                         registry, environ={})
    assert not config.rules[0].flapping.enabled


def test_times_of_day_stay_strings_in_yaml():
    # YAML 1.1 would read 09:00 as the number 540 and 1:5 as 65 (base 60).
    assert load_yaml("a: 09:00\nb: [1:5, 10:30]\nc: 12\n") == {"a": "09:00", "b": ["1:5", "10:30"], "c": 12}


BAD = [
    ("bad matcher in a route",
     GOOD.replace("""matchers: ['host=~"db.*"']""", """matchers: ['host=~"db.*']"""),
     ['alertd.yaml:48: routes.routes[0].routes[0].matchers[0]: the value "db.* in "host=~"db.*" has an '
      'unbalanced quote; quote the whole value, like name="value"']),
    ("bad regex in match_re",
     GOOD.replace('target_match_re: {rule: "high|low"}', 'target_match_re: {rule: "high|(low"}'),
     ['alertd.yaml:36: inhibit_rules[1].target_match_re.rule: the regex "high|(low" of label "rule" is invalid: '
      'missing ), unterminated subpattern at position 5']),
    ("bad group_by",
     GOOD.replace("group_by: ['...']", "group_by: ['...', host]"),
     ['alertd.yaml:44: routes.routes[0].group_by: "..." groups by all labels and cannot be combined with label '
      'names; write either [...] or a list of labels']),
    ("bad label in group_by",
     GOOD.replace("group_by: [rule]", "group_by: [rule-name]"),
     ['alertd.yaml:39: routes.group_by: "rule-name" is not a label name; use letters, digits and _, or "..." '
      'for all labels']),
    ("bad duration",
     GOOD.replace("repeat_interval: 1h", "repeat_interval: 1 hour"),
     ["alertd.yaml:45: routes.routes[0].repeat_interval: '1 hour' is not a duration; write a number of "
      "seconds or a value like 30s, 5m, 1h"]),
    ("zero group_interval",
     GOOD.replace("group_wait: 10s", "group_wait: 10s\n  group_interval: 0s"),
     ["alertd.yaml:41: routes.group_interval: group_interval must be more than 0s; write a value such as 5m"]),
    ("unknown time interval",
     GOOD.replace("mute_time_intervals: [weekends]", "mute_time_intervals: [weekend]"),
     ['alertd.yaml:46: routes.routes[0].mute_time_intervals[0]: the time interval "weekend" is not defined '
      'under time_intervals; did you mean "weekends"?']),
    ("time intervals on the root route",
     GOOD.replace("  group_wait: 10s\n", "  group_wait: 10s\n  mute_time_intervals: [weekends]\n"),
     ["alertd.yaml:41: routes.mute_time_intervals: the top-level route cannot have mute_time_intervals; "
      "put them on a child route"]),
    ("bad time zone",
     GOOD.replace("location: Europe/Berlin", "location: Europe/Berln"),
     ['alertd.yaml:23: time_intervals[weekends].time_intervals[0].location: "Europe/Berln" is not a time '
      'zone; did you mean "Europe/Berlin"?']),
    ("bad weekday",
     GOOD.replace("weekdays: [saturday, sunday]", "weekdays: [saturday, sundy]"),
     ['alertd.yaml:22: time_intervals[weekends].time_intervals[0].weekdays[1]: "sundy" is not a weekday; '
      'did you mean "sunday"?']),
    ("bad time of day",
     GOOD.replace("end_time: 17:30", "end_time: 25:00"),
     ['alertd.yaml:26: time_intervals[office].time_intervals[0].times[0]: "25:00" is not a time of day; use '
      '00:00 to 24:00']),
    ("backwards day range",
     GOOD.replace("'1:10'", "'10:1'"),
     ['alertd.yaml:28: time_intervals[office].time_intervals[0].days_of_month[0]: the day of month range '
      '"10:1" ends before it starts; write it as "first:last"']),
    ("inhibit rule without target",
     GOOD.replace("    target_matchers: [severity=\"warning\"]\n", ""),
     ["alertd.yaml:32: inhibit_rules[0]: the inhibit rule has no target matchers, so it would mute every "
      "alert; add target_matchers such as ['severity=\"warning\"']"]),
    ("unknown inhibit key",
     GOOD.replace("equal: [host]", "equals: [host]"),
     ['alertd.yaml:34: inhibit_rules[0].equals: unknown key "equals"; did you mean "equal"?']),
    ("unknown fallback",
     GOOD.replace("fallback: console", "fallback: consol"),
     ['alertd.yaml:16: receivers.oncall.fallback: the fallback receiver "consol" is not defined under '
      'receivers; did you mean "console"?']),
    ("bad rate limit",
     GOOD.replace("rate_limit: {rate: 10, per: 1h, burst: 3}", "rate_limit: {rate: 0, per: 1h}"),
     ["alertd.yaml:14: receivers.oncall.rate_limit: rate_limit.rate must be at least 1 notice"]),
    ("unknown receiver key",
     GOOD.replace("deadline: 30m", "dedline: 30m"),
     ['alertd.yaml:15: receivers.oncall.dedline: unknown key "dedline"; did you mean "deadline"?']),
    ("bad send_resolved",
     GOOD.replace("send_resolved: false", "send_resolved: maybe"),
     ["alertd.yaml:18: receivers.oncall.integrations[0].send_resolved: expected true or false, got 'maybe'"]),
    ("bad no_data",
     GOOD.replace("no_data: alerting", "no_data: alert"),
     ['alertd.yaml:9: rules[high].no_data: \'alert\' is not allowed; did you mean "alerting"?']),
    ("bad flapping thresholds",
     GOOD.replace("low: 15, high: 30", "low: 30, high: 15"),
     ["alertd.yaml:10: rules[high].flapping: flapping needs 0 < low < high <= 100 (percent); got low 30 and "
      "high 15"]),
    ("flapping's interval is derived, not a key",
     GOOD.replace("low: 15, high: 30", "low: 15, high: 30, interval: 5"),
     ['alertd.yaml:10: rules[high].flapping.interval: unknown key "interval"; valid ones are "enabled", '
      '"high", "low", "window".']),
    ("bad keep_firing_for",
     GOOD.replace("keep_firing_for: 2m", "keep_firing_for: 2 min"),
     ["alertd.yaml:8: rules[high].keep_firing_for: '2 min' is not a duration; write a number of seconds or "
      "a value like 30s, 5m, 1h"]),
]


@pytest.mark.parametrize("case,text,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_routing_config_gives_exact_errors(write_config, registry, case, text, expected):
    assert errors_of(write_config, registry, text) == expected
