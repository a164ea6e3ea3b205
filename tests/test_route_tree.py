"""The route tree and time intervals, as Alertmanager documents them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from alertd.config.load import load_config
from alertd.config.time_intervals import TimeIntervalSpec, interval_contains
from alertd.routing.tree import compile_tree, group_key

TREE = """\
sources:
  app: {type: test_list, every: 5s}
receivers:
  default: [{type: console}]
  db: [{type: console}]
  pager: [{type: console}]
  audit: [{type: console}]
routes:
  receiver: default
  group_by: [rule]
  routes:
    - match: {severity: critical}
      receiver: pager
      continue: true
    - match_re: {service: "db|cache"}
      receiver: db
      group_by: [service]
      routes:
        - matchers: ['env!="prod"']
          receiver: audit
    - matchers: ['service=~"web.*"', 'team!~"ops|sre"']
      receiver: audit
"""


@pytest.fixture
def tree(write_config, registry):
    return compile_tree(load_config(write_config(TREE), registry, environ={}).routes)


def receivers(tree, **labels):
    return [node.config.receiver for node in tree.match(labels)]


def test_first_matching_child_wins_and_continue_goes_on(tree):
    assert receivers(tree, severity="warning") == ["default"]  # no child matches: the root handles it
    assert receivers(tree, severity="critical", service="db", env="prod") == ["pager", "db"]
    assert receivers(tree, severity="critical") == ["pager"]  # a continue match still counts as a match
    assert receivers(tree, service="db", env="prod") == ["db"]  # stops at the first match
    assert receivers(tree, service="db", env="dev") == ["audit"]  # the deepest matching node
    assert receivers(tree, service="cache", env="staging") == ["audit"]


def test_regexes_are_anchored_and_negative_matchers_work(tree):
    assert receivers(tree, service="mydb") == ["default"]  # "db|cache" does not match "mydb"
    assert receivers(tree, service="web-shop", team="checkout") == ["audit"]
    assert receivers(tree, service="web-shop", team="sre") == ["default"]
    assert receivers(tree, service="web-shop") == ["audit"]  # a missing label is "" for !~


def test_children_inherit_grouping_and_ids_are_stable(tree, write_config, registry):
    db = tree.children[1]
    assert db.config.group_by == ("service",) and db.children[0].config.group_by == ("service",)
    assert tree.children[0].config.group_by == ("rule",)
    again = compile_tree(load_config(write_config(TREE, "again.yaml"), registry, environ={}).routes)
    assert [n.id for n in again.walk()] == [n.id for n in tree.walk()]
    assert len({n.id for n in tree.walk()}) == 5
    labels = {"rule": "x", "service": "db", "env": "prod"}
    assert group_key(db, db.group_labels(labels)) == db.id + ':{service="db"}'


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_time_interval_fields():
    office = TimeIntervalSpec(times=((9 * 60, 17 * 60),), weekdays=((0, 4),), location="Europe/Berlin")
    assert interval_contains((office,), _at("2025-06-02T09:00:00+02:00"))  # Monday 09:00 Berlin
    assert not interval_contains((office,), _at("2025-06-02T17:00:00+02:00"))  # end is exclusive
    assert interval_contains((office,), _at("2025-06-02T08:30:00+00:00"))  # 10:30 in Berlin
    assert not interval_contains((office,), _at("2025-06-02T06:30:00+00:00"))  # 08:30 in Berlin
    assert not interval_contains((office,), _at("2025-06-01T10:00:00+02:00"))  # Sunday
    month_end = TimeIntervalSpec(days_of_month=((-3, -1),))
    assert interval_contains((month_end,), _at("2025-02-26T12:00:00+00:00"))  # Feb 2025 has 28 days
    assert not interval_contains((month_end,), _at("2025-02-25T12:00:00+00:00"))
    q1 = TimeIntervalSpec(months=((1, 3),), years=((2025, 2025),))
    assert interval_contains((q1,), _at("2025-03-31T23:00:00+00:00"))
    assert not interval_contains((q1,), _at("2026-01-15T00:00:00+00:00"))
    either = (TimeIntervalSpec(weekdays=((5, 6),)), office)
    assert interval_contains(either, _at("2025-06-07T03:00:00+00:00"))  # Saturday, any time


def test_time_zone_changes_the_day(write_config, registry):
    tokyo = TimeIntervalSpec(weekdays=((0, 0),), location="Asia/Tokyo")
    when = datetime(2025, 6, 1, 20, 0, tzinfo=timezone.utc).timestamp()  # Sunday in UTC, Monday in Tokyo
    assert interval_contains((tokyo,), when)
    assert not interval_contains((TimeIntervalSpec(weekdays=((0, 0),)),), when)
