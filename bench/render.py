"""How long rendering a notice takes, per notifier: a single incident and a group of 100.

Rendering runs on the dispatcher's event loop, so it must stay far below network times
(tens of milliseconds). Prints the median of `--repeat` runs per case, in milliseconds, and
the group/single ratio (measured in the same run, so comparable across machines).

    .venv/bin/python bench/render.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time

from alertd.base import PluginContext
from alertd.default_plugins.notifiers import alertmanager, console, email_smtp, pagerduty, slack, webhook
from alertd.default_plugins.notifiers import command as command_notifier
from alertd.render.renderer import SAMPLE_T0, sample_incident, sample_notification


def notifiers():
    ctx = PluginContext("oncall", lambda: SAMPLE_T0)

    def make(cls, **params):
        return cls(cls.Params(timezone="UTC", **params), ctx)

    return {
        "console": (make(console.ConsoleNotifier), lambda n, x: n.lines(x)),
        "slack": (make(slack.SlackNotifier, webhook_url="https://hooks.slack.com/x"),
                  lambda n, x: n.payload(x)),
        "email": (make(email_smtp.EmailNotifier, host="mail", sender="a@shop.example",
                       to=["b@shop.example"]), lambda n, x: n.message(x).as_bytes()),
        "webhook": (make(webhook.WebhookNotifier, url="https://hooks.example.com/x"),
                    lambda n, x: n.request(x)),
        "pagerduty": (make(pagerduty.PagerDutyNotifier, routing_key="R" * 32, source="shop"),
                      lambda n, x: n.events(x)),
        "alertmanager": (make(alertmanager.AlertmanagerNotifier, url="http://am:9093"),
                         lambda n, x: n.alerts(x)),
        "command": (make(command_notifier.CommandNotifier, command=["true"]),
                    lambda n, x: (n.stdin(x), n.environment(x, "t"))),
    }


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    single = sample_notification("firing")
    group = dataclasses.replace(single, incidents=tuple(
        dataclasses.replace(sample_incident(i), fingerprint=f"fp{i:04d}", id=i,
                            labels={"provider": f"p{i:03d}", "region": "eu"}) for i in range(100)))
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"median of {args.repeat} runs")
    print(f"{'notifier':<13} {'single ms':>10} {'group(100) ms':>14} {'ratio':>7}")
    for name, (notifier, render) in notifiers().items():
        one = median_ms(lambda: render(notifier, single), args.repeat)
        many = median_ms(lambda: render(notifier, group), max(20, args.repeat // 10))
        print(f"{name:<13} {one:>10.2f} {many:>14.2f} {many / one:>7.1f}")


if __name__ == "__main__":
    main()
