"""Shared fixtures: a fake clock, a registry of built-in plugins, config files in tmp dirs."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from alertd.clock import FakeClock
from alertd.plugins import load_registry

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))


@pytest.fixture
def clock():
    return FakeClock(1_750_000_000.0)


@pytest.fixture(scope="session")
def registry():
    """Built-in plugins plus the fixture plugins of tests/plugins (no entry points)."""
    return load_registry([TESTS / "plugins"], entrypoints=False)


@pytest.fixture
def write_config(tmp_path):
    def write(text: str, name: str = "alertd.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return path

    return write


def pytest_terminal_summary(terminalreporter):
    """How many hostile-input cases each target of tests/test_fuzz_*.py ran (see fuzzing.py)."""
    from fuzzing import report

    report(terminalreporter)
