"""Organizations and the people in them: creating, renaming, deleting and transferring an
organization, members and their roles (with the rules that keep an organization owned), and
invitations by link (and e-mail), which expire and are used once."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Update, delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import Invitation, Organization, OrganizationMember, User
from heliograph.appdb.repository import rows_changed
from heliograph.domain.access import Forbidden, Role
from heliograph.domain.errors import InvalidInput
from heliograph.services.accounts import (
    MAX_TOKEN,
    Membership,
    PendingInvitation,
    new_token,
    normalise_email,
    token_hash,
)
from heliograph.services.audit import Actor, AuditLog
from heliograph.services.mailer import Mailer, MailError
from heliograph.settings import Settings

log = logging.getLogger("heliograph.organizations")

MAX_NAME = 200
MAX_PENDING = 1000  # pending invitations per organization
INVITABLE = (Role.ADMIN, Role.MEMBER, Role.VIEWER)


class NotFound(InvalidInput):
    status = 404
    code = "not_found"


class Conflict(InvalidInput):
    status = 409
    code = "conflict"


@dataclass(frozen=True, slots=True)
class OrganizationInfo:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    email: str
    role: Role
    joined: datetime


@dataclass(frozen=True, slots=True)
class InvitationInfo:
    id: str
    organization_id: str
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewInvitation:
    """An invitation just made: its link carries the token, shown this once."""

    invitation: InvitationInfo
    organization_name: str
    link: str


def organization_name(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise InvalidInput("name must not be empty")
    if len(name) > MAX_NAME or not name.isprintable():
        raise InvalidInput(f"name must be printable and at most {MAX_NAME} characters")
    return name


class OrganizationService:
    def __init__(
        self, sessions: sessionmaker[Session], audit: AuditLog, mailer: Mailer, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._mailer = mailer
        self._settings = settings

    # Organizations

    def create(self, name: str, owner_user_id: str, actor: Actor) -> str:
        """A new organization owned by `owner_user_id`."""
        name = organization_name(name)
        organization_id = str(uuid.uuid4())
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            db.add(Organization(id=organization_id, name=name, created_at=now))
            db.flush()  # the member row's foreign key needs the organization first
            db.add(
                OrganizationMember(
                    organization_id=organization_id,
                    user_id=owner_user_id,
                    role=Role.OWNER.value,
                    created_at=now,
                )
            )
            self._audit.record(
                actor,
                "organization.create",
                organization_id,
                ("organization", organization_id),
                {"name": name},
                session=db,
            )
        return organization_id

    def resolve(self, ref: str) -> str | None:
        """An organization id, or an organization's exact name, as the id."""
        with self._sessions() as db:
            if len(ref) <= 36 and db.get(Organization, ref) is not None:
                return ref
            return db.scalar(
                select(Organization.id)
                .where(Organization.name == ref)
                .order_by(Organization.created_at)
                .limit(1)
            )

    def get(self, organization_id: str) -> OrganizationInfo:
        with self._sessions() as db:
            found = db.get(Organization, organization_id)
            if found is None:
                raise NotFound(f"no organization {organization_id[:40]}")
            return OrganizationInfo(found.id, found.name, found.created_at)

    def rename(self, organization_id: str, name: str, actor: Actor) -> OrganizationInfo:
        name = organization_name(name)
        with self._sessions.begin() as db:
            found = db.get(Organization, organization_id)
            if found is None:
                raise NotFound(f"no organization {organization_id[:40]}")
            before, found.name = found.name, name
            self._audit.record(
                actor,
                "organization.rename",
                organization_id,
                ("organization", organization_id),
                {"from": before, "to": name},
                session=db,
            )
            return OrganizationInfo(found.id, found.name, found.created_at)

    def delete(self, organization_id: str, actor: Actor) -> None:
        """Delete the organization's app DB rows (members, keys, invitations, settings: the
        foreign keys cascade). Its audit lines stay, and so do its rows in the analytics store."""
        with self._sessions.begin() as db:
            gone = db.execute(delete(Organization).where(Organization.id == organization_id))
            if rows_changed(gone) == 0:
                raise NotFound(f"no organization {organization_id[:40]}")
            self._audit.record(
                actor,
                "organization.delete",
                organization_id,
                ("organization", organization_id),
                session=db,
            )

    def transfer(self, organization_id: str, new_owner: str, old_owner: str, actor: Actor) -> None:
        """Make a member the owner; the owner handing it over becomes an admin."""
        if new_owner == old_owner:
            raise InvalidInput("you already own this organization")
        with self._sessions.begin() as db:
            _lock_members(db, organization_id)
            heir = _member(db, organization_id, new_owner)
            giver = _member(db, organization_id, old_owner)
            if giver.role != Role.OWNER.value:
                raise Forbidden("only an owner can transfer the organization")
            heir.role, giver.role = Role.OWNER.value, Role.ADMIN.value
            self._audit.record(
                actor,
                "organization.transfer",
                organization_id,
                ("user", new_owner),
                {"from": old_owner},
                session=db,
            )

    # Members

    def add_member(
        self,
        organization_id: str,
        user_id: str,
        role: Role,
        actor: Actor,
        session: Session | None = None,
    ) -> None:
        """Add a person with `role`; someone already a member keeps the role they have."""
        with self._transaction(session) as db:
            if db.get(OrganizationMember, (organization_id, user_id)) is not None:
                return
            db.add(
                OrganizationMember(
                    organization_id=organization_id,
                    user_id=user_id,
                    role=role.value,
                    created_at=datetime.now(UTC),
                )
            )
            self._audit.record(
                actor,
                "member.add",
                organization_id,
                ("user", user_id),
                {"role": role.value},
                session=db,
            )

    def memberships(self, user_id: str) -> list[Membership]:
        with self._sessions() as db:
            rows = db.execute(
                select(Organization.id, Organization.name, OrganizationMember.role)
                .join(OrganizationMember, OrganizationMember.organization_id == Organization.id)
                .where(OrganizationMember.user_id == user_id)
                .order_by(Organization.name, Organization.id)
            )
            return [Membership(row[0], row[1], Role(row[2])) for row in rows]

    def members(self, organization_id: str) -> list[Member]:
        with self._sessions() as db:
            rows = db.execute(
                select(
                    OrganizationMember.user_id,
                    User.email,
                    OrganizationMember.role,
                    OrganizationMember.created_at,
                )
                .join(User, User.id == OrganizationMember.user_id)
                .where(OrganizationMember.organization_id == organization_id)
                .order_by(OrganizationMember.created_at, User.email)
            )
            return [Member(row[0], row[1], Role(row[2]), row[3]) for row in rows]

    def change_role(
        self, organization_id: str, user_id: str, role: Role, by: Role, actor: Actor
    ) -> Member:
        """A member's new role. Nobody becomes owner this way (that is a transfer), only an
        owner changes an owner, and the last owner stays one."""
        if role is Role.OWNER:
            raise Forbidden("nobody becomes owner by a role change; transfer the organization")
        with self._sessions.begin() as db:
            _lock_members(db, organization_id)
            member = _member(db, organization_id, user_id)
            before = Role(member.role)
            if before is Role.OWNER:
                _check_owner_may_go(db, organization_id, by, "change the role of")
            member.role = role.value
            if before is not role:
                self._audit.record(
                    actor,
                    "member.role_change",
                    organization_id,
                    ("user", user_id),
                    {"from": before.value, "to": role.value},
                    session=db,
                )
            email = db.scalar(select(User.email).where(User.id == user_id)) or ""
            return Member(user_id, email, role, member.created_at)

    def remove_member(self, organization_id: str, user_id: str, by: Role, actor: Actor) -> None:
        """Remove a member (or let one leave); an owner only by an owner, never the last."""
        with self._sessions.begin() as db:
            _lock_members(db, organization_id)
            member = _member(db, organization_id, user_id)
            if member.role == Role.OWNER.value:
                _check_owner_may_go(db, organization_id, by, "remove")
            db.delete(member)
            self._audit.record(
                actor,
                "member.remove",
                organization_id,
                ("user", user_id),
                {"role": member.role},
                session=db,
            )

    # Invitations

    def invite(self, organization_id: str, email: str, role: Role, actor: Actor) -> NewInvitation:
        """An invitation to `email` with `role`; a pending one to the same address is replaced,
        so only the newest link works."""
        email = normalise_email(email)
        if role not in INVITABLE:
            raise InvalidInput("role must be admin, member or viewer")
        token = new_token()
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self._settings.invitation_ttl_s)
        with self._sessions.begin() as db:
            organization = db.get(Organization, organization_id)
            if organization is None:
                raise NotFound(f"no organization {organization_id[:40]}")
            if self._is_member(db, organization_id, email):
                raise Conflict(f"{email} is already a member of this organization")
            if self._pending_count(db, organization_id, now) >= MAX_PENDING:
                raise InvalidInput(f"at most {MAX_PENDING} pending invitations; revoke some")
            replaced = db.execute(
                _pending(organization_id, now)
                .where(Invitation.email == email)
                .values(revoked_at=now)
            )
            row = Invitation(
                id=str(uuid.uuid4()),
                organization_id=organization_id,
                email=email,
                role=role.value,
                token_hash=token_hash(token),
                invited_by=actor.user_id,
                created_at=now,
                expires_at=expires,
            )
            db.add(row)
            self._audit.record(
                actor,
                "invitation.create",
                organization_id,
                ("invitation", row.id),
                {"email": email, "role": role.value, "replaced": rows_changed(replaced)},
                session=db,
            )
            name = organization.name
        link = f"{self._settings.resolved_public_url}/invite?token={token}"
        return NewInvitation(_invitation(row), name, link)

    def send_invitation(self, new: NewInvitation, inviter: str) -> str | None:
        """E-mail the invitation (blocking: call it on a worker thread). None when it was
        handed to the SMTP server, else why not."""
        if not self._mailer.enabled:
            return "no SMTP server is configured; hand the link over yourself"
        invitation = new.invitation
        text = (
            f"{inviter or 'Someone'} invited you to join {new.organization_name} on Heliograph "
            f"as {invitation.role.value}.\n\n"
            f"Accept the invitation: {new.link}\n\n"
            f"The link works once and until {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n"
        )
        try:
            self._mailer.send(invitation.email, f"Join {new.organization_name} on Heliograph", text)
        except MailError as error:
            return str(error)
        return None

    def invitations(self, organization_id: str) -> list[InvitationInfo]:
        """The pending invitations, newest first (their tokens are never shown again)."""
        now = datetime.now(UTC)
        with self._sessions() as db:
            rows = db.scalars(
                select(Invitation)
                .where(
                    Invitation.organization_id == organization_id,
                    Invitation.accepted_at.is_(None),
                    Invitation.revoked_at.is_(None),
                    Invitation.expires_at > now,
                )
                .order_by(Invitation.created_at.desc(), Invitation.id)
            )
            return [_invitation(row) for row in rows]

    def revoke_invitation(self, organization_id: str, invitation_id: str, actor: Actor) -> None:
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            revoked = db.execute(
                _pending(organization_id, now)
                .where(Invitation.id == invitation_id)
                .values(revoked_at=now)
            )
            if rows_changed(revoked) == 0:
                raise NotFound(f"no pending invitation {invitation_id[:40]}")
            self._audit.record(
                actor,
                "invitation.revoke",
                organization_id,
                ("invitation", invitation_id),
                session=db,
            )

    def pending_invitation(self, token: str) -> PendingInvitation | None:
        """The invitation behind `token`, or None when unknown, expired, revoked or used."""
        if not token or len(token) > MAX_TOKEN:
            return None
        now = datetime.now(UTC)
        with self._sessions() as db:
            found = db.execute(
                select(Invitation, Organization.name)
                .join(Organization, Organization.id == Invitation.organization_id)
                .where(Invitation.token_hash == token_hash(token))
            ).first()
            if found is None or not _is_pending(found[0], now):
                return None
            row, name = found
            return PendingInvitation(
                row.id, row.organization_id, name, row.email, Role(row.role), row.expires_at
            )

    def accept_invitation(self, token: str, user_id: str, email: str, actor: Actor) -> Membership:
        """Join the invitation's organization with its role (a member already keeps theirs).
        The invitation must be for this person's e-mail, and works once."""
        pending = self.pending_invitation(token)
        if pending is None:
            raise NotFound("the invitation is unknown, used, revoked or expired")
        if pending.email != email.strip().lower():
            raise Forbidden("this invitation was sent to another e-mail address")
        now = datetime.now(UTC)
        with self._sessions.begin() as db:
            # One conditional update claims the invitation: of two racing accepts, one wins.
            claimed = db.execute(
                _pending(pending.organization_id, now)
                .where(Invitation.id == pending.id)
                .values(accepted_at=now)
            )
            if rows_changed(claimed) == 0:
                raise NotFound("the invitation is unknown, used, revoked or expired")
            self.add_member(pending.organization_id, user_id, pending.role, actor, session=db)
            self._audit.record(
                actor,
                "invitation.accept",
                pending.organization_id,
                ("invitation", pending.id),
                {"role": pending.role.value},
                session=db,
            )
            role = _member(db, pending.organization_id, user_id).role
        return Membership(pending.organization_id, pending.organization_name, Role(role))

    # Helpers

    @contextlib.contextmanager
    def _transaction(self, session: Session | None) -> Iterator[Session]:
        """The caller's session when given (it commits), else a transaction of our own."""
        if session is not None:
            yield session
            return
        with self._sessions.begin() as db:
            yield db

    @staticmethod
    def _is_member(db: Session, organization_id: str, email: str) -> bool:
        found = db.scalar(
            select(OrganizationMember.user_id)
            .join(User, User.id == OrganizationMember.user_id)
            .where(OrganizationMember.organization_id == organization_id, User.email == email)
        )
        return found is not None

    @staticmethod
    def _pending_count(db: Session, organization_id: str, now: datetime) -> int:
        count = db.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(
                Invitation.organization_id == organization_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
        )
        return int(count or 0)


def _pending(organization_id: str, now: datetime) -> Update:
    """An update of the organization's invitations that are still pending at `now`."""
    return update(Invitation).where(
        Invitation.organization_id == organization_id,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > now,
    )


def _lock_members(db: Session, organization_id: str) -> None:
    """Serialise changes to one organization's members: a no-op write to its row takes the row
    lock on PostgreSQL and the write lock on SQLite before anything is read, so two owners
    stepping each other down cannot both see the other stay."""
    db.execute(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(name=Organization.name)
    )


def _member(db: Session, organization_id: str, user_id: str) -> OrganizationMember:
    found = db.get(OrganizationMember, (organization_id, user_id)) if len(user_id) <= 36 else None
    if found is None:
        raise NotFound(f"no member {user_id[:40]} in this organization")
    return found


def _check_owner_may_go(db: Session, organization_id: str, by: Role, doing: str) -> None:
    """An owner is changed or removed only by an owner, and only while another owner stays."""
    if by is not Role.OWNER:
        raise Forbidden(f"only an owner can {doing} an owner")
    owners = db.scalar(
        select(func.count())
        .select_from(OrganizationMember)
        .where(
            OrganizationMember.organization_id == organization_id,
            OrganizationMember.role == Role.OWNER.value,
        )
    )
    if int(owners or 0) <= 1:
        raise Forbidden("the last owner stays; transfer the organization first")


def _is_pending(row: Invitation, now: datetime) -> bool:
    return row.accepted_at is None and row.revoked_at is None and row.expires_at > now


def _invitation(row: Invitation) -> InvitationInfo:
    return InvitationInfo(
        row.id,
        row.organization_id,
        row.email,
        Role(row.role),
        row.created_at,
        row.expires_at,
    )
