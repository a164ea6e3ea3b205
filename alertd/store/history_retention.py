"""How long the alert stage's leftovers are kept: `history_retention` (default 30 days).

Samples leave the store after `retention`; without this, everything else the daemon writes
stayed forever, and a churny config (a rule whose series blip in and out of anomaly) grew
the store by megabytes an hour. Past `history_retention`, the prune job deletes:

- resolved incidents (`resolved_at` before the cutoff) and their history events, unless a
  route group still holds them (its next flush may still report them resolved);
- notices that are done with (sent, failed or folded; never a pending one) created before
  the cutoff, and delivery attempts made before it;
- silences that ended before the cutoff (Alertmanager drops expired silences after its
  `--data.retention` alike);
- notifier state (Slack thread ids, email Message-IDs) not written since the cutoff.

Each call deletes at most `limit` rows of each kind, so the daemon can yield to the event
loop between steps (alertd/daemon/polls.py). Freed pages are reused by SQLite: the file
stops growing, it does not shrink (`VACUUM` offline shrinks it).
"""

from __future__ import annotations

from sqlite_utils import Migrations

history_retention_migrations = Migrations("alertd-history-retention")
STEP = 500  # rows of each kind per transaction: the daemon yields to the loop between steps


@history_retention_migrations()
def m001_indexes_for_retention(db):
    # the prune's look-ups: resolved incidents by age, notices by age (ids follow time only
    # roughly: the clock can step back)
    db.execute("CREATE INDEX IF NOT EXISTS incidents_resolved_at ON incidents(resolved_at) "
               "WHERE state = 'resolved'")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_created_at ON outbox(created_at)")


# (kind, the SELECT of one step's ids, the DELETEs that take them)
_STEPS = (
    ("incidents",
     "SELECT id FROM incidents i WHERE state = 'resolved' AND resolved_at < ? AND NOT EXISTS "
     "(SELECT 1 FROM group_members g WHERE g.fingerprint = i.fingerprint AND g.incident_id = i.id) LIMIT ?",
     ("DELETE FROM incident_history WHERE incident_id IN ({ids})", "DELETE FROM incidents WHERE id IN ({ids})")),
    ("notices",
     "SELECT id FROM outbox WHERE created_at < ? AND status != 'pending' LIMIT ?",
     ("DELETE FROM outbox WHERE id IN ({ids})",)),
    ("delivery_attempts",
     "SELECT id FROM deliveries WHERE at < ? LIMIT ?",
     ("DELETE FROM deliveries WHERE id IN ({ids})",)),
    ("silences",
     "SELECT id FROM silences WHERE ends_at < ? LIMIT ?",
     ("DELETE FROM silences WHERE id IN ({ids})",)),
    ("notifier_state",
     "SELECT rowid FROM notifier_state WHERE updated_at < ? LIMIT ?",
     ("DELETE FROM notifier_state WHERE rowid IN ({ids})",)),
)


class HistoryRetention:
    """Deletes what is older than `history_retention`, a step at a time."""

    def __init__(self, db):
        self.db = db

    def prune_step(self, before: float, limit: int = STEP) -> dict[str, int]:
        """Delete up to `limit` rows of each kind older than `before`; the counts deleted
        (all 0 when nothing is left). Call inside a transaction."""
        counts = {}
        for kind, select, deletes in _STEPS:
            ids = [r[0] for r in self.db.execute(select, [before, limit])]
            if ids:
                marks = ",".join("?" * len(ids))
                for delete in deletes:
                    self.db.execute(delete.format(ids=marks), ids)
            counts[kind] = len(ids)
        return counts
