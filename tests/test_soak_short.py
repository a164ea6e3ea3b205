"""A short soak (bench/soak.py scaled down): 3 simulated hours of the shop at 100 series on
the fake clock. Incidents fire and resolve, the outbox drains, no file descriptor leaks and
the store stays sound. (RSS is measured by the 24-hour run in bench/, not asserted here.)"""

from __future__ import annotations

import asyncio
import sys

from daemon_process import ROOT
from servers import RecordingHTTPServer

sys.path.insert(0, str(ROOT / "bench"))

import soak  # noqa: E402


def test_three_simulated_hours_drain_the_outbox_and_leak_no_descriptors(tmp_path):
    with RecordingHTTPServer() as web:
        result = asyncio.run(soak.soak(3, 100, 60, tmp_path, web))
    assert result["incidents_fired"] >= 3 and result["notices_delivered"] >= 3  # (grouped by rule)
    assert result["outbox_pending_at_end"] == 0 and result["integrity_check"] == "ok"
    fds = result["hourly_open_fds"]
    assert max(fds[1:]) <= fds[1] + 2  # after the first hour (connections open), flat
