"""Which kinds of personal data each organization has redacted from stored bodies, and a cached
`Redactor` per organization for the log writer (read on its worker thread)."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from heliograph.appdb.models import OrganizationSettings
from heliograph.domain.redaction import Redactor


class RedactionService:
    def __init__(self, sessions: sessionmaker[Session], ttl_s: float) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[Redactor | None, float]] = {}
        self._lock = threading.Lock()

    def kinds(self, org_id: str) -> tuple[str, ...]:
        with self._sessions() as session:
            settings = session.get(OrganizationSettings, org_id)
            if settings is None or not settings.redaction_kinds:
                return ()
            return tuple(settings.redaction_kinds.split(","))

    def set_kinds(self, org_id: str, kinds: list[str]) -> tuple[str, ...]:
        """Raises `UnknownKind` for anything but the known kinds."""
        chosen = Redactor(kinds).kinds
        with self._sessions.begin() as session:
            settings = session.get(OrganizationSettings, org_id)
            if settings is None:
                settings = OrganizationSettings(organization_id=org_id)
                session.add(settings)
            settings.redaction_kinds = ",".join(chosen)
        with self._lock:
            self._cache.pop(org_id, None)
        return chosen

    def redactor_for(self, org_id: str) -> Redactor | None:
        """The organization's redactor, or None when it redacts nothing; cached for `ttl_s`."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(org_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        kinds = self.kinds(org_id)
        redactor = Redactor(kinds) if kinds else None
        with self._lock:
            self._cache[org_id] = (redactor, now + self._ttl_s)
        return redactor
