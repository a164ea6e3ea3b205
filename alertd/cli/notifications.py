"""`alertd notifications [--failed] [--attempts]`: what was sent, what is waiting, what failed.

One line per notice and integration, newest first, from the outbox; `--attempts` adds every
delivery attempt from the ledger (time, outcome, error, answer, duration).
"""

from __future__ import annotations

import json

from .common import add_config_arg, add_store_arg, open_store
from .output import print_json, when

NAME = "notifications"
OUTCOMES = {"sent": "sent", "retry": "failed, to be retried", "failed": "failed for good",
            "gave_up": "given up", "folded": "folded into a digest"}
HELP = "list notifications and their delivery (the outbox and the delivery ledger)"


def configure(parser) -> None:
    add_config_arg(parser)
    add_store_arg(parser)
    parser.add_argument("--failed", action="store_true",
                        help="only notices that failed, were given up or are being retried")
    parser.add_argument("--pending", action="store_true", help="only notices not sent yet")
    parser.add_argument("--attempts", action="store_true", help="show every delivery attempt")
    parser.add_argument("--limit", type=int, default=50, help="at most this many notices (default 50)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def _wanted(row, args) -> bool:
    if args.failed:
        return row["status"] == "failed" or (row["status"] == "pending" and (row["attempts"] or 0) > 0)
    if args.pending:
        return row["status"] == "pending"
    return True


def run(args) -> int:
    store = open_store(args)
    try:
        rows = [r for r in store.outbox.rows(newest_first=True, limit=max(args.limit * 20, 1000))
                if _wanted(r, args)][:args.limit]
        attempts = {r["id"]: store.ledger.of(r["id"]) for r in rows} if (args.attempts or args.json) else {}
    finally:
        store.close()
    if args.json:
        print_json([{**{k: v for k, v in r.items() if k != "payload"},
                     "attempts_detail": [a.__dict__ for a in attempts.get(r["id"], [])]} for r in rows])
        return 0
    if not rows:
        print("no failed notifications" if args.failed else "no notifications")
        return 0
    for r in rows:
        title = json.loads(r["payload"]).get("title", "")
        status = r["status"] if r["status"] != "pending" or not r["attempts"] else "retrying"
        extra = f"  next try {when(r['next_attempt_at'])}" if status == "retrying" else ""
        extra += f"  folded into #{r['folded_into']}" if r["folded_into"] else ""
        print(f"#{r['id']:<5} {when(r['created_at'])}  {status:<8} {r['kind']:<9} "
              f"{r['receiver']}/{r['notifier']}#{r['integration']}  attempts={r['attempts']}  {title}{extra}")
        if r["last_error"] and r["status"] != "sent":
            print(f"       last error: {r['last_error']}")
        for a in attempts.get(r["id"], []):
            detail = a.error or a.answer or ""
            # "retry in 74ms" read as a retry due in 74 ms: say what happened, then how long it took
            took = f" (took {a.duration_ms:.0f}ms)" if a.duration_ms is not None else ""
            print(f"       {when(a.at)}  attempt {a.attempt}: {OUTCOMES.get(a.outcome, a.outcome)}{took}  {detail}")
    return 0
