"""Schema migrations of the store (sqlite-utils `Migrations`): append, never edit."""

import time

from sqlite_utils import Migrations

migrations = Migrations("alertd")


@migrations()
def m001_initial(db):
    db["series"].create({"id": int, "key": str, "name": str, "labels": str, "source": str,
                         "first_ts": float}, pk="id")
    db["series"].create_index(["key"], unique=True)
    # One b-tree keyed by (time, series), like a TSDB block: a tick's appends land on the
    # last pages (3x cheaper than a per-series index at 10k series); history reads are range
    # scans over time, pruning is a range delete.
    db.execute("CREATE TABLE samples (ts FLOAT NOT NULL, series_id INTEGER NOT NULL, value FLOAT, "
               "PRIMARY KEY (ts, series_id)) WITHOUT ROWID")
    db["incidents"].create({
        "id": int, "fingerprint": str, "rule": str, "labels": str, "state": str,
        "severity": str, "started_at": float, "fired_at": float, "resolved_at": float,
        "ok_since": float, "count": int, "last_value": float, "peak_score": float,
        "reason": str, "annotations": str,
    }, pk="id")
    db["incidents"].create_index(["fingerprint"])
    db["incidents"].create_index(["state"])
    db["outbox"].create({
        "id": int, "idempotency_key": str, "receiver": str, "integration": int,
        "notifier": str, "kind": str, "payload": str, "created_at": float, "status": str,
        "attempts": int, "next_attempt_at": float, "sent_at": float, "last_error": str,
        "answer": str,
    }, pk="id", defaults={"status": "pending", "attempts": 0})
    db["outbox"].create_index(["idempotency_key", "receiver", "integration"], unique=True)
    db["outbox"].create_index(["status", "next_attempt_at"])
    db["kv"].create({"key": str, "value": str}, pk="key")


@migrations()
def m002_incident_expected_range(db):
    # What notifications show as "value against the expected range" and "score".
    for column in ("expected_low", "expected_high", "score", "threshold"):
        db["incidents"].add_column(column, float)


@migrations()
def m003_series_of_a_source(db):
    # A series is identified with its source: two sources emitting the same name and labels
    # no longer share one series (issue 16). Ids stay, so every sample keeps its series; ids
    # are never reused (AUTOINCREMENT), because series silent past `retention` are dropped
    # and a point stamped ahead of its poll may outlive its row until it is pruned.
    # `last_ts`: when the series was last in a poll (daemon clock). Existing series start at
    # the time of the migration: a scan of every sample for the newest of each would hold the
    # first start of a big store (16 GiB at the default retention) past systemd's start
    # timeout; a series silent since is dropped one retention later.
    db.execute("CREATE TABLE series_new (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, "
               "name TEXT, labels TEXT, source TEXT NOT NULL DEFAULT '', first_ts FLOAT, last_ts FLOAT)")
    db.execute("INSERT INTO series_new (id, key, name, labels, source, first_ts, last_ts) "
               "SELECT id, key, name, labels, COALESCE(source, ''), first_ts, ? FROM series", [time.time()])
    db.execute("DROP TABLE series")
    db.execute("ALTER TABLE series_new RENAME TO series")
    db.execute("CREATE UNIQUE INDEX idx_series_source_key ON series (source, key)")
    db.execute("CREATE INDEX idx_series_key ON series (key)")


@migrations()
def m004_sample_chunks(db):
    # Samples sealed into compressed per-series chunks (issue 20, alertd/store/sample_chunks.py).
    # The `samples` table stays as the head: ticks append there as before, and the rows an
    # older store holds are sealed into chunks by the prune job, window by window, so a big
    # store's first start does no more work than before and keeps every sample.
    # Chunks are rows of a rowid table whose id is (window start in minutes, series id): in
    # time order like the head, so sealing appends and pruning deletes a range, and a chunk of
    # a few hundred bytes to 4 KiB stays on its page (a WITHOUT ROWID table spills rows over
    # about 1 KiB into overflow pages of their own: 3 times the size).
    db.execute("CREATE TABLE sample_chunks (id INTEGER PRIMARY KEY, start_ts FLOAT NOT NULL, end_ts FLOAT NOT NULL, "
               "n INTEGER NOT NULL, times_id INTEGER NOT NULL, data BLOB NOT NULL)")
    db.execute("CREATE TABLE sample_times (id INTEGER PRIMARY KEY AUTOINCREMENT, start_ts FLOAT NOT NULL, "
               "end_ts FLOAT NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL)")
