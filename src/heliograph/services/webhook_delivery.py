"""`WebhookDeliveryWorker`: sends what `webhook_deliveries` holds, at least once. One asyncio task
in the API process, woken at once when deliveries are enqueued and otherwise polling every
second, leases due deliveries (so two processes never send the same attempt at once) and sends
them concurrently: at most 64 at a time, and 16 per webhook, so one slow or failing destination
never holds up another's. A failure is retried with exponential backoff until
`webhook_give_up_s` has passed since the delivery was enqueued."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import webhooks as repository
from heliograph.domain.webhooks import SIGNATURE_HEADER, retry_delay_s, signature
from heliograph.services.outbound import DestinationRejected, OutboundPolicy
from heliograph.services.vault import Sealed, Vault

# A generator of our own: the global one belongs to the application (and to tests' generators).
JITTER = random.Random()  # noqa: S311 - spreads work, guards nothing

log = logging.getLogger("heliograph.webhooks")
MAX_IN_FLIGHT = 64
PER_WEBHOOK = 16
# Leased ahead of the slots, so a freed slot starts the next attempt without waiting for the app
# DB; twice the slots at most, so a leased delivery waits for at most one round of attempts
# (each within TIMEOUT_S) and never outlives its lease.
HELD_FACTOR = 2
TIMEOUT_S = 30.0
LEASE_S = 60.0  # longer than an attempt can take, so a lease never runs out mid-attempt
POLL_S = 1.0
MAX_ERROR_CHARS = 500
# The delivery log keeps settled deliveries (and their payloads) this long, or as long as a
# delivery may be retried if that is longer; pruned hourly, a bounded number per statement.
KEEP_LOG_S = 7 * 86_400.0
PRUNE_EVERY_S = 3_600.0
PRUNE_ROWS = 5_000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this process holds the lease on, with what sending it takes."""

    id: str
    webhook_id: str
    payload: bytes
    attempts: int
    created_at: datetime
    destination: str
    hmac_key: str


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None
    error: str

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookDeliveryWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: Vault,
        policy: OutboundPolicy,
        retry_base_s: float,
        give_up_s: float,
    ) -> None:
        self._sessions = sessions
        self._vault = vault
        self._policy = policy
        self._retry_base_s = retry_base_s
        self._give_up_s = give_up_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._client: aiohttp.ClientSession | None = None
        self._sending: dict[asyncio.Task[None], Claimed] = {}
        self._finished: list[tuple[Claimed, Outcome]] = []  # attempts made, not yet recorded
        self._per_webhook: Counter[str] = Counter()  # deliveries held (leased), by webhook
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._webhook_slots: dict[str, asyncio.Semaphore] = {}
        self._next_prune = 0.0  # monotonic time of the next prune: the first step prunes

    async def start(self) -> None:
        """Start delivering; deliveries left pending by an earlier run are due at once."""
        self._loop, self._stopping = asyncio.get_running_loop(), False
        self._client = self._policy.session(TIMEOUT_S)
        self._task = asyncio.create_task(self._run(), name="webhook-delivery")

    def wake(self) -> None:
        """Deliver what is due now (from any thread); nothing once stopped."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._woken.set)

    async def close(self) -> None:
        """Stop: attempts under way are abandoned and their leases let go, so the next start
        sends them at once (a receiver may see one twice: delivery is at least once)."""
        self._loop, self._stopping = None, True
        if self._task is not None:  # let a step under way finish: its commit is kept
            self._woken.set()
            await self._task
        held = [claimed.id for claimed in self._sending.values()]
        for task in list(self._sending):
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        finished, self._finished = self._finished, []
        if held or finished:
            await asyncio.to_thread(self._settle, finished, held)
        if self._client is not None:
            await self._client.close()

    async def _run(self) -> None:
        while not self._stopping:
            self._woken.clear()
            try:
                await self._step()
                if time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + PRUNE_EVERY_S
                    await asyncio.to_thread(self.prune)
            except Exception as error:  # the app DB may be away: try again at the next poll
                log.warning(
                    "webhook deliveries not dispatched: %s: %s", type(error).__name__, error
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), POLL_S)

    def prune(self) -> int:
        """Delete settled deliveries older than the log keeps them; the number deleted."""
        before = datetime.now(UTC) - timedelta(seconds=max(KEEP_LOG_S, self._give_up_s))
        pruned = 0
        while True:
            with self._sessions.begin() as session:
                deleted = repository.prune_settled(session, before, PRUNE_ROWS)
            pruned += deleted
            if deleted < PRUNE_ROWS:
                return pruned

    async def _step(self) -> None:
        """Record the attempts made since the last step and lease what is due, in one
        transaction (so a busy destination costs one commit per step, not two per delivery),
        then start sending."""
        finished, self._finished = self._finished, []
        free, busy = MAX_IN_FLIGHT * HELD_FACTOR - len(self._sending), dict(self._per_webhook)
        try:
            claimed = await asyncio.to_thread(self._record_and_claim, finished, free, busy)
        except Exception:
            self._finished[:0] = finished  # recorded at the next step
            raise
        for claimed_one in claimed:
            self._start(claimed_one)

    def _start(self, claimed: Claimed) -> None:
        task = asyncio.create_task(self._send(claimed), name="webhook-attempt")
        self._sending[task] = claimed
        self._per_webhook[claimed.webhook_id] += 1
        self._webhook_slots.setdefault(claimed.webhook_id, asyncio.Semaphore(PER_WEBHOOK))
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        claimed = self._sending.pop(task)
        self._per_webhook[claimed.webhook_id] -= 1
        if self._per_webhook[claimed.webhook_id] <= 0:
            del self._per_webhook[claimed.webhook_id]
            del self._webhook_slots[claimed.webhook_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery %s failed: %s", claimed.id, task.exception())
        self._woken.set()  # a slot is free

    # On a worker thread -------------------------------------------------------------------

    def _record_and_claim(
        self, finished: list[tuple[Claimed, Outcome]], free: int, busy: dict[str, int]
    ) -> list[Claimed]:
        """Record finished attempts, then lease due deliveries: at most `free` in all and
        `PER_WEBHOOK * HELD_FACTOR` per webhook with those already held, each webhook's longest
        due first."""
        now = datetime.now(UTC)
        # The lease's end names it: a random microsecond keeps another process's apart.
        until = now + timedelta(seconds=LEASE_S, microseconds=JITTER.randrange(1_000_000))
        with self._sessions.begin() as session:
            repository.finish_attempts(session, [self._outcome(c, o) for c, o in finished])
            taken: list[str] = []
            if free <= 0:
                return []
            for webhook_id in repository.webhooks_with_due(session, now, limit=1000):
                held = busy.get(webhook_id, 0)
                room = min(PER_WEBHOOK * HELD_FACTOR - held, free - len(taken))
                if room <= 0:
                    continue
                taken += self._claim_for(session, webhook_id, now, until, room)
                if len(taken) >= free:
                    break
            return self._claimed(session, taken) if taken else []

    @staticmethod
    def _claim_for(
        session: Session, webhook_id: str, now: datetime, until: datetime, room: int
    ) -> list[str]:
        """Up to `room` of the webhook's due deliveries; when another process leased some of
        those read first, the next due ones are read again (a few times), so two processes
        reading the same oldest rows both come away with work."""
        taken: list[str] = []
        for _ in range(3):
            due = repository.due_deliveries(session, webhook_id, now, room - len(taken))
            got = repository.claim(session, due, now, until) if due else []
            taken += got
            if len(got) == len(due) or len(taken) >= room:
                break
        return taken

    def _claimed(self, session: Session, delivery_ids: list[str]) -> list[Claimed]:
        deliveries = repository.deliveries_by_id(session, delivery_ids)
        webhooks = {
            hook.id: hook
            for hook in repository.webhooks_by_id(session, {d.webhook_id for d in deliveries})
        }
        found = []
        for delivery in deliveries:
            hook = webhooks[delivery.webhook_id]
            sealed = Sealed(hook.hmac_ciphertext, hook.hmac_nonce, hook.secret_key_id)
            key = self._vault.open(sealed, hook.organization_id, hook.id)
            found.append(
                Claimed(
                    delivery.id,
                    hook.id,
                    delivery.payload.encode(),
                    delivery.attempts,
                    delivery.created_at,
                    hook.destination,
                    key,
                )
            )
        return found

    def _outcome(self, claimed: Claimed, outcome: Outcome) -> dict[str, object]:
        """The columns an attempt changes: delivered, given up, or due again after a backoff."""
        now = datetime.now(UTC)
        attempts = claimed.attempts + 1
        values: dict[str, object] = {
            "id": claimed.id,
            "status": repository.PENDING,
            "attempts": attempts,
            "last_status": outcome.status,
            "last_error": outcome.error[:MAX_ERROR_CHARS],
            "next_attempt_at": now,
            "delivered_at": None,
        }
        if outcome.delivered:
            values |= {"status": repository.DELIVERED, "delivered_at": now}
        elif (now - claimed.created_at).total_seconds() >= self._give_up_s:
            values |= {"status": repository.FAILED}
        else:
            delay = retry_delay_s(attempts, self._retry_base_s, JITTER.random())
            values |= {"next_attempt_at": now + timedelta(seconds=delay)}
        return values

    def _settle(self, finished: list[tuple[Claimed, Outcome]], held: list[str]) -> None:
        """At shutdown: record the attempts made, and let the unfinished ones' leases go."""
        with self._sessions.begin() as session:
            repository.finish_attempts(session, [self._outcome(c, o) for c, o in finished])
            repository.release(session, held)

    # On the loop --------------------------------------------------------------------------

    async def _send(self, claimed: Claimed) -> None:
        """Attempt the delivery once a slot is free: at most `MAX_IN_FLIGHT` in all and
        `PER_WEBHOOK` per webhook at a time."""
        # The webhook's own slot first: a delivery waiting on it holds none of the shared ones.
        async with self._webhook_slots[claimed.webhook_id], self._slots:
            outcome = await self._attempt(claimed)
        self._finished.append((claimed, outcome))

    async def _attempt(self, claimed: Claimed) -> Outcome:
        """POST the stored payload, signed; checked against the policy again first, since the
        operator's list may have changed since the webhook was saved."""
        assert self._client is not None
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(claimed.hmac_key, claimed.payload),
        }
        try:
            destination = self._policy.check(claimed.destination)
            async with self._client.post(
                destination, data=claimed.payload, headers=headers, allow_redirects=False
            ) as response:
                await response.content.readany()  # a little of it: the answer is not kept
                status = response.status
        except DestinationRejected as refused:
            return Outcome(None, f"refused: {refused}")
        except TimeoutError:
            return Outcome(None, f"no answer within {TIMEOUT_S:.0f} s")
        except (aiohttp.ClientError, OSError) as error:
            return Outcome(None, _described(error))
        return Outcome(status, "" if 200 <= status < 300 else f"answered {status}")


def _described(error: Exception) -> str:
    """What went wrong, for the delivery log; a connection error with its cause (aiohttp's
    own text drops the resolver's reason)."""
    if isinstance(error, aiohttp.ClientConnectorError):
        cause = error.os_error
        reason = cause.strerror or (str(cause.args[0]) if cause.args else type(cause).__name__)
        return f"{type(error).__name__}: cannot connect to {error.host}:{error.port}: {reason}"
    return f"{type(error).__name__}: {error}"
