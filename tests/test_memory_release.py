"""Freed memory goes back to the system (alertd/memory_trim.py), in the daemon by its own
scheduled job (`daemon:memory`), run here on the real scheduler; the same job collects the
cyclic garbage that the daemon's raised GC thresholds would let wait for an hour or more
(alertd/daemon/gc_tuning.py).

glibc gives freed memory back only from the top of its heaps, past a threshold that grows
with the largest block freed. These tests make such a heap on purpose (a big block freed,
then many blocks of which most are freed) and check that the memory comes back, as the
operating system counts it (/proc's RssAnon).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import weakref

from configs import config_text
from scheduler_helpers import run_every_job_once

from alertd import memory_trim
from alertd.clock import SystemClock
from alertd.config.load import load_config
from alertd.daemon.core import Daemon

FRAGMENT = textwrap.dedent("""
    import numpy as np
    big = np.ones(8_000_000); del big  # 64 MB freed: glibc's trim threshold rises to 128 MB
    blocks = [bytearray(2000 + (i % 7) * 300) for i in range(60_000)]
    arrays = [np.ones(5_000 + i % 11) for i in range(2_000)]
    keep = blocks[::4] + arrays[::4]  # what stays pins the heap around the holes
    del blocks, arrays
""")


def _fragment() -> list:
    """Leave about 150 MB of holes in this process's heap; returns what pins them."""
    scope: dict = {}
    exec(FRAGMENT, scope)
    return scope["keep"]


def test_trim_hands_a_fragmented_heaps_free_pages_back_to_the_system():
    script = FRAGMENT + textwrap.dedent("""
        from alertd import memory_trim
        before = memory_trim.anonymous_rss()
        released = memory_trim.trim()
        after = memory_trim.anonymous_rss()
        print(before, released, after, sum(len(k) if isinstance(k, bytearray) else k.nbytes for k in keep))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    before, released, after, kept = map(int, out.stdout.split())
    assert released > 50 * 2**20, out.stdout  # the holes came back
    assert before - after >= released * 0.9  # as the system counts it
    assert after > kept  # and what is in use stayed


def test_the_daemons_memory_job_runs_on_the_real_scheduler_and_counts_what_it_gave_back(write_config, registry,
                                                                                           tmp_path):
    assert memory_trim.available()  # glibc (Debian): the job is scheduled
    config = load_config(write_config(config_text(sources={"app": {"type": "test_list", "every": "1m"}})),
                         registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=SystemClock())
        await d.start()
        try:
            assert "daemon:memory" in {job.id for job in d.scheduler.get_jobs()}
            keep = _fragment()
            events = await run_every_job_once(d.scheduler, only={"daemon:memory"})
            released = d.metrics.registry.get_sample_value("alertd_memory_released_bytes_total")
            ran = d.metrics.registry.get_sample_value("alertd_scheduler_jobs_total",
                                                      {"job": "daemon:memory", "outcome": "ok"})
            del keep
            return events["daemon:memory"].exception, released, ran
        finally:
            await d.drain()

    error, released, ran = asyncio.run(main())
    assert error is None and ran == 1
    assert released > 50 * 2**20


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self):
        self.me = self


def test_the_memory_job_collects_the_cycles_libraries_leave_behind(write_config, registry, tmp_path):
    from sklearn.utils.parallel import Parallel, delayed

    config = load_config(write_config(config_text(sources={"app": {"type": "test_list", "every": "1m"}})),
                         registry, environ={})

    async def main():
        d = Daemon(config, registry, store_path=tmp_path / "alertd.db", clock=SystemClock())
        await d.start()  # freezes what start-up built and raises the thresholds (gc_tuning.tune_gc)
        enabled = gc.isenabled()
        gc.disable()  # no automatic collection may get there first
        try:
            # what each PyOD KNN score does inside scikit-learn's kneighbors: a joblib
            # Parallel, which refers to itself through its backend once it has run
            runner = Parallel(n_jobs=1, prefer="threads")
            assert runner(delayed(abs)(x) for x in (-1, 2)) == [1, 2]
            node = _Node()
            gone = [weakref.ref(runner), weakref.ref(node)]
            del runner, node
            alive_before = [ref() is not None for ref in gone]
            events = await run_every_job_once(d.scheduler, only={"daemon:memory"})
            collected = d.metrics.registry.get_sample_value("alertd_garbage_collected_objects_total")
            return events["daemon:memory"].exception, alive_before, [ref() is not None for ref in gone], collected
        finally:
            if enabled:
                gc.enable()
            await d.drain()

    error, alive_before, alive_after, collected = asyncio.run(main())
    assert error is None
    assert alive_before == [True, True]  # reference counts alone do not free them
    assert alive_after == [False, False]
    assert collected >= 2
