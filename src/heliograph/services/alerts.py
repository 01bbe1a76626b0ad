"""Alert rules: an organization's rules on a metric over a sliding window, checked when saved
(the filter by the request filter grammar, webhook URLs by the outbound policy), their channels
sealed by the vault, every change audited; and what the evaluator needs: the enabled rules with
their channels opened, the compare-and-set of a rule's state with its history line."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import alerts as repository
from heliograph.appdb.models import Alert, AlertEvent
from heliograph.appdb.repository import hold_organization
from heliograph.domain import alerts as rules
from heliograph.domain.alerts import Channel, Measure, Reading
from heliograph.domain.errors import InvalidInput
from heliograph.domain.filter_tree import Filter
from heliograph.domain.filters import parse_filter
from heliograph.services.audit import SYSTEM, Actor, AuditLog
from heliograph.services.outbound import OutboundPolicy
from heliograph.services.vault import Sealed, Vault, VaultError

log = logging.getLogger("heliograph.alerts")
MAX_HISTORY = 500
FIELDS = ("name", "metric", "aggregation", "threshold", "window_minutes", "min_requests")
EDITABLE = (*FIELDS, "filter", "channels", "enabled")


class AlertNotFound(InvalidInput):
    status = 404
    code = "not_found"


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A rule as the evaluator and the API see it (channels in the clear: never shown as is)."""

    id: str
    organization_id: str
    name: str
    measure: Measure
    threshold: float
    window_minutes: int
    min_requests: int
    filter: Any  # the FilterNode JSON as saved
    channels: tuple[Channel, ...]
    enabled: bool
    state: str
    state_changed_at: datetime | None
    last_value: float | None
    last_evaluated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def tree(self) -> Filter:
        return parse_filter(self.filter)


@dataclass(frozen=True, slots=True)
class AlertHistoryLine:
    id: str
    alert_id: str
    event: str
    value: float
    threshold: float
    request_count: int
    notifications: list[dict[str, Any]]
    created_at: datetime


class AlertService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: Vault,
        audit: AuditLog,
        policy: OutboundPolicy,
    ) -> None:
        self._sessions = sessions
        self._vault = vault
        self._audit = audit
        self.policy = policy

    def list_rules(self, org_id: str) -> list[AlertRule]:
        with self._sessions() as session:
            return [self._rule(row) for row in repository.list_alerts(session, org_id)]

    def get(self, org_id: str, alert_id: str) -> AlertRule:
        with self._sessions() as session:
            return self._rule(self._found(session, org_id, alert_id))

    def create(self, org_id: str, fields: dict[str, Any], actor: Actor = SYSTEM) -> AlertRule:
        """A new rule from the caller's fields (each checked; `AlertError` names the first
        refused); at most `MAX_RULES` per organization (`TooManyAlerts`, a 409)."""
        checked = self._checked({"min_requests": 1, "filter": "all", **fields})
        now = datetime.now(UTC)
        row = Alert(
            id=str(uuid.uuid4()),
            organization_id=org_id,
            enabled=checked.pop("enabled", True),
            state=rules.OK,
            created_at=now,
            updated_at=now,
        )
        self._apply(row, checked)
        with self._sessions.begin() as session:
            hold_organization(session, org_id)  # concurrent creations count one at a time
            if repository.count_alerts(session, org_id) >= rules.MAX_RULES:
                raise rules.TooManyAlerts(f"an organization keeps at most {rules.MAX_RULES} alerts")
            repository.add_alert(session, row)
            self._record(actor, "alert.create", row, sorted(checked), session)
            return self._rule(row)

    def update(
        self, org_id: str, alert_id: str, changes: dict[str, Any], actor: Actor = SYSTEM
    ) -> AlertRule:
        """The rule with `changes` applied (any of `EDITABLE`). Disabling a firing rule puts it
        back to ok without a notification, so enabling it again starts afresh."""
        unknown = sorted(set(changes) - set(EDITABLE))
        if unknown:
            raise rules.AlertError(f"unknown field {unknown[0]!r}")
        with self._sessions.begin() as session:
            row = self._found(session, org_id, alert_id)
            fields = dict(changes)
            if "metric" in changes or "aggregation" in changes:
                fields.setdefault("metric", row.metric)
                if "aggregation" not in changes:  # latency keeps its own; others take "avg"
                    fields["aggregation"] = (
                        row.aggregation if row.metric == fields["metric"] else None
                    )
            checked = self._checked(fields)
            if "enabled" in checked:
                row.enabled = checked.pop("enabled")
                if not row.enabled:
                    row.state, row.state_changed_at = rules.OK, None
            self._apply(row, checked)
            row.updated_at = datetime.now(UTC)
            self._record(actor, "alert.update", row, sorted(changes), session)
            return self._rule(row)

    def delete(self, org_id: str, alert_id: str, actor: Actor = SYSTEM) -> None:
        with self._sessions.begin() as session:
            row = self._found(session, org_id, alert_id)
            self._record(actor, "alert.delete", row, [], session)
            repository.remove_alert(session, row)

    def history(self, org_id: str, alert_id: str, limit: int = 50) -> list[AlertHistoryLine]:
        """The rule's transitions, newest first (`AlertNotFound` for another organization's)."""
        with self._sessions() as session:
            self._found(session, org_id, alert_id)
            events = repository.list_events(session, org_id, alert_id, min(limit, MAX_HISTORY))
            return [_line(event) for event in events]

    # What the evaluator calls.

    def enabled_rules(self) -> list[AlertRule]:
        """Every enabled rule; one whose channels cannot be opened (the secret key it was sealed
        under is gone) is logged and left out, so the others are still evaluated."""
        found = []
        with self._sessions() as session:
            for row in repository.enabled_alerts(session):
                try:
                    found.append(self._rule(row, strict=True))
                except (VaultError, ValueError) as error:
                    log.warning("alert %s cannot be evaluated: %s", row.id, error)
        return found

    def note_reading(self, alert_id: str, value: float | None) -> None:
        with self._sessions.begin() as session:
            repository.note_reading(session, alert_id, value, datetime.now(UTC))

    def transition(self, rule: AlertRule, event: str, reading: Reading) -> str | None:
        """Move the rule to firing (`event` fired) or back to ok (resolved) and add its history
        line, in one transaction; the line's id, or None when the rule was not in the state it
        leaves (another process moved it, or someone disabled it)."""
        was, now_state = (
            (rules.OK, rules.FIRING) if event == rules.FIRED else (rules.FIRING, rules.OK)
        )
        at = datetime.now(UTC)
        value = reading.value if reading.value is not None else 0.0
        with self._sessions.begin() as session:
            if not repository.change_state(session, rule.id, was, now_state, reading.value, at):
                return None
            line = AlertEvent(
                id=str(uuid.uuid4()),
                alert_id=rule.id,
                organization_id=rule.organization_id,
                event=event,
                value=value,
                threshold=rule.threshold,
                request_count=reading.request_count,
                notifications="[]",
                created_at=at,
            )
            repository.add_event(session, line)
            return line.id

    def set_notifications(self, event_id: str, outcomes: list[dict[str, Any]]) -> None:
        with self._sessions.begin() as session:
            repository.set_notifications(session, event_id, orjson.dumps(outcomes).decode())

    # Helpers.

    def _checked(self, fields: dict[str, Any]) -> dict[str, Any]:
        checked: dict[str, Any] = {}
        if "name" in fields:
            checked["name"] = rules.check_name(fields["name"])
        if "metric" in fields or "aggregation" in fields:
            measure = rules.check_measure(fields.get("metric"), fields.get("aggregation"))
            checked["metric"], checked["aggregation"] = measure.metric, measure.aggregation
        if "threshold" in fields:
            checked["threshold"] = rules.check_threshold(fields["threshold"])
        if "window_minutes" in fields:
            checked["window_minutes"] = rules.check_window(fields["window_minutes"])
        if "min_requests" in fields:
            checked["min_requests"] = rules.check_min_requests(fields["min_requests"])
        if "filter" in fields:
            parse_filter(fields["filter"])  # a `FilterError` (400) naming what is wrong
            checked["filter"] = fields["filter"]
        if "channels" in fields:
            checked["channels"] = rules.check_channels(fields["channels"], self.policy.check)
        if "enabled" in fields:
            if not isinstance(fields["enabled"], bool):
                raise rules.AlertError("enabled must be true or false")
            checked["enabled"] = fields["enabled"]
        return checked

    def _apply(self, row: Alert, checked: dict[str, Any]) -> None:
        for name in FIELDS:
            if name in checked:
                setattr(row, name, checked[name])
        if "filter" in checked:
            tree = checked["filter"]
            row.filter = None if tree == "all" else orjson.dumps(tree).decode()
        if "channels" in checked:
            text = orjson.dumps(rules.channels_to_json(checked["channels"])).decode()
            sealed = self._vault.seal(text, row.organization_id, row.id)
            row.channels_ciphertext, row.channels_nonce = sealed.ciphertext, sealed.nonce
            row.secret_key_id = sealed.key_id

    def _found(self, session: Session, org_id: str, alert_id: str) -> Alert:
        row = repository.get_alert(session, org_id, alert_id)
        if row is None:
            raise AlertNotFound(f"no alert {alert_id[:64]}")
        return row

    def _rule(self, row: Alert, strict: bool = False) -> AlertRule:
        """The row as a rule; with `strict`, a `VaultError` when its channels cannot be opened,
        else the rule without them (so the list still shows it)."""
        sealed = Sealed(row.channels_ciphertext, row.channels_nonce, row.secret_key_id)
        try:
            opened = self._vault.open(sealed, row.organization_id, row.id)
        except VaultError:
            if strict:
                raise
            opened = "[]"
        return AlertRule(
            id=row.id,
            organization_id=row.organization_id,
            name=row.name,
            measure=Measure(row.metric, row.aggregation),
            threshold=row.threshold,
            window_minutes=row.window_minutes,
            min_requests=row.min_requests,
            filter="all" if row.filter is None else orjson.loads(row.filter),
            channels=rules.channels_from_json(orjson.loads(opened)),
            enabled=row.enabled,
            state=row.state,
            state_changed_at=row.state_changed_at,
            last_value=row.last_value,
            last_evaluated_at=row.last_evaluated_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def _record(
        self, actor: Actor, action: str, row: Alert, changed: list[str], session: Session
    ) -> None:
        details: dict[str, Any] = {"name": row.name, "metric": row.metric}
        if changed:
            details["fields"] = changed  # names only: channels may hold secrets
        self._audit.record(actor, action, row.organization_id, ("alert", row.id), details, session)


def _line(event: AlertEvent) -> AlertHistoryLine:
    return AlertHistoryLine(
        event.id,
        event.alert_id,
        event.event,
        event.value,
        event.threshold,
        event.request_count,
        orjson.loads(event.notifications or "[]"),
        event.created_at,
    )
