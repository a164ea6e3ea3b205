"""The outbox worker: delivers committed notices (group flushes queue them: alertd.routing.timer).

At-least-once: a row is only marked sent after the notifier returned, so a crash between
sending and marking re-sends it on start (receivers get the idempotency key to drop the
duplicate). Per integration, in order:

- a row past its receiver's `deadline` is given up (status failed, "gave up: ...");
- a group's notices go out in the order they were made: a later one waits while an older
  one of the same group is still pending (retrying); for a notifier that keeps state
  (`sends_state`, the alertmanager notifier), notices of a group due together go out as one
  holding the latest state of each alert (alertd/delivery/supersede.py);
- with a `rate_limit`, a token bucket meters sends; when more rows are due than tokens, the
  surplus is folded into one "digest" notice (alertd/delivery/digest.py), never dropped or stormed;
- retryable failures (network, 5xx, 429) are retried with exponential backoff and full
  jitter, never sooner than a `Retry-After`, which also holds back the integration's other
  rows; permanent failures (other 4xx) are recorded and not retried;
- every attempt is written to the delivery ledger (time, outcome, error, answer, duration);
- an integration that keeps failing raises a meta-incident told to the receiver's fallback
  (alertd/delivery/receiver_health.py).

Integrations are served concurrently, so one slow receiver does not hold back the others, and
within an integration the notices of different groups go out up to `PARALLEL_SENDS` at a
time, after a first one alone (so a receiver answering 429 or hanging gets one request a pass).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import defaultdict

from ..base import DeliveryError
from ..config.routing import ReceiverSettings
from ..log import redact_text
from ..store.errors import explain, is_store_error
from ..store.ledger import Attempt
from .digest import digest_of
from .rate_limit import TokenBucket
from .supersede import latest_state
from .receiver_health import ReceiverHealth

# Notices of different groups sent at once per integration, as Alertmanager sends each group
# on its own: a burst of notices costs about one round trip, not one per notice. A group's
# own notices still go one at a time, in order.
PARALLEL_SENDS = 8


def notifier_types(notifiers: dict) -> dict:
    """(receiver, index) -> the notifier's type name, for receiver-health notices."""
    return {key: getattr(n, "type_name", "") or type(n).__name__ for key, n in notifiers.items()}


def send_timeout(notifier) -> float:
    """How long one send may take: twice the notifier's own `timeout` (a send may make two
    requests) plus 1 s, or 60 s for a notifier without one."""
    own = getattr(getattr(notifier, "params", None), "timeout", None)
    try:
        return 2 * float(own) + 1 if own else 60.0
    except (TypeError, ValueError):
        return 60.0


class OutboxWorker:
    """Delivers due outbox rows through the receivers' notifier instances.

    `notifiers` maps (receiver, integration index) to a notifier instance; `config` gives
    the receivers' delivery settings (deadline, rate limit, fallback). A reload hands in new
    ones with `use`.
    """

    def __init__(self, store, notifiers, clock, metrics, log, *, base_delay: float = 2.0,
                 max_delay: float = 300.0, rng: random.Random | None = None, config=None):
        self.store, self.notifiers, self.clock = store, notifiers, clock
        self.metrics, self.log = metrics, log
        self.base_delay, self.max_delay = base_delay, max_delay
        self.rng = rng or random.Random()
        self.config = config
        self.wakeup = asyncio.Event()
        self.lock = asyncio.Lock()  # held while sending: a reload closes old notifiers after it
        self.buckets: dict[tuple[str, int], TokenBucket] = {}
        self.hold_until: dict[tuple[str, int], float] = {}
        self.health = ReceiverHealth(store, config, notifier_types(notifiers), log, metrics)

    def use(self, config, notifiers=None) -> None:
        """Deliver with `config`'s receiver settings (and these notifier instances) from now on."""
        if notifiers is not None:
            self.notifiers = notifiers
        self.config = self.health.config = config
        self.health.notifier_types = notifier_types(self.notifiers)

    def shift(self, step: float) -> None:
        """The wall clock stepped by `step` seconds: move in-memory holds and token buckets
        with it, as the store's timers were (alertd.daemon.clock_steps)."""
        self.hold_until = {k: t + step for k, t in self.hold_until.items()}
        for bucket in self.buckets.values():
            bucket.updated += step
        self.wakeup.set()

    def settings(self, receiver: str) -> ReceiverSettings:
        return self.config.delivery(receiver) if self.config is not None else ReceiverSettings()

    def backoff(self, attempts: int, retry_after: float | None = None, cap: float | None = None) -> float:
        """Seconds before the next attempt: exponential with full jitter (at most `cap`, the
        notifier's `max_retry_delay`, when it has one), or Retry-After."""
        delay = min(self.max_delay, cap or self.max_delay, self.base_delay * (2 ** attempts))
        delay = delay / 2 + self.rng.uniform(0, delay / 2)
        if retry_after is not None:
            delay = max(delay, float(retry_after))
        return delay

    # -- one pass ---------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Send every row due now; returns how many were delivered."""
        async with self.lock:
            rows = self.store.outbox.due(self.clock.now(), limit=500)
            by_integration: dict[tuple[str, int], list] = defaultdict(list)
            for row in rows:
                by_integration[(row.receiver, row.integration)].append(row)
            done = self._settled(await asyncio.gather(
                *(self._serve(key, items) for key, items in by_integration.items()), return_exceptions=True))
        self.metrics.outbox_depth.set(self.store.outbox.pending_count())
        return done

    def _settled(self, outcomes: list) -> int:
        """The sum of gathered counts once every task has finished (none goes on behind the
        lock); the first error is raised, later ones are logged."""
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        for extra in errors[1:]:
            self.log.error("dispatch_failed", error=redact_text(f"{type(extra).__name__}: {extra}"))
        if errors:
            raise errors[0]
        return sum(outcomes)

    async def _serve(self, key: tuple[str, int], rows: list) -> int:
        now = self.clock.now()
        notifier = self.notifiers.get(key)
        if notifier is None:
            for row in rows:
                error = (f'the receiver "{row.receiver}" has no integration #{row.integration} any more; '
                         "the notification was dropped")
                self._finish(row, "failed", now, error=error)
            return 0
        settings = self.settings(key[0])
        live = []
        for row in rows:
            if row.deadline_at is not None and now >= row.deadline_at:
                self._give_up(row, now, "the delivery deadline passed before it could be sent", key)
            else:
                live.append(row)
        if getattr(notifier, "sends_state", False):
            live = self._supersede(key, live, now)
        live = self._in_group_order(key, live, now)
        if not live:
            return 0
        if self.hold_until.get(key, 0) > now:
            self.store.outbox.postpone([r.id for r in live], self.hold_until[key])
            return 0
        bucket = None
        if settings.rate_limit is not None:
            rl = settings.rate_limit
            bucket = self.buckets.setdefault(key, TokenBucket(rl.per_second, rl.capacity, now))
            tokens = bucket.available(now)
            if tokens == 0:
                self.store.outbox.postpone([r.id for r in live], bucket.next_at(now))
                return 0
            if len(live) > tokens:
                live = live[:tokens - 1] + [self._fold(live[tokens - 1:], key, now, settings)]
        return await self._deliver(key, live, notifier, bucket)

    async def _deliver(self, key: tuple[str, int], live: list, notifier, bucket) -> int:
        """Send the rows (at most one per group), the first alone and then up to
        PARALLEL_SENDS at a time; a Retry-After or a hung send holds back those not started."""
        slots = asyncio.Semaphore(PARALLEL_SENDS)

        async def one(row) -> int:
            async with slots:
                hold = self.hold_until.get(key, 0)
                if hold > self.clock.now():
                    self.store.outbox.postpone([row.id], hold)
                    return 0
                if bucket is not None:
                    bucket.take(self.clock.now())
                return await self._send(key, row, notifier)

        first = await one(live[0])  # a receiver that answers 429 or hangs gets no more this pass
        return first + self._settled(await asyncio.gather(*(one(row) for row in live[1:]), return_exceptions=True))

    def _in_group_order(self, key: tuple[str, int], rows: list, now: float) -> list:
        """The rows that are the oldest pending notice of their group; the others wait (moved
        to their group's next attempt), so a retried notice is never overtaken by a later one."""
        heads = self.store.outbox.group_heads(*key)
        ready, waiting = [], defaultdict(list)
        for row in rows:
            head = heads.get(row.notification.group_key) if row.notification.group_key else None
            if head is None or head[0] == row.id:
                ready.append(row)
            else:
                waiting[max(head[1], now)].append(row.id)
        for at, ids in waiting.items():
            self.store.outbox.postpone(ids, at)
        return ready

    def _supersede(self, key: tuple[str, int], rows: list, now: float) -> list:
        """Rows with each group's due notices folded into its newest, which then carries the
        latest state of every alert they hold (alertd/delivery/supersede.py)."""
        groups, out = defaultdict(list), []
        for row in rows:
            (groups[row.notification.group_key] if row.notification.group_key else out).append(row)
        for members in groups.values():
            if len(members) == 1:
                out.append(members[0])
                continue
            members.sort(key=lambda r: r.id)
            newest, older = members[-1], members[:-1]
            merged = latest_state(members)
            with self.store.atomic():
                self.store.outbox.supersede([r.id for r in older], newest.id, merged)
                self.store.ledger.record([self._attempt(r, "folded", now, answer=f"superseded by #{newest.id}, "
                                                        "the group's newer state") for r in older])
            self.metrics.notifications_superseded.labels(key[0]).inc(len(older))
            self.log.info("notifications_superseded", receiver=key[0], integration=key[1],
                          superseded=[r.id for r in older], by=newest.id)
            out.append(dataclasses.replace(newest, notification=merged,
                                           attempts=max(r.attempts for r in members)))
        return sorted(out, key=lambda r: r.id)

    def _fold(self, rows: list, key: tuple[str, int], now: float, settings: ReceiverSettings):
        """Fold rows into one digest row (committed together); returns the digest row."""
        note = digest_of(rows, key[0], now)
        with self.store.atomic():
            (digest_id,) = self.store.outbox.enqueue(note, [(key[1], rows[0].notifier)], now,
                                                     deadline=settings.deadline) or (None,)
            if digest_id is None:  # these rows were folded before: reuse that digest
                digest_id = self.store.outbox.find(note.idempotency_key, key[0], key[1])
            self.store.outbox.fold([r.id for r in rows], digest_id)
            self.store.ledger.record([self._attempt(r, "folded", now, answer=f"folded into digest #{digest_id}")
                                      for r in rows])
        self.metrics.notifications_folded.labels(key[0]).inc(len(rows))
        self.log.warning("notifications_folded", receiver=key[0], integration=key[1], folded=len(rows),
                         digest=digest_id)
        return self.store.outbox.get(digest_id)

    async def _send(self, key: tuple[str, int], row, notifier) -> int:
        started = time.perf_counter()
        hung = False
        log = self.log.bind(receiver=row.receiver, notifier=row.notifier, outbox_id=row.id,
                            kind=row.notification.kind, key=row.idempotency_key)
        limit = send_timeout(notifier)
        try:
            answer = await asyncio.wait_for(notifier.send(row.notification), limit)
        except DeliveryError as exc:
            error, retry_after, retryable = redact_text(str(exc)), exc.retry_after, exc.retryable
        except asyncio.TimeoutError:  # a notifier that hangs must not hold back every receiver
            error, retry_after, retryable = f"the {row.notifier} notifier did not finish within {limit:g}s", None, True
            log.error("notification_error", error=error)
            hung = True
        except Exception as exc:  # a notifier bug: retry later, never crash the loop
            error, retry_after, retryable = redact_text(f"{type(exc).__name__}: {exc}"), None, True
            log.error("notification_error", error=error)
        else:
            now = self.clock.now()
            self._finish(row, "sent", now, answer=str(answer or "ok"), started=started)
            self.metrics.notifications_sent.labels(row.receiver, row.notifier).inc()
            log.info("notification_sent", answer=str(answer or "ok")[:200])
            self.health.success(key, now)
            return 1
        now = self.clock.now()
        self.metrics.notifications_failed.labels(row.receiver, row.notifier,
                                                 "retryable" if retryable else "permanent").inc()
        if not retryable:
            self._finish(row, "failed", now, error=error, started=started)
            log.error("notification_failed", error=error)
            self.health.failure(key, error, now, gave_up=True)
            return 0
        next_at = now + self.backoff(row.attempts, retry_after, getattr(notifier, "max_retry_delay", None))
        if retry_after is not None:
            self.hold_until[key] = now + float(retry_after)
        elif hung:  # its other notices wait for this one's retry instead of hanging in turn
            self.hold_until[key] = next_at
        if row.deadline_at is not None and next_at > row.deadline_at:
            self._give_up(row, now, f"the next attempt would be after the delivery deadline; last error: {error}",
                          key, started=started)
            return 0
        self.store.outbox.mark_retry(row.id, next_at, error)
        self.store.ledger.record([self._attempt(row, "retry", now, error=error, started=started)])
        self.metrics.delivery_attempts.labels(row.receiver, "retry").inc()
        log.warning("notification_retry", error=error, attempts=row.attempts + 1, retry_in=round(next_at - now, 1))
        self.health.failure(key, error, now)
        return 0

    def _give_up(self, row, now: float, why: str, key, started: float | None = None) -> None:
        error = f"gave up after {row.attempts + (1 if started else 0)} attempts: {why}"
        self._finish(row, "gave_up", now, error=error, started=started, status="failed")
        self.log.error("notification_given_up", receiver=row.receiver, outbox_id=row.id, error=error)
        self.health.failure(key, why, now, gave_up=True)

    def _finish(self, row, outcome: str, now: float, *, error=None, answer=None, started=None,
                status: str | None = None) -> None:
        with self.store.atomic():
            if (status or outcome) == "sent":
                self.store.outbox.mark_sent(row.id, now, answer or "ok")
            else:
                self.store.outbox.mark_failed(row.id, now, error or outcome)
            self.store.ledger.record([self._attempt(row, outcome, now, error=error, answer=answer,
                                                    started=started)])
        self.metrics.delivery_attempts.labels(row.receiver, outcome).inc()

    @staticmethod
    def _attempt(row, outcome: str, now: float, *, error=None, answer=None, started=None) -> Attempt:
        duration = None if started is None else round((time.perf_counter() - started) * 1000, 2)
        return Attempt(row.id, row.idempotency_key, row.receiver, row.integration, row.notifier,
                       row.notification.kind, row.attempts + (0 if outcome == "folded" else 1), now,
                       outcome, error, answer, duration)

    # -- the loop ---------------------------------------------------------------------------
    def busy(self) -> bool:
        """Whether a pass is running or waits to start (rows were queued since the last)."""
        return self.lock.locked() or self.wakeup.is_set()

    def next_wakeup(self) -> float | None:
        """The earliest time there is work: a row or a retry due."""
        return self.store.outbox.next_due_at()

    async def run_forever(self, stopping: asyncio.Event, idle: float = 1.0) -> None:
        """Deliver until `stopping` is set, waking on new rows or due retries."""
        while not stopping.is_set():
            # cleared before the pass, not after: a tick that queues rows while a send is in
            # flight sets it again, and the next pass starts at once instead of after `wait`
            self.wakeup.clear()
            try:
                await self.run_once()
            except Exception as exc:  # keep delivering whatever one pass hit
                if is_store_error(exc):  # unsent rows stay pending; a sent one may be sent again
                    self.log.error("dispatch_failed", error=explain(exc, getattr(self.store, "path", "")),
                                   retry=f"in {idle:g}s")
                else:
                    self.log.exception("dispatch_failed", error=f"{type(exc).__name__}: {exc}")
            next_due = self.next_wakeup()
            wait = idle if next_due is None else max(0.05, min(idle, next_due - self.clock.now()))
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
