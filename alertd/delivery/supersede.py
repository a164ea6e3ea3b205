"""Superseding: a receiver that keeps state gets a group's latest state, not its history.

An Alertmanager keeps alerts, not messages: what it needs is the current state of each
alert, and an old notice that reaches it late (retried after the node was down, or sent by a
replica that just restarted) sets an alert back: a firing notice retried after the resolve
fires the alert again, a resolve of the previous incident retried after the next one fired
ends it early. Prometheus avoids this by re-sending current state instead of retrying old
messages. A notifier that declares `sends_state = True` gets the same: when several
notices of one alert group are due for one of its integrations, they are sent as one notice
holding the latest state of each alert (the newest notice, plus any alert only the older
ones carried, such as a resolve the newest no longer lists); the older rows are marked
`folded` into it, with a ledger entry, in one transaction.
"""

from __future__ import annotations

import dataclasses

from ..model import Notification


def latest_state(rows) -> Notification:
    """The newest row's notification, carrying the latest state of every alert of `rows`
    (outbox rows of one group and one integration, any order)."""
    ordered = sorted(rows, key=lambda r: r.id)
    newest = ordered[-1].notification
    latest = {}
    for row in ordered:  # a later notice's state of an alert replaces an earlier one's
        for inc in row.notification.incidents:
            latest[inc.fingerprint] = inc
    mine = [latest.pop(inc.fingerprint) for inc in newest.incidents if inc.fingerprint in latest]
    return dataclasses.replace(newest, incidents=tuple(mine + list(latest.values())))
