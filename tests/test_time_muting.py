"""Routes muted by time intervals: nothing is sent inside the window, nothing is lost after it.

The fake clock starts on Sunday 2025-06-15 15:06:40 UTC.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from routing_helpers import BASE, Shop

MONDAY = datetime(2025, 6, 16, 0, 0, tzinfo=timezone.utc).timestamp()
INTERVALS = """\
time_intervals:
  - name: weekend
    time_intervals:
      - weekdays: ['saturday:sunday']
  - name: workdays
    time_intervals:
      - weekdays: ['monday:friday']
"""


def config(key: str) -> str:
    return INTERVALS + BASE + f"""  routes:
    - matchers: ['rule="cpu_high"']
      {key}: [{'weekend' if key == 'mute_time_intervals' else 'workdays'}]
"""


@pytest.mark.parametrize("key", ["mute_time_intervals", "active_time_intervals"])
def test_a_muted_route_sends_after_the_window(write_config, registry, clock, tmp_path, key):
    shop = Shop(write_config, registry, clock, tmp_path, config(key))
    try:
        assert datetime.fromtimestamp(clock.now(), timezone.utc).weekday() == 6  # Sunday
        shop.feed({"a": 95, "b": 95})
        shop.advance(30)
        assert shop.flush() == 0
        a = shop.incident("a")
        assert a.notified_at is None and a.suppressed in (
            "muted by the time interval weekend", "outside the active time intervals workdays")
        shop.advance(60, {"a": 10, "b": 95})  # a resolves inside the window
        for _ in range(3):
            shop.advance(300)
            shop.flush()
        assert shop.notices() == []
        clock.set(MONDAY + 1)
        shop.flush()
        # the group is told everything that is due: b fires, and a (resolved) is kept for it
        assert shop.notices() == [("firing", "team", ("a:resolved", "b:firing"))]
    finally:
        shop.close()
