"""People: sign-up, sign-in and sessions, passwords (Argon2id) and their resets, single-sign-on
users, and each person's role in their organizations."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import OrganizationMember, User, UserSession
from heliograph.domain.access import Role


def token_hash(token: str) -> str:
    """What the database keeps of a session, invitation or reset token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The person behind a live session cookie."""

    user_id: str
    email: str
    session_id: str
    csrf_token: str


class AccountService:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def session(self, token: str) -> SignedInUser | None:
        """The person whose live session `token` is, or None (unknown, ended, or disabled)."""
        if len(token) > 200:
            return None
        now = datetime.now(UTC)
        with self._sessions() as db:
            found = db.get(UserSession, token_hash(token))
            if found is None or found.revoked_at is not None or _aware(found.expires_at) <= now:
                return None
            user = db.get(User, found.user_id)
            if user is None or user.disabled_at is not None:
                return None
            return SignedInUser(user.id, user.email, found.id, found.csrf_token)

    def role_of(self, user_id: str, organization_id: str) -> Role | None:
        with self._sessions() as db:
            member = db.scalar(
                select(OrganizationMember).where(
                    OrganizationMember.user_id == user_id,
                    OrganizationMember.organization_id == organization_id,
                )
            )
            return None if member is None else Role(member.role)


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: the cookie's token and CSRF value (shown once), and for whom."""

    user_id: str
    email: str
    token: str
    csrf_token: str
    max_age_s: int


@dataclass(frozen=True, slots=True)
class SsoClaims:
    """What a verified ID token says of the person signing in."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str = ""
