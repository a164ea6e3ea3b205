"""Memory of saving the default detector's state (issue 20: `surprise` saves it every `retrain`).

    nice -n 10 .venv/bin/python bench/model_save.py [--series 100000] [--runs 3] [--root PATH ...]
    nice -n 10 .venv/bin/python bench/model_save.py --write-only 200 --runs 5

Each run is a fresh process (`--root`: the checkout whose alertd it imports; several roots
take turns run by run, so they see the same load). In it, the real daemon (`Daemon`, a store
on disk, the trainer's worker thread and the event loop as in production) polls n series
(`bench_series`, one rule `{type: surprise}` with its defaults) until the first fit has
made and saved the state, then a few more polls. That is the steady state: its RSS is read
after `gc.collect()` and `malloc_trim(0)` (what the first fit freed is not counted as free
room for the second), and VmHWM is reset (/proc/self/clear_refs "5"). Then the clock moves on
`retrain` (6 h) and the trainer's scheduled fit runs as the daemon runs it: `fit()` snapshots
the state in the worker thread, `_job` serialises it there, `_finish` installs and saves it
on the loop. Reported: the peak (VmHWM) above the steady RSS, the longest the event loop was
held meanwhile (a task asking for the loop every 5 ms), the stored size. Then, in the same
process after the daemon has closed (a stop saves the state once more), the stored model is
loaded back the way a start restores it (`store.models.load` + `load_model`): peak above the
RSS before it. `--write-only MIB` times just the store's write, in pieces against one bound
blob.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def settle() -> float:
    """RSS (MiB) once garbage is collected and malloc's free memory returned; resets VmHWM."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    Path("/proc/self/clear_refs").write_text("5")
    return status_kib("VmRSS") / 1024


def peak() -> float:
    return status_kib("VmHWM") / 1024


async def child_run(n: int, directory: Path, root: Path = ROOT) -> dict:
    sys.path.insert(0, str(root / "bench"))  # its scale_common puts `root` first on the path
    import scale_common as sc

    import alertd
    from alertd.clock import FakeClock
    from alertd.config.load import load_config
    from alertd.daemon.core import Daemon
    from alertd.store import Store

    sc.quiet_logs()
    path = sc.write_config(directory, n, detector="{type: surprise}")
    reg = sc.registry()
    config = load_config(path, reg, environ={})
    clock = FakeClock(time.time())
    daemon = Daemon(config, reg, store_path=directory / "alertd.db", clock=clock)
    await daemon.open()
    (st,) = daemon.trainer.rules
    det = st.runtime.detector

    async def fitted(count: int, st=st) -> None:  # (st: the caller deletes its own later)
        while st.in_flight is not None or st.fits < count:
            if st.failures:
                raise RuntimeError(st.last_error)
            await asyncio.sleep(0.05)

    for _ in range(det.min_history + 1):
        clock.advance(sc.INTERVAL)
        await daemon.poll("mem")
    await fitted(1)  # the first fit: the state of every series, saved
    for _ in range(3):
        clock.advance(sc.INTERVAL)
        await daemon.poll("mem")
    steady = settle()

    held = [0.0]
    stop = asyncio.Event()

    async def watch() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            held[0] = max(held[0], now - last - 0.005)
            last = now

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0.05)
    clock.advance(float(det.params.retrain))
    started = time.perf_counter()
    daemon.trainer.poll()  # due: "schedule" (the 6-hourly save)
    assert st.in_flight is not None, "the scheduled fit was not submitted"
    await fitted(2)
    seconds = time.perf_counter() - started
    stop.set()
    await watcher
    save_peak = peak()
    stored = daemon.store.models.list()[0]
    await daemon.close()
    del daemon, st

    before_load = settle()
    store = Store(directory / "alertd.db")
    row = store.models.load("latency")
    model = det.load_model(row.blob)
    load_peak = peak()
    assert len(model.keys) == n, len(model.keys)
    store.close()
    assert Path(alertd.__file__).resolve().is_relative_to(root), alertd.__file__
    return {"series": n, "steady_mib": round(steady, 1), "save_peak_mib": round(save_peak, 1),
            "save_above_mib": round(save_peak - steady, 1), "fit_and_save_s": round(seconds, 2),
            "loop_held_ms": round(held[0] * 1000, 1), "stored_mib": round(stored["size"] / 2**20, 1),
            "load_above_mib": round(load_peak - before_load, 1)}


def write_only(mib: int, runs: int) -> None:
    """The write alone, in this process: a blob of `mib` MiB as pieces into a `zeroblob` row
    (`ModelStore.save`) against the same bytes bound to one INSERT (the way before pieces),
    alternating, on a store in a temporary directory."""
    import numpy as np

    from alertd.model_blob import dump_pieces
    from alertd.store import Store
    from alertd.store.fitted_models import StoredModel

    model = {"a": np.random.default_rng(1).random((mib * 2**20 // 8 // 256, 256))}
    pieces, joined = dump_pieces(model), pickle.dumps(model, protocol=5)
    times: dict[str, list[float]] = {"pieces (zeroblob row, then the pieces)": [], "one bound blob": []}
    with tempfile.TemporaryDirectory(prefix="alertd-model-write-") as tmp:
        store = Store(Path(tmp) / "a.db")
        store.checkpointer()  # as in the daemon: commits leave the log to the checkpoint job
        for _ in range(runs):
            started = time.perf_counter()
            store.models.save(StoredModel("r", "d", "v", 0.0, 0.0, 0, 0, 0.0, len(pieces), pieces))
            times["pieces (zeroblob row, then the pieces)"].append(time.perf_counter() - started)
            started = time.perf_counter()
            with store.db.atomic():
                store.db.execute("INSERT OR REPLACE INTO models (rule, format, blob) VALUES ('r', 1, ?)", [joined])
            times["one bound blob"].append(time.perf_counter() - started)
        store.close()
    for name, values in times.items():
        print(f"{name}: median {statistics.median(values):.3f} s, {min(values):.3f}-{max(values):.3f} s "
              f"({runs} runs, {mib} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--root", type=Path, action="append", help="a checkout to measure (default: this one)")
    parser.add_argument("--write-only", type=int, metavar="MIB",
                        help="time only the store's write of a blob of MIB MiB, in pieces and bound")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_only:
        sys.path.insert(0, str(HERE))
        from scale_common import machine

        print(machine())
        write_only(args.write_only, max(args.runs, 1))
        return
    if args.child:
        with tempfile.TemporaryDirectory(prefix="alertd-model-save-") as tmp:
            print(json.dumps(asyncio.run(child_run(args.series, Path(tmp), args.child.resolve()))))
        return
    sys.path.insert(0, str(HERE))
    from scale_common import machine

    roots = [r.resolve() for r in (args.root or [ROOT])]
    names = [subprocess.run(["git", "-C", str(r), "log", "-1", "--format=%h"], capture_output=True,
                            text=True).stdout.strip() or str(r) for r in roots]
    print(machine())
    results: list[list[dict]] = [[] for _ in roots]
    for run in range(args.runs):
        for i, root in enumerate(roots):
            # the script of this checkout, the alertd of `root` (PYTHONPATH comes before the venv's)
            out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(root), "--series",
                                  str(args.series)], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1",
                                      "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
            if out.returncode:
                sys.exit(f"run {run + 1} of {names[i]} failed:\n{out.stderr[-3000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            results[i].append(result)
            print(f"run {run + 1} {names[i]}: {result}", flush=True)
    print(machine())
    for name, runs in zip(names, results):
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{name} (median of {len(runs)}): steady RSS {med['steady_mib']:.0f} MiB; save peak "
              f"+{med['save_above_mib']:.0f} MiB above it ({med['save_peak_mib']:.0f} MiB); fit and save "
              f"{med['fit_and_save_s']:.2f} s, loop held at most {med['loop_held_ms']:.0f} ms; stored "
              f"{med['stored_mib']:.0f} MiB; load +{med['load_above_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
