"""State a notifier keeps between the notices of one incident (its own migration set).

Slack in bot-token mode remembers the `ts` of the first message so later notices (repeats,
the resolve) go into its thread; email remembers the Message-ID of the first mail so later
mails carry In-Reply-To/References. Rows are keyed by a notifier's scope (type, receiver,
destination) and a key (fingerprint and incident id), and deleted once the incident is
resolved; leftovers (an incident whose receiver was removed from the config) go after
`history_retention` (alertd/store/history_retention.py).
"""

from __future__ import annotations

import json

from sqlite_utils import Migrations

migrations = Migrations("alertd-notifiers")


@migrations()
def m001_notifier_state(db):
    db["notifier_state"].create({"scope": str, "key": str, "value": str, "updated_at": float},
                                pk=("scope", "key"))
    db["notifier_state"].create_index(["updated_at"])


class NotifierState:
    """Small JSON values per (scope, key), written by notifiers after a successful send."""

    def __init__(self, db):
        self.db = db

    def get(self, scope: str, key: str, default=None):
        rows = list(self.db["notifier_state"].rows_where("scope = ? AND key = ?", [scope, key]))
        return json.loads(rows[0]["value"]) if rows else default

    def put(self, scope: str, key: str, value, now: float) -> None:
        self.db["notifier_state"].upsert({"scope": scope, "key": key, "value": json.dumps(value),
                                          "updated_at": now}, pk=("scope", "key"))

    def delete(self, scope: str, key: str) -> None:
        self.db["notifier_state"].delete_where("scope = ? AND key = ?", [scope, key])
