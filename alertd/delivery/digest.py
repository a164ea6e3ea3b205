"""Folding notices held back by a rate limit into one digest notice.

When an integration has more due notices than tokens, all but the ones it can afford are
folded into a single "digest" notification: its incidents are the union of theirs (latest
state of each), its text lists their titles. The digest is a new outbox row; the folded rows
are marked `folded` with its id, and each gets a ledger entry, in one transaction, so nothing
is dropped and nothing is sent twice.
"""

from __future__ import annotations

from ..model import Notification


def digest_of(rows, receiver: str, now: float) -> Notification:
    """One digest notification standing for `rows` (outbox rows of one integration)."""
    incidents, seen = [], {}
    for row in sorted(rows, key=lambda r: r.id):
        for inc in row.notification.incidents:
            key = (inc.fingerprint, inc.id)
            if key in seen:
                incidents[seen[key]] = inc  # keep the latest state of each incident
            else:
                seen[key] = len(incidents)
                incidents.append(inc)
    titles = [f"- {row.notification.title}" for row in sorted(rows, key=lambda r: r.id)]
    ids = sorted(row.id for row in rows)
    firing = sum(1 for i in incidents if i.state != "resolved")
    title = (f"[DIGEST] {len(rows)} notices held back by the rate limit of {receiver} "
             f"({firing} firing, {len(incidents) - firing} resolved)")
    text = "Folded into one message because the receiver's rate limit was reached:\n" + "\n".join(titles)
    key = f"digest:{ids[0]}-{ids[-1]}:{len(ids)}"
    urls = {row.notification.external_url for row in rows}
    return Notification(receiver, "digest", key, tuple(incidents), title, text, now,
                        external_url=urls.pop() if len(urls) == 1 else "")
