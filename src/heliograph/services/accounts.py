"""People: sign-up under the installation's policy, sign-in and sessions (server-side, so a
sign-out or a password change ends them at once), passwords and their resets, single-sign-on
users, and each person's role in their organizations."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import (
    Organization,
    OrganizationMember,
    PasswordReset,
    User,
    UserIdentity,
    UserSession,
)
from heliograph.domain.access import Forbidden, NotAuthenticated, Role, role_from
from heliograph.domain.errors import InvalidInput
from heliograph.services.audit import SYSTEM, Actor, AuditLog
from heliograph.services.passwords import (
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from heliograph.settings import InvalidSetting

MAX_EMAIL = 320
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
MAX_TOKEN = 200


class SignupPolicy(StrEnum):
    FIRST_USER = "first-user"  # the first person becomes owner; later ones need an invitation
    INVITE = "invite"  # everyone needs an invitation (the first user comes from the CLI)
    OPEN = "open"  # anyone may sign up and gets an organization of their own


class SignupRefused(Forbidden):
    pass


class InvalidEmail(InvalidInput):
    pass


def token_hash(token: str) -> str:
    """What the database keeps of a session, invitation or reset token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > MAX_EMAIL or not EMAIL.fullmatch(email) or not email.isprintable():
        raise InvalidEmail("not an e-mail address")
    return email


@dataclass(frozen=True, slots=True)
class SignedInUser:
    """The person behind a live session cookie."""

    user_id: str
    email: str
    session_id: str
    csrf_token: str


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: the cookie's token and CSRF value (shown once), and for whom."""

    user_id: str
    email: str
    token: str
    csrf_token: str
    max_age_s: int
    organization_id: str | None = None  # the organization sign-up made or joined


@dataclass(frozen=True, slots=True)
class SsoClaims:
    """What a verified ID token says of the person signing in."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str = ""


@dataclass(frozen=True, slots=True)
class Membership:
    organization_id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class PendingInvitation:
    id: str
    organization_id: str
    organization_name: str
    email: str
    role: Role
    expires_at: datetime


class Organizations(Protocol):
    """What sign-up needs of `services/organizations.py`."""

    def create(self, name: str, owner_user_id: str, actor: Actor) -> str: ...

    def resolve(self, ref: str) -> str | None: ...

    def add_member(
        self,
        organization_id: str,
        user_id: str,
        role: Role,
        actor: Actor,
        session: Session | None = None,
    ) -> None: ...

    def memberships(self, user_id: str) -> list[Membership]: ...

    def pending_invitation(self, token: str) -> PendingInvitation | None: ...

    def accept_invitation(
        self, token: str, user_id: str, email: str, actor: Actor
    ) -> Membership: ...


@dataclass(frozen=True, slots=True)
class AccountRules:
    signup: SignupPolicy
    session_ttl_s: float
    reset_ttl_s: float
    domain_organization: tuple[str, str] | None  # (e-mail domain, organization id or name)
    sso_default_role: Role


class AccountService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        rules: AccountRules,
        organizations: Organizations,
        audit: AuditLog,
    ) -> None:
        self._sessions = sessions
        self._rules = rules
        self._organizations = organizations
        self._audit = audit
        self._signing_up = threading.Lock()  # one first user, even when two arrive together

    # Sessions

    def session(self, token: str) -> SignedInUser | None:
        """The person whose live session `token` is, or None (unknown, ended, or disabled)."""
        if len(token) > MAX_TOKEN:
            return None
        now = datetime.now(UTC)
        with self._sessions() as db:
            found = db.get(UserSession, token_hash(token))
            if found is None or found.revoked_at is not None or found.expires_at <= now:
                return None
            user = db.get(User, found.user_id)
            if user is None or user.disabled_at is not None:
                return None
            return SignedInUser(user.id, user.email, found.id, found.csrf_token)

    def open_session(self, user_id: str, email: str, actor: Actor) -> NewSession:
        token, csrf = new_token(), new_token()
        now = datetime.now(UTC)
        ttl = self._rules.session_ttl_s
        with self._sessions.begin() as db:
            db.add(
                UserSession(
                    id=token_hash(token),
                    user_id=user_id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + timedelta(seconds=ttl),
                    address=actor.address[:64],
                    user_agent=actor.user_agent[:300],
                )
            )
        return NewSession(user_id, email, token, csrf, int(ttl))

    def logout(self, token: str, actor: Actor) -> None:
        with self._sessions.begin() as db:
            found = db.get(UserSession, token_hash(token)) if len(token) <= MAX_TOKEN else None
            if found is not None and found.revoked_at is None:
                found.revoked_at = datetime.now(UTC)
                self._audit.record(actor, "logout", None, ("user", found.user_id), session=db)

    def role_of(self, user_id: str, organization_id: str) -> Role | None:
        with self._sessions() as db:
            member = db.get(OrganizationMember, (organization_id, user_id))
            return None if member is None else Role(member.role)

    def me(self, user_id: str) -> tuple[User, list[Membership]]:
        with self._sessions() as db:
            user = db.get(User, user_id)
            if user is None:
                raise NotAuthenticated("no such user")
        return user, self._organizations.memberships(user_id)

    # Sign-up and sign-in

    def signup(
        self,
        email: str,
        password: str,
        organization_name: str,
        invitation_token: str | None,
        actor: Actor,
    ) -> NewSession:
        """A new person, under the sign-up policy: with an invitation they join its
        organization; otherwise (first user, or `open`) they own a new one."""
        email = normalise_email(email)
        check_strength(password)
        invitation = None
        if invitation_token:
            invitation = self._organizations.pending_invitation(invitation_token)
            if invitation is None:
                raise SignupRefused("the invitation is unknown, used or expired")
            if invitation.email != email:
                raise SignupRefused("the invitation was sent to another e-mail address")
        hashed = hash_password(password)  # before the lock: hashing takes a tenth of a second
        with self._signing_up:
            if invitation is None:
                self._check_policy(first=self._user_count() == 0)
            user_id = self._add_user(email, hashed)
        actor = _as(actor, user_id, email)
        self._audit.record(actor, "user.signup", None, ("user", user_id))
        if invitation is not None and invitation_token:
            joined = self._organizations.accept_invitation(invitation_token, user_id, email, actor)
            organization_id = joined.organization_id
        else:
            organization_id = self._new_organization(organization_name, user_id, actor)
        opened = self.open_session(user_id, email, actor)
        return _with_organization(opened, organization_id)

    def login(self, email: str, password: str, actor: Actor) -> NewSession:
        """A session for the right password; one message for every failure, so a caller cannot
        tell an unknown e-mail from a wrong password (throttled by the route)."""
        try:
            email = normalise_email(email)
        except InvalidEmail:
            email = ""
        with self._sessions() as db:
            user = db.scalar(select(User).where(User.email == email)) if email else None
        stored = user.password_hash if user is not None else None
        if not verify_password(stored, password) or user is None or user.disabled_at:
            self._audit.record(actor, "login.failure", None, ("email", email[:255]))
            raise NotAuthenticated("wrong e-mail or password")
        if stored is not None and needs_rehash(stored):
            self._set_password(user.id, password, keep=None)
        actor = _as(actor, user.id, user.email)
        self._audit.record(actor, "login.success", None, ("user", user.id))
        return self.open_session(user.id, user.email, actor)

    def sso_sign_in(self, claims: SsoClaims, actor: Actor) -> NewSession:
        """Sign in a person the issuer vouches for: by their linked identity, else by verified
        e-mail; a new person joins the e-mail domain's organization or follows the policy."""
        if not claims.email_verified:
            raise SignupRefused("the identity provider has not verified this e-mail address")
        email = normalise_email(claims.email)
        with self._signing_up:
            user_id, created = self._sso_user(claims, email)
        actor = _as(actor, user_id, email)
        organization_id = None
        if created:
            organization_id = self._place_sso_user(email, user_id, actor)
        self._audit.record(actor, "login.sso", None, ("user", user_id), {"issuer": claims.issuer})
        return _with_organization(self.open_session(user_id, email, actor), organization_id)

    # Passwords

    def change_password(
        self, user_id: str, current: str, new: str, keep_session_id: str, actor: Actor
    ) -> None:
        with self._sessions() as db:
            user = db.get(User, user_id)
        if user is None or not verify_password(user.password_hash, current):
            raise Forbidden("the current password is wrong")
        self._set_password(user_id, new, keep=keep_session_id)
        self._audit.record(actor, "user.password_change", None, ("user", user_id))

    def request_reset(self, email: str, actor: Actor) -> tuple[str, str] | None:
        """A reset token for the account (and its e-mail), or None when there is none."""
        try:
            email = normalise_email(email)
        except InvalidEmail:
            return None
        token = new_token()
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            user = db.scalar(select(User).where(User.email == email))
            if user is None or user.disabled_at is not None:
                return None
            expires = now + timedelta(seconds=self._rules.reset_ttl_s)
            db.add(
                PasswordReset(
                    token_hash=token_hash(token),
                    user_id=user.id,
                    created_at=now,
                    expires_at=expires,
                )
            )
            self._audit.record(
                actor, "user.password_reset_request", None, ("user", user.id), session=db
            )
        return token, email

    def reset_password(self, token: str, new: str, actor: Actor) -> None:
        check_strength(new)
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            reset = db.get(PasswordReset, token_hash(token)) if len(token) <= MAX_TOKEN else None
            if reset is None or reset.used_at is not None or reset.expires_at <= now:
                raise Forbidden("the reset link is unknown, used or expired")
            reset.used_at = now
            user_id = reset.user_id
        self._set_password(user_id, new, keep=None)
        self._audit.record(actor, "user.password_reset", None, ("user", user_id))

    def set_password(self, email: str, password: str) -> str:
        """The command line's reset: a new password for the account, every session ended."""
        email = normalise_email(email)
        with self._sessions() as db:
            user = db.scalar(select(User).where(User.email == email))
        if user is None:
            raise LookupError(f"no user {email}")
        self._set_password(user.id, password, keep=None)
        self._audit.record(SYSTEM, "user.password_reset", None, ("user", user.id))
        return user.id

    # Headless set-up

    def create_user(
        self, email: str, password: str, organization: str | None, role: Role = Role.OWNER
    ) -> tuple[str, str | None]:
        """A person (and, when `organization` names none yet, a new organization by that name),
        as `heliograph users create` makes them; returns (user id, organization id)."""
        email = normalise_email(email)
        with self._signing_up:
            user_id = self._add_user(email, hash_password(password))
        actor = _as(SYSTEM, user_id, email)
        self._audit.record(SYSTEM, "user.create", None, ("user", user_id))
        if organization is None:
            return user_id, None
        organization_id = self._organizations.resolve(organization)
        if organization_id is None:
            organization_id = self._organizations.create(organization, user_id, actor)
            if role is not Role.OWNER:
                self._set_role(organization_id, user_id, role)
        else:
            self._organizations.add_member(organization_id, user_id, role, SYSTEM)
        return user_id, organization_id

    def list_users(self) -> list[tuple[str, str]]:
        with self._sessions() as db:
            return [
                (row[0], row[1])
                for row in db.execute(select(User.id, User.email).order_by(User.created_at))
            ]

    # Helpers

    def _user_count(self) -> int:
        with self._sessions() as db:
            return int(db.scalar(select(func.count()).select_from(User)) or 0)

    def _check_policy(self, first: bool) -> None:
        policy = self._rules.signup
        if policy is SignupPolicy.OPEN or (first and policy is SignupPolicy.FIRST_USER):
            return
        raise SignupRefused("sign-up needs an invitation: ask an admin of your organization")

    def _add_user(self, email: str, password_hash: str | None) -> str:
        user_id = str(uuid.uuid4())
        exists = SignupRefused("an account with this e-mail address exists; sign in")
        try:
            with self._sessions.begin() as db:
                if db.scalar(select(User.id).where(User.email == email)) is not None:
                    raise exists
                db.add(
                    User(
                        id=user_id,
                        email=email,
                        password_hash=password_hash,
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:  # the same address, signed up by another API process meanwhile
            raise exists from None
        return user_id

    def unclaimed_organizations(self) -> list[str]:
        """The names of organizations nobody is a member of (made by `heliograph init`)."""
        with self._sessions() as db:
            members = select(OrganizationMember.organization_id)
            return list(
                db.scalars(select(Organization.name).where(Organization.id.not_in(members)))
            )

    def _new_organization(self, name: str, user_id: str, actor: Actor) -> str:
        """A new organization the person owns. Never one that exists already, even one nobody
        is in (as `heliograph init` makes them): whoever reached the sign-up page first would
        own its data; `heliograph users create --org` claims those from the server itself."""
        name = name.strip() or "My organization"
        if len(name) > 200:
            raise InvalidInput("organization_name has at most 200 characters")
        return self._organizations.create(name, user_id, actor)

    def _sso_user(self, claims: SsoClaims, email: str) -> tuple[str, bool]:
        """The user the identity belongs to (linked now if matched by e-mail), and whether the
        user is new; `SignupRefused` when the policy admits no new person."""
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            linked = db.get(UserIdentity, (claims.issuer, claims.subject))
            user = db.get(User, linked.user_id) if linked is not None else None
            if user is None:
                user = db.scalar(select(User).where(User.email == email))
            created = user is None
            if user is None:
                if not self._admits_new_sso_user(db, email):
                    raise SignupRefused(
                        "no account for this e-mail; ask an admin for an invitation"
                    )
                user = User(
                    id=str(uuid.uuid4()), email=email, name=claims.name[:200], created_at=now
                )
                db.add(user)
                db.flush()
            if user.disabled_at is not None:
                raise SignupRefused("this account is disabled")
            if linked is None and not created:
                # Matched by e-mail only: whoever set the password or holds a session may never
                # have owned the address the issuer has just vouched for.
                user.password_hash = None
                db.execute(
                    update(UserSession)
                    .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
            if linked is None:
                db.add(
                    UserIdentity(
                        issuer=claims.issuer,
                        subject=claims.subject,
                        user_id=user.id,
                        created_at=now,
                    )
                )
            return user.id, created

    def _admits_new_sso_user(self, db: Session, email: str) -> bool:
        if self._domain_organization_for(email) is not None:
            return True
        if self._rules.signup is SignupPolicy.OPEN:
            return True
        first = db.scalar(select(User.id).limit(1)) is None
        return first and self._rules.signup is SignupPolicy.FIRST_USER

    def _domain_organization_for(self, email: str) -> str | None:
        joined = self._rules.domain_organization
        if joined is None or email.rpartition("@")[2] != joined[0]:
            return None
        return joined[1]

    def _place_sso_user(self, email: str, user_id: str, actor: Actor) -> str:
        reference = self._domain_organization_for(email)
        if reference is not None:
            organization_id = self._organizations.resolve(reference)
            if organization_id is None:
                raise InvalidInput(
                    f"HELIOGRAPH_OIDC_DOMAIN_ORGANIZATION names no organization: {reference}"
                )
            self._organizations.add_member(
                organization_id, user_id, self._rules.sso_default_role, actor
            )
            return organization_id
        return self._new_organization(f"{email}'s organization", user_id, actor)

    def _set_password(self, user_id: str, password: str, keep: str | None) -> None:
        """Store a new hash and end every session but `keep`."""
        hashed = hash_password(password)
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            db.execute(
                update(User)
                .where(User.id == user_id)
                .values(password_hash=hashed, password_changed_at=now)
            )
            ending = update(UserSession).where(
                UserSession.user_id == user_id, UserSession.revoked_at.is_(None)
            )
            if keep is not None:
                ending = ending.where(UserSession.id != keep)
            db.execute(ending.values(revoked_at=now))
            # A reset link mailed before this password was set must not set another.
            db.execute(
                update(PasswordReset)
                .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_(None))
                .values(used_at=now)
            )

    def _set_role(self, organization_id: str, user_id: str, role: Role) -> None:
        with self._sessions.begin() as db:
            member = db.get(OrganizationMember, (organization_id, user_id))
            if member is not None:
                member.role = role.value


def account_rules(
    oidc: tuple[str, str, str],
    signup: str,
    session_ttl_s: float,
    reset_ttl_s: float,
    domain_organization: str,
    default_role: str,
) -> AccountRules:
    """The rules from their settings; a bad value stops the start with a message naming it."""
    try:
        policy = SignupPolicy(signup)
    except ValueError:
        raise InvalidSetting(
            f"HELIOGRAPH_SIGNUP must be first-user, invite or open, not {signup!r}"
        ) from None
    joined = None
    if any(oidc) and not all(oidc):
        raise InvalidSetting(
            "single sign-on needs all of HELIOGRAPH_OIDC_ISSUER, HELIOGRAPH_OIDC_CLIENT_ID and"
            " HELIOGRAPH_OIDC_CLIENT_SECRET (or none)"
        )
    if domain_organization:
        domain, _, reference = domain_organization.partition("=")
        if not domain.strip() or not reference.strip():
            raise InvalidSetting(
                "HELIOGRAPH_OIDC_DOMAIN_ORGANIZATION must look like example.com=<organization>"
            )
        joined = (domain.strip().lower().lstrip("@"), reference.strip())
    try:
        role = role_from(default_role)
    except InvalidInput as invalid:
        raise InvalidSetting(f"HELIOGRAPH_OIDC_DEFAULT_ROLE: {invalid}") from None
    if role is Role.OWNER:
        raise InvalidSetting("HELIOGRAPH_OIDC_DEFAULT_ROLE cannot be owner")
    return AccountRules(policy, session_ttl_s, reset_ttl_s, joined, role)


def _as(actor: Actor, user_id: str, email: str) -> Actor:
    return Actor(user_id=user_id, label=email, address=actor.address, user_agent=actor.user_agent)


def _with_organization(opened: NewSession, organization_id: str | None) -> NewSession:
    return NewSession(
        opened.user_id,
        opened.email,
        opened.token,
        opened.csrf_token,
        opened.max_age_s,
        organization_id,
    )
