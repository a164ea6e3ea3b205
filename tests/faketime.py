"""Step the wall clock of a child process, as NTP would, with Debian's libfaketime.

`FakeTime(dir).env()` is the environment that makes a child's CLOCK_REALTIME (time.time(),
datetime.now()) follow an offset read from a file at every call; `step(seconds)` moves it.
CLOCK_MONOTONIC is left alone (FAKETIME_DONT_FAKE_MONOTONIC), exactly as a real step leaves
it: asyncio's timers keep running, only the wall clock jumps. (libfaketime then breaks
`time.sleep` in the child with EINVAL; alertd does not call it.)
"""

from __future__ import annotations

import glob
from pathlib import Path


def library() -> str | None:
    """libfaketime's multi-threaded variant (Debian package faketime), if installed."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1") + glob.glob("/usr/lib/faketime/libfaketimeMT.so.1"))
    return found[0] if found else None


class FakeTime:
    """The offset file of one child process's wall clock."""

    def __init__(self, directory: Path):
        self.file = Path(directory) / "faketime.offset"
        self.offset = 0.0
        self._write()

    def _write(self) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(f"{self.offset:+.0f}\n")
        tmp.replace(self.file)  # atomic: the child never reads a half-written offset

    def env(self) -> dict[str, str]:
        lib = library()
        if lib is None:
            raise RuntimeError("libfaketime is not installed: apt-get install faketime (scripts/system-deps.sh)")
        return {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": str(self.file), "FAKETIME_NO_CACHE": "1",
                "FAKETIME_DONT_FAKE_MONOTONIC": "1"}

    def step(self, seconds: float) -> None:
        """Step the child's wall clock by `seconds` (negative: back), now."""
        self.offset += seconds
        self._write()
