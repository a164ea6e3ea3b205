"""httpx's transport (httpcore) asks sniffio which async library runs, on every request.

Without sniffio installed, each `import sniffio` inside httpcore failed after searching every
directory of sys.path: about 90 us a call and seven calls a request, all on the event loop
(found profiling bench/latency.py: 6 of 36 s in importlib's path finder). sniffio is a core
dependency now; this keeps it one.
"""

from __future__ import annotations

import asyncio
import sys

import httpcore._synchronization as sync


def test_httpcore_finds_sniffio_instead_of_searching_the_path_on_every_request(monkeypatch):
    async def ask():
        return [sync.current_async_library() for _ in range(5)]

    asyncio.run(ask())  # the first request imports it
    searches = []

    class Watch:
        @staticmethod
        def find_spec(name, path=None, target=None):
            searches.append(name)
            return None

    monkeypatch.setattr(sys, "meta_path", [Watch, *sys.meta_path])
    assert asyncio.run(ask()) == ["asyncio"] * 5
    assert "sniffio" not in searches  # later ones find it in sys.modules: no finder is asked
