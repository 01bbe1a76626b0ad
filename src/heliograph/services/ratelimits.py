"""Organization rate-limit rules: create, list, change, delete (rules apply to requests that send
no `Helicone-RateLimit-Policy` header; the gateway reads them through `CachedRuleSource`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb import repository
from heliograph.appdb.models import OrgRateLimit
from heliograph.domain.ratelimit import RateLimitPolicy, parse_policy
from heliograph.services.rule_cache import CachedRuleSource as CachedRuleSource
from heliograph.services.rule_cache import by_precedence


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    id: str
    name: str
    quota: float
    window_seconds: int
    unit: str
    segment: str | None
    created_at: datetime

    @property
    def policy(self) -> RateLimitPolicy:
        return RateLimitPolicy(self.quota, self.window_seconds, self.unit, self.segment)


@dataclass(frozen=True, slots=True)
class RuleInput:
    name: str
    quota: float
    window_seconds: int
    unit: str = "request"
    segment: str | None = None

    def validated(self) -> RateLimitPolicy:
        """The policy this input describes; raises `InvalidPolicy` with the reason otherwise."""
        text = f"{self.quota};w={self.window_seconds};u={self.unit}"
        return parse_policy(text + (f";s={self.segment}" if self.segment else ""))


class RateLimitRuleService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, org_id: str, rule: RuleInput) -> RateLimitRule:
        policy = rule.validated()
        record = OrgRateLimit(
            id=str(uuid.uuid4()),
            organization_id=org_id,
            name=rule.name,
            quota=policy.quota,
            window_seconds=policy.window_s,
            unit=policy.unit,
            segment=policy.segment,
            created_at=datetime.now(UTC),
        )
        with self._sessions.begin() as session:
            repository.add_rate_limit(session, record)
        return _rule(record)

    def list(self, org_id: str) -> list[RateLimitRule]:
        with self._sessions() as session:
            return [_rule(record) for record in repository.list_rate_limits(session, org_id)]

    def update(self, org_id: str, rule_id: str, rule: RuleInput) -> RateLimitRule | None:
        policy = rule.validated()
        with self._sessions.begin() as session:
            record = repository.get_rate_limit(session, org_id, rule_id)
            if record is None:
                return None
            record.name, record.quota, record.window_seconds = (
                rule.name,
                policy.quota,
                policy.window_s,
            )
            record.unit, record.segment = policy.unit, policy.segment
            return _rule(record)

    def delete(self, org_id: str, rule_id: str) -> bool:
        with self._sessions.begin() as session:
            record = repository.get_rate_limit(session, org_id, rule_id)
            if record is None:
                return False
            record.deleted_at = datetime.now(UTC)
            return True

    def policies(self, org_id: str) -> tuple[RateLimitPolicy, ...]:
        """The organization's rules, most specific first (property, user, everyone), then the
        most restrictive first, as Helicone orders them."""
        return by_precedence([rule.policy for rule in self.list(org_id)])


def _rule(record: OrgRateLimit) -> RateLimitRule:
    return RateLimitRule(
        record.id,
        record.name,
        record.quota,
        record.window_seconds,
        record.unit,
        record.segment,
        record.created_at,
    )
