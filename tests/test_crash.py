"""Crash: the real daemon killed with SIGKILL at random moments and restarted each time.

A few kills here (the 50-kill run is bench/crash.py): no fired incident goes un-notified,
a notice delivered twice always carries the same idempotency key and body, never more
duplicates than kills, and the store passes `PRAGMA integrity_check` after every kill.
"""

from __future__ import annotations

import crash_harness


def test_sigkill_at_random_moments_loses_nothing_and_keeps_the_store_sound(tmp_path):
    report = crash_harness.run(tmp_path, kills=4, seed=9, max_wait=3.5, log=lambda _: None)
    assert report.problems == []
    assert report.kills == 4 and report.integrity == ["ok"] * 5
    assert report.fired > 0 and report.delivered >= report.fired  # there was something to lose
    assert report.lost == []
