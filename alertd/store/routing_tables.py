"""Tables of the incident lifecycle, routing and delivery (their own migration set).

Applied after the core set (`alertd/store/migrations.py`); append migrations, never edit one.

- `incidents` gains acknowledgement, flapping, silencing, inhibition and notification columns,
  and a unique index that makes "one open incident per fingerprint" a database fact.
- `alert_states`: per-fingerprint evaluation history for flap detection.
- `incident_history`: every event of an incident (fired, acknowledged, notified, ...).
- `route_groups`, `group_members`, `notify_log`: Alertmanager's aggregation groups, their
  timers and the per-integration notification log, so timers survive restarts and reloads.
- `silences`; `deliveries`: the ledger of every delivery attempt.
- `outbox` gains the group it came from, a delivery deadline and digest folding.
"""

from sqlite_utils import Migrations

routing_migrations = Migrations("alertd-routing")


@routing_migrations()
def m001_lifecycle_routing_delivery(db):
    for column, kind in (("flapping", int), ("cause", str), ("last_anomalous_at", float),
                         ("resolution", str), ("acknowledged_at", float), ("acknowledged_by", str),
                         ("ack_comment", str), ("resolved_by", str), ("silenced_by", str),
                         ("inhibited_by", str), ("notified_at", float), ("suppressed", str)):
        db["incidents"].add_column(column, kind)
    db.execute("CREATE UNIQUE INDEX incidents_one_open ON incidents(fingerprint) "
               "WHERE state IN ('pending', 'firing')")

    db["alert_states"].create({"fingerprint": str, "rule": str, "history": int, "evaluations": int,
                               "flapping": int, "updated_at": float}, pk="fingerprint")
    db["incident_history"].create({"id": int, "incident_id": int, "fingerprint": str, "at": float,
                                   "event": str, "detail": str, "actor": str}, pk="id")
    db["incident_history"].create_index(["incident_id"])

    db["route_groups"].create({"key": str, "route_id": str, "receiver": str, "labels": str,
                               "created_at": float, "next_flush_at": float, "last_flush_at": float,
                               "flushes": int, "changed": int}, pk="key", defaults={"flushes": 0, "changed": 1})
    db["route_groups"].create_index(["next_flush_at"])
    db.execute("CREATE TABLE group_members (group_key TEXT NOT NULL, fingerprint TEXT NOT NULL, "
               "incident_id INTEGER NOT NULL, state TEXT, updated_at FLOAT, "
               "PRIMARY KEY (group_key, fingerprint, incident_id)) WITHOUT ROWID")
    db["group_members"].create_index(["fingerprint"])
    db.execute("CREATE TABLE notify_log (group_key TEXT NOT NULL, integration INTEGER NOT NULL, "
               "firing TEXT, resolved TEXT, flapping TEXT, notified_at FLOAT, "
               "PRIMARY KEY (group_key, integration)) WITHOUT ROWID")

    db["silences"].create({"id": str, "matchers": str, "starts_at": float, "ends_at": float,
                           "created_by": str, "comment": str, "expire_on_resolve": int,
                           "created_at": float, "updated_at": float}, pk="id")
    db["silences"].create_index(["ends_at"])

    db["deliveries"].create({"id": int, "outbox_id": int, "idempotency_key": str, "receiver": str,
                             "integration": int, "notifier": str, "kind": str, "attempt": int,
                             "at": float, "outcome": str, "error": str, "answer": str,
                             "duration_ms": float}, pk="id")
    db["deliveries"].create_index(["outbox_id"])
    db["deliveries"].create_index(["at"])

    for column, kind in (("group_key", str), ("deadline_at", float), ("folded_into", int)):
        db["outbox"].add_column(column, kind)
