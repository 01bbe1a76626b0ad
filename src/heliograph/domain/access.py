"""Who may do what: the roles of an organization's members, the permissions of its API keys, the
capabilities each grants, and `Caller`, the one value every API route is handed. A route names
the capability it needs; nothing else decides access."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from heliograph.domain.errors import InvalidInput


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class KeyPermissions(StrEnum):
    """Helicone's `key_permissions`: read and write, read only, write only."""

    READ_WRITE = "rw"
    READ = "r"
    WRITE = "w"


class Capability(StrEnum):
    READ = "read"  # logs, metrics, sessions, the SQL console, exports
    WRITE = "write"  # log through the gateway, feedback, scores, tags, prompts
    CONFIGURE = "configure"  # rate limits, redaction, hidden properties, organization settings
    MANAGE_KEYS = "manage_keys"  # API keys, provider keys, proxy keys
    MANAGE_MEMBERS = "manage_members"  # members, roles, invitations
    READ_AUDIT = "read_audit"
    OWN = "own"  # delete or transfer the organization


_VIEWER = frozenset({Capability.READ})
_MEMBER = _VIEWER | {Capability.WRITE}
_ADMIN = _MEMBER | {
    Capability.CONFIGURE,
    Capability.MANAGE_KEYS,
    Capability.MANAGE_MEMBERS,
    Capability.READ_AUDIT,
}
ROLE_CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.VIEWER: _VIEWER,
    Role.MEMBER: _MEMBER,
    Role.ADMIN: _ADMIN,
    Role.OWNER: _ADMIN | {Capability.OWN},
}
# A key acts for software, not a person: an `rw` key keeps everything keys could do before
# permissions existed (read, write, rate limits and settings, keys), but members, the audit log
# and the organization itself need a person.
KEY_CAPABILITIES: dict[KeyPermissions, frozenset[Capability]] = {
    KeyPermissions.READ: frozenset({Capability.READ}),
    KeyPermissions.WRITE: frozenset({Capability.WRITE}),
    KeyPermissions.READ_WRITE: frozenset(
        {Capability.READ, Capability.WRITE, Capability.CONFIGURE, Capability.MANAGE_KEYS}
    ),
}


class NotAuthenticated(InvalidInput):
    status = 401
    code = "unauthorized"


class Forbidden(InvalidInput):
    status = 403
    code = "forbidden"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling and for which organization: a person in one of their organizations (by
    session cookie) or an API key."""

    organization_id: str
    capabilities: frozenset[Capability]
    user_id: str | None = None
    key_id: str | None = None
    role: Role | None = None
    label: str = ""  # the person's e-mail, or the key's id, for the audit log

    def require(self, capability: Capability) -> Caller:
        if capability not in self.capabilities:
            raise Forbidden(f"this {self._kind} may not {_VERBS[capability]}")
        return self

    @property
    def _kind(self) -> str:
        return f"{self.role} role" if self.role is not None else "API key"


_VERBS = {
    Capability.READ: "read this organization's data",
    Capability.WRITE: "write logs, feedback or prompts",
    Capability.CONFIGURE: "change this organization's settings",
    Capability.MANAGE_KEYS: "manage keys",
    Capability.MANAGE_MEMBERS: "manage members or invitations",
    Capability.READ_AUDIT: "read the audit log",
    Capability.OWN: "delete or transfer the organization",
}


def role_from(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise InvalidInput(f"role must be one of {roles}, not {text[:40]!r}") from None


def permissions_from(text: str) -> KeyPermissions:
    try:
        return KeyPermissions(text)
    except ValueError:
        raise InvalidInput(f"key_permissions must be rw, r or w, not {text[:40]!r}") from None
