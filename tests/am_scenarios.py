"""The scenarios of the Alertmanager differential test (tests/test_am_differential.py), as data.

Each scenario is a route subtree (its receivers named locally), optional inhibit rules and
time intervals, and events at seconds from the start: `fire` posts firing alerts (endsAt two
minutes ahead, startsAt the moment the alert began firing), `resolve` posts them with endsAt
now, `expire_in` posts them with endsAt a few seconds ahead and never again, `silence` and
`unsilence` add and expire a silence. Timers are short (group_wait 1s, group_interval 3s)
and a repeat_interval is never a multiple of the group_interval, except where that is the
point (`differs`): a scenario with `differs` is one of the documented differences of
docs/routing.md and names the check that shows it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FAST = {"group_wait": "1s", "group_interval": "3s", "repeat_interval": "1h"}


def A(name: str, **labels) -> dict:
    """An alert's labels: alertname and the rest."""
    return {"alertname": name, **labels}


@dataclass(frozen=True)
class Scenario:
    name: str
    route: dict
    events: list
    receivers: dict = field(default_factory=lambda: {"team": True})  # name -> send_resolved
    inhibit: list = field(default_factory=list)
    time_intervals: list = field(default_factory=list)
    duration: float = 12.0
    differs: str = ""  # the documented difference this scenario shows (see the test)


def fire(*alerts):
    return ("fire", alerts)


def resolve(*alerts):
    return ("resolve", alerts)


def expire_in(seconds, *alerts):
    return ("expire_in", (seconds, alerts))


def silence(name, *matchers, seconds=3600):
    return ("silence", (name, matchers, seconds))


def unsilence(name):
    return ("unsilence", name)


CPU_A, CPU_B, CPU_C = A("HighCPU", instance="a"), A("HighCPU", instance="b"), A("HighCPU", instance="c")

SCENARIOS = [
    Scenario("group_wait_batching", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A)), (0.4, fire(CPU_B))], duration=6),
    Scenario("group_interval_joins", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A)), (2.0, fire(CPU_B)), (5.0, fire(CPU_C))], duration=9),
    Scenario("repeat_interval", {**FAST, "group_by": ["alertname"], "repeat_interval": "7s"},
             [(0.0, fire(CPU_A))], duration=12),
    Scenario("send_resolved_on", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A, CPU_B)), (2.0, resolve(CPU_A)), (5.0, resolve(CPU_B))], duration=10),
    Scenario("send_resolved_off", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A, CPU_B)), (2.0, resolve(CPU_A)), (5.0, resolve(CPU_B))],
             receivers={"team": False}, duration=10),
    Scenario("nested_continue_regex_negative", {
        **FAST, "group_by": ["alertname", "service"], "receiver": "team", "routes": [
            {"matchers": ['service=~"db|cache"'], "receiver": "dbteam", "continue": True, "routes": [
                {"matchers": ['env!="prod"'], "receiver": "staging"}]},
            {"matchers": ['severity="critical"', 'team!~"ops|sre"'], "receiver": "pager"},
            {"matchers": ['service="web"'], "receiver": "web", "group_by": []}]},  # []: inherited
        [(0.0, fire(A("DiskFull", service="db", env="prod", severity="critical"),
                    A("DiskFull", service="cache", env="dev"),
                    A("DiskFull", service="mydb", severity="critical", team="ops"),
                    A("DiskFull", service="web"), A("Latency", service="web")))],
        receivers={"team": True, "dbteam": True, "staging": True, "pager": True, "web": True}, duration=5),
    Scenario("inhibit_equal", {**FAST, "group_by": ["..."]},
             [(0.0, fire(A("NodeDown", host="a", severity="critical"), A("CPU", host="a", severity="warning"),
                         A("CPU", host="b", severity="warning"))),
              (4.5, resolve(A("NodeDown", host="a", severity="critical")))],
             inhibit=[{"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
                       "equal": ["host"]}], duration=11),
    Scenario("inhibit_label_missing_on_both_sides", {**FAST, "group_by": ["..."]},
             [(0.0, fire(A("Outage", severity="critical"), A("Slow", severity="warning"),
                         A("Slow", severity="warning", dc="x")))],
             inhibit=[{"source_matchers": ['alertname="Outage"'], "target_matchers": ['alertname="Slow"'],
                       "equal": ["dc"]}], duration=5),
    Scenario("inhibit_two_sided", {**FAST, "group_by": ["..."]},
             [(0.0, fire(A("ClusterDown", cluster="eu", zone="a"), A("ClusterDown", cluster="eu", zone="b"),
                         A("ServiceSlow", cluster="eu")))],
             inhibit=[{"source_matchers": ['alertname="ClusterDown"'], "target_matchers": ['cluster=~".+"'],
                       "equal": ["cluster"]}], duration=5),
    Scenario("silence_before_notification", {**FAST, "group_by": ["alertname"]},
             [(0.0, silence("s", 'instance="a"')), (0.1, fire(CPU_A, CPU_B)), (4.5, unsilence("s"))], duration=10),
    Scenario("silence_during_notification", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A)), (2.0, silence("s", 'instance="a"')), (5.5, unsilence("s"))], duration=10),
    Scenario("silence_then_repeat", {**FAST, "group_by": ["alertname"], "repeat_interval": "8s"},
             [(0.0, fire(CPU_A)), (2.0, silence("s", 'instance="a"')), (11.5, unsilence("s"))], duration=15),
    Scenario("silence_after_notification_then_resolve", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A, CPU_B)), (2.0, silence("s", 'instance="a"')), (2.5, resolve(CPU_A)),
              (5.5, resolve(CPU_B))], duration=11),
    Scenario("silence_ends_by_itself", {**FAST, "group_by": ["alertname"]},
             [(0.0, silence("s", 'alertname="HighCPU"', seconds=3)), (0.1, fire(CPU_A))], duration=9),
    Scenario("time_intervals", {**FAST, "group_by": ["alertname"], "routes": [
        {"matchers": ['route="muted"'], "mute_time_intervals": ["always"]},
        {"matchers": ['route="inactive"'], "active_time_intervals": ["never"]},
        {"matchers": ['route="active"'], "active_time_intervals": ["always"]}]},
             [(0.0, fire(A("T", route="muted"), A("T", route="inactive"), A("T", route="active"))),
              (2.0, resolve(A("T", route="muted"), A("T", route="inactive"), A("T", route="active")))],
             time_intervals=[{"name": "always", "time_intervals": [{"weekdays": ["sunday:saturday"]}]},
                             {"name": "never", "time_intervals": [{"years": ["2000"]}]}], duration=8),
    Scenario("group_by_all", {**FAST, "group_by": ["..."]},
             [(0.0, fire(CPU_A, CPU_B)), (2.0, resolve(CPU_B))], duration=8),
    Scenario("no_group_by", {**FAST},
             [(0.0, fire(CPU_A)), (2.0, fire(A("Memory", instance="a"))), (5.0, resolve(CPU_A))], duration=10),
    Scenario("resolve_and_refire_inside_group_wait", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A)), (0.3, resolve(CPU_A)), (0.6, fire(CPU_A))], duration=6),
    Scenario("resolve_and_refire_between_flushes", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A)), (1.8, resolve(CPU_A)), (2.6, fire(CPU_A))], duration=9),
    Scenario("resolved_when_endsat_passes", {**FAST, "group_by": ["alertname"]},
             [(0.0, expire_in(3, CPU_A))], duration=8),
    Scenario("fired_and_resolved_before_first_notice", {**FAST, "group_by": ["alertname"]},
             [(0.0, fire(CPU_A)), (0.5, resolve(CPU_A)), (2.0, fire(CPU_B))], duration=7,
             differs="empty_group_kept"),
    Scenario("repeat_at_a_multiple_of_group_interval", {
        "group_wait": "1s", "group_interval": "2s", "repeat_interval": "4s", "group_by": ["alertname"]},
             [(0.0, fire(CPU_A))], duration=8.5, differs="repeat_one_tick_later"),
    Scenario("refire_after_all_resolved", {
        "group_wait": "1s", "group_interval": "4s", "repeat_interval": "1h", "group_by": ["alertname"]},
             [(0.0, fire(CPU_A)), (2.0, resolve(CPU_A)), (5.5, fire(CPU_A))], duration=12,
             differs="empty_group_kept"),
]
