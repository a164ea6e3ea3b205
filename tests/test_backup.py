"""`alertd backup`: a consistent copy of the store, taken while it is open for writing."""

from __future__ import annotations

import sqlite3

from alertd.cli.entry import main
from alertd.model import Incident
from alertd.store import Store


def test_backup_copies_a_store_that_is_being_written(tmp_path, capsys):
    store = Store(tmp_path / "live.db")
    store.incidents.save(Incident("fp1", "r", {}, "firing", "critical", started_at=1.0))
    with store.atomic():  # a write in progress in the daemon: not part of the snapshot
        store.incidents.save(Incident("fp2", "r", {}, "firing", "critical", started_at=2.0))
        assert main(["backup", "--store", str(tmp_path / "live.db"), str(tmp_path / "copy.db")]) == 0
    store.close()
    out = capsys.readouterr().out
    assert out.startswith(f"backed up {tmp_path / 'live.db'} to {tmp_path / 'copy.db'}")
    assert "1 incidents, 0 pending notifications" in out
    with sqlite3.connect(tmp_path / "copy.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert db.execute("SELECT fingerprint FROM incidents").fetchall() == [("fp1",)]
    reopened = Store(tmp_path / "copy.db")  # a restore is opening the copy as the store
    assert [i.fingerprint for i in reopened.incidents.open()] == ["fp1"]
    reopened.close()


def test_backup_never_overwrites_and_names_a_missing_store(tmp_path, capsys):
    (tmp_path / "exists.db").write_text("")
    Store(tmp_path / "live.db").close()
    assert main(["backup", "--store", str(tmp_path / "live.db"), str(tmp_path / "exists.db")]) == 1
    assert main(["backup", "--store", str(tmp_path / "none.db"), str(tmp_path / "x.db")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {tmp_path / 'exists.db'} already exists; choose a new file name (backups never overwrite)",
                   f"error: the store {tmp_path / 'none.db'} does not exist; check --store or the config's store key"]
