"""systemd/alertd.service: `systemd-analyze verify` passes and `security` rates it 2.0 or lower.

The unit's ExecStart points at /opt/alertd/venv; the test checks a copy pointing at this
venv's `alertd` (verify wants the binary to exist). scripts/system-deps.sh installs systemd's
tools where they are missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parent.parent / "systemd" / "alertd.service"


@pytest.fixture
def unit(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run scripts/system-deps.sh (apt-get install systemd)"
    alertd = Path(sys.executable).parent / "alertd"
    assert alertd.exists()
    copy = tmp_path / "alertd.service"
    copy.write_text(UNIT.read_text().replace("/opt/alertd/venv/bin/alertd", str(alertd)))
    return analyze, copy


def test_the_unit_verifies_cleanly(unit):
    analyze, copy = unit
    run = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "" and run.stdout.strip() == ""


def test_the_unit_is_rated_2_or_lower(unit):
    analyze, copy = unit
    run = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20", "--no-pager", str(copy)],
                         capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for alertd.service: (\d+\.\d)", run.stdout)
    assert match, run.stdout + run.stderr
    assert float(match.group(1)) <= 2.0 and run.returncode == 0


def test_the_unit_uses_notify_watchdog_reload_and_its_own_directories():
    text = UNIT.read_text()
    for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
                 "StateDirectory=alertd", "ConfigurationDirectory=alertd", "DynamicUser=yes",
                 "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
                 "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"]:
        assert line in text + "\n", line
    assert re.search(r"^WatchdogSec=\d+", text, re.M)
    assert int(re.search(r"^LimitNOFILE=(\d+)$", text, re.M).group(1)) >= 65536  # not systemd's 1,024
    assert re.search(r"^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$", text, re.M)
    assert "--store /var/lib/alertd/alertd.db" in text


def test_the_shard_drop_in_makes_a_template_that_verifies(tmp_path):
    """systemd/alertd@.service.d/shard.conf over a copy of the unit as alertd@.service
    (docs/scaling.md): `systemd-analyze verify alertd@0.service` reads both and passes."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run scripts/system-deps.sh (apt-get install systemd)"
    alertd = str(Path(sys.executable).parent / "alertd")
    drop_in = UNIT.parent / "alertd@.service.d" / "shard.conf"
    (tmp_path / "alertd@.service").write_text(UNIT.read_text().replace("/opt/alertd/venv/bin/alertd", alertd))
    (tmp_path / "alertd@.service.d").mkdir()
    text = drop_in.read_text()
    assert "--shard %i/${ALERTD_SHARDS}" in text and "StateDirectory=alertd/shard-%i" in text
    (tmp_path / "alertd@.service.d" / "shard.conf").write_text(text.replace("/opt/alertd/venv/bin/alertd", alertd))
    run = subprocess.run([analyze, "verify", "alertd@0.service"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"})
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == ""
