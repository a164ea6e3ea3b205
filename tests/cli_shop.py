"""What the CLI tests share: a shop with two notified incidents in a real store, and `cli()`
that runs a command in-process and returns its exit code, stdout and stderr."""

from __future__ import annotations

import pytest
from routing_helpers import BASE, Shop

from alertd.cli.entry import main


@pytest.fixture
def shop(write_config, registry, clock, tmp_path):
    s = Shop(write_config, registry, clock, tmp_path, BASE.replace("group_wait: 30s", "group_wait: 0s"))
    s.feed({"a": 95, "b": 96})
    yield s
    s.close()


def cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
