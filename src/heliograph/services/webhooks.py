"""Webhooks (Helicone's `/v1/webhooks`): an organization's destinations, each with a sample rate,
property filters and an HMAC key sealed by the vault; and the enqueueing of what each stored
request owes them, told by `BatchInserter.on_stored` on the inserter's thread and written to the
app DB in one transaction per batch, for `webhook_delivery.py` to send. Which organizations have
webhooks is kept in memory, renewed every 2 s and dropped when this process changes them."""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import webhooks as repository
from heliograph.appdb.models import Webhook, WebhookDelivery
from heliograph.appdb.repository import hold_organization
from heliograph.domain.request_row import RequestRow
from heliograph.domain.webhooks import (
    MAX_WEBHOOKS,
    VERSION,
    PropertyFilter,
    TooManyWebhooks,
    WebhookRule,
    checked_filters,
    checked_sample_rate,
    payload,
    trial_payload,
)
from heliograph.services.audit import SYSTEM, Actor, AuditLog
from heliograph.services.outbound import OutboundPolicy
from heliograph.services.periodic import Periodic
from heliograph.services.vault import Sealed, Vault
from heliograph.state.bodies import read_body_file

log = logging.getLogger("heliograph.webhooks")
RENEW_EVERY_S = 2.0
MAX_LOG_PAGE = 500
ORGS_PER_READ = 500


@dataclass(frozen=True, slots=True)
class WebhookInfo:
    id: str
    organization_id: str
    destination: str
    sample_rate: float
    property_filters: tuple[PropertyFilter, ...]
    include_data: bool
    hmac_key: str
    created_at: datetime
    version: str = VERSION


@dataclass(frozen=True, slots=True)
class DeliveryInfo:
    id: str
    webhook_id: str
    request_id: str
    status: str
    attempts: int
    last_status: int | None
    last_error: str
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


class WebhookRules:
    """Each organization's webhook rules, from memory: an organization not seen yet is read once
    (on the caller's thread), then every known organization is re-read every 2 s together."""

    def __init__(self, sessions: sessionmaker[Session], every_s: float = RENEW_EVERY_S) -> None:
        self._sessions = sessions
        self._by_org: dict[str, tuple[WebhookRule, ...]] = {}
        self._lock = threading.Lock()
        self._version = 0  # moved by `forget`, so a read begun before it is not kept
        self._refresher = Periodic(
            self._renew, every_s, "webhook-rules", "could not renew webhooks: %s"
        )

    def start(self) -> None:
        self._refresher.start()

    async def close(self) -> None:
        await self._refresher.stop()

    def for_organizations(self, org_ids: Collection[str]) -> dict[str, tuple[WebhookRule, ...]]:
        with self._lock:
            known = {org: self._by_org[org] for org in org_ids if org in self._by_org}
            version = self._version
        missing = [org for org in org_ids if org not in known]
        if missing:
            loaded = self._load(missing)
            self._keep(loaded, version)
            known.update(loaded)
        return known

    def forget(self, org_id: str) -> None:
        with self._lock:
            self._by_org.pop(org_id, None)
            self._version += 1

    async def _renew(self) -> None:
        with self._lock:
            orgs, version = list(self._by_org), self._version
        if orgs:
            self._keep(await asyncio.to_thread(self._load, orgs), version)

    def _keep(self, loaded: dict[str, tuple[WebhookRule, ...]], version: int) -> None:
        with self._lock:
            if self._version == version:
                self._by_org.update(loaded)

    def _load(self, org_ids: Sequence[str]) -> dict[str, tuple[WebhookRule, ...]]:
        found: dict[str, list[WebhookRule]] = {org: [] for org in org_ids}
        with self._sessions() as session:
            for start in range(0, len(org_ids), ORGS_PER_READ):
                chunk = org_ids[start : start + ORGS_PER_READ]
                for webhook in repository.webhooks_of(session, chunk):
                    found[webhook.organization_id].append(_rule(webhook))
        return {org: tuple(rules) for org, rules in found.items()}


class WebhookService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: Vault,
        audit: AuditLog,
        policy: OutboundPolicy,
        body_dir: Path,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self._vault = vault
        self._audit = audit
        self._policy = policy
        self._body_dir = body_dir
        self._wake = wake  # the delivery worker's: called from any thread
        self.rules = WebhookRules(sessions)

    # The organization's webhooks ---------------------------------------------------------

    def list_webhooks(self, org_id: str) -> list[WebhookInfo]:
        with self._sessions() as session:
            return [self._info(hook) for hook in repository.list_webhooks(session, org_id)]

    def create(
        self,
        org_id: str,
        destination: str,
        sample_rate: float,
        property_filters: Sequence[Mapping[str, str]],
        include_data: bool,
        actor: Actor = SYSTEM,
    ) -> WebhookInfo:
        destination = self._policy.check(destination)
        rate, filters = checked_sample_rate(sample_rate), checked_filters(property_filters)
        webhook_id, key = str(uuid.uuid4()), secrets.token_hex(32)
        sealed = self._vault.seal(key, org_id, webhook_id)
        webhook = Webhook(
            id=webhook_id,
            organization_id=org_id,
            destination=destination,
            sample_rate=rate,
            property_filters=orjson.dumps([_filter(item) for item in filters]).decode(),
            include_data=include_data,
            hmac_ciphertext=sealed.ciphertext,
            hmac_nonce=sealed.nonce,
            secret_key_id=sealed.key_id,
            created_at=datetime.now(UTC),
        )
        with self._sessions.begin() as session:
            hold_organization(session, org_id)  # concurrent creations count one at a time
            if repository.count_webhooks(session, org_id) >= MAX_WEBHOOKS:
                raise TooManyWebhooks(f"an organization keeps at most {MAX_WEBHOOKS} webhooks")
            repository.add_webhook(session, webhook)
            self._record(actor, "webhook.create", webhook, session)
        self.rules.forget(org_id)
        return self._info(webhook, key)

    def delete(self, org_id: str, webhook_id: str, actor: Actor = SYSTEM) -> bool:
        """Delete the webhook and its deliveries; False when the organization has no such one."""
        with self._sessions.begin() as session:
            webhook = repository.get_webhook(session, org_id, webhook_id)
            if webhook is None:
                return False
            repository.remove_webhook(session, webhook)
            self._record(actor, "webhook.delete", webhook, session)
        self.rules.forget(org_id)
        return True

    def send_test(self, org_id: str, webhook_id: str, actor: Actor = SYSTEM) -> str | None:
        """Enqueue a test payload; the delivery's id, or None for an unknown webhook."""
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            webhook = repository.get_webhook(session, org_id, webhook_id)
            if webhook is None:
                return None
            request_id = str(uuid.uuid4())
            body = trial_payload(request_id, webhook.include_data)
            delivery = _delivery(webhook.id, org_id, request_id, body, now)
            repository.enqueue(session, [delivery])
            self._record(actor, "webhook.test", webhook, session)
        self._wake()
        return str(delivery["id"])

    def deliveries(self, org_id: str, webhook_id: str, limit: int) -> list[DeliveryInfo] | None:
        """The webhook's delivery log, newest first; None for an unknown webhook."""
        with self._sessions() as session:
            if repository.get_webhook(session, org_id, webhook_id) is None:
                return None
            found = repository.list_deliveries(
                session, org_id, webhook_id, min(limit, MAX_LOG_PAGE)
            )
            return [_delivery_info(row) for row in found]

    # Enqueueing stored requests -----------------------------------------------------------

    def rows_stored(self, rows: list[RequestRow]) -> None:
        """`BatchInserter.on_stored`: enqueue what these rows owe their organizations' webhooks,
        in one transaction, then wake the delivery worker. On the inserter's thread; errors are
        logged by the inserter and never fail the insert."""
        rules = self.rules.for_organizations({row["organization_id"] for row in rows})
        if not any(rules.values()):
            return
        now = datetime.now(UTC)
        deliveries = []
        for row in rows:
            wanting = [rule for rule in rules.get(row["organization_id"], ()) if rule.wants(row)]
            deliveries.extend(self._owed(row, wanting, now))
        if deliveries:
            self._enqueue(deliveries)
            self._wake()

    def _owed(
        self, row: RequestRow, rules: list[WebhookRule], now: datetime
    ) -> list[dict[str, Any]]:
        if not rules:
            return []
        try:
            bodies = self._bodies(row) if any(rule.include_data for rule in rules) else None
            with_data, without = payload(row, bodies), payload(row, None)
        except (OSError, ValueError, TypeError) as error:  # one row's bodies cost only it
            log.error("no webhook payload for request %s: %s", row["request_id"], error)
            return []
        request_id = row["request_id"]
        return [
            _delivery(rule.id, rule.organization_id, request_id, with_data, now)
            if rule.include_data
            else _delivery(rule.id, rule.organization_id, request_id, without, now)
            for rule in rules
        ]

    def _bodies(self, row: RequestRow) -> tuple[str, str]:
        if row["storage_location"] == "file":
            document = read_body_file(self._body_dir, row["organization_id"], row["request_id"])
            return document.get("request_body", ""), document.get("response_body", "")
        return row.get("request_body") or "", row.get("response_body") or ""

    def _enqueue(self, deliveries: list[dict[str, Any]]) -> None:
        try:
            with self._sessions.begin() as session:
                repository.enqueue(session, deliveries)
        except IntegrityError:  # a webhook deleted since the rules were read: skip its rows
            with self._sessions.begin() as session:
                ids = {str(item["webhook_id"]) for item in deliveries}
                alive = {hook.id for hook in repository.webhooks_by_id(session, ids)}
                kept = [item for item in deliveries if item["webhook_id"] in alive]
                if kept:
                    repository.enqueue(session, kept)

    # Shapes ------------------------------------------------------------------------------

    def _info(self, webhook: Webhook, key: str | None = None) -> WebhookInfo:
        if key is None:
            sealed = Sealed(webhook.hmac_ciphertext, webhook.hmac_nonce, webhook.secret_key_id)
            key = self._vault.open(sealed, webhook.organization_id, webhook.id)
        return WebhookInfo(
            webhook.id,
            webhook.organization_id,
            webhook.destination,
            webhook.sample_rate,
            _filters(webhook.property_filters),
            webhook.include_data,
            key,
            webhook.created_at,
        )

    def _record(self, actor: Actor, action: str, webhook: Webhook, session: Session) -> None:
        details = {"destination": webhook.destination}  # never the HMAC key
        target = ("webhook", webhook.id)
        self._audit.record(actor, action, webhook.organization_id, target, details, session)


def _rule(webhook: Webhook) -> WebhookRule:
    return WebhookRule(
        webhook.id,
        webhook.organization_id,
        webhook.sample_rate,
        _filters(webhook.property_filters),
        webhook.include_data,
    )


def _filters(text: str) -> tuple[PropertyFilter, ...]:
    return tuple(PropertyFilter(item["key"], item["value"]) for item in orjson.loads(text))


def _filter(item: PropertyFilter) -> dict[str, str]:
    return {"key": item.key, "value": item.value}


def _delivery(
    webhook_id: str, org_id: str, request_id: str, body: bytes, now: datetime
) -> dict[str, Any]:
    """A new row of `webhook_deliveries`, due at once."""
    return {
        "id": str(uuid.uuid4()),
        "webhook_id": webhook_id,
        "organization_id": org_id,
        "request_id": request_id,
        "payload": body.decode(),
        "status": repository.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "leased_until": None,
        "last_status": None,
        "last_error": "",
        "created_at": now,
        "delivered_at": None,
    }


def _delivery_info(row: WebhookDelivery) -> DeliveryInfo:
    return DeliveryInfo(
        row.id,
        row.webhook_id,
        row.request_id,
        row.status,
        row.attempts,
        row.last_status,
        row.last_error,
        row.created_at,
        row.next_attempt_at,
        row.delivered_at,
    )
