"""Importing history from Helicone: its `request_response_rmt` export (JSON lines or CSV, read by
`ingest/helicone_files.py`) into the analytics store, and its `helicone_api_keys` table (CSV) into
the app DB, both in batches (memory stays flat however large the file) and both idempotent: ids
already stored are skipped, and each batch carries a deduplication token. A row that cannot be
read is counted and named by its line; only a file that is not such an export at all stops the
import."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy.orm import Session, sessionmaker

from heliograph.analytics.annotations import ANNOTATIONS
from heliograph.analytics.store import AnalyticsStore
from heliograph.appdb.key_import import stored_key_hashes
from heliograph.appdb.models import ApiKey
from heliograph.domain.errors import InvalidInput
from heliograph.domain.redaction import Redactor
from heliograph.ingest.helicone_files import SourceRow
from heliograph.ingest.helicone_rows import (
    ImportedKey,
    ImportedRequest,
    RefusedRow,
    key_from_helicone,
    request_from_helicone,
)
from heliograph.services.audit import SYSTEM, AuditLog
from heliograph.state.bodies import write_body_file

BATCH_ROWS = 5_000
BATCH_BYTES = 64 * 1024 * 1024  # a batch of large bodies is written before it holds more
MAX_REASONS = 5
KEY_BATCH = 500
IMPORTED_KEY_PREFIX = "imported"  # the clear key is unknown: listings show this instead


class StrictStop(InvalidInput):
    """`--strict`: the first refused row ends the import."""


@dataclass
class Tally:
    """What happened to a file's rows; `reasons` keeps the first few refusals."""

    read: int = 0
    imported: int = 0
    present: int = 0  # stored already (an earlier run, or an earlier row with the same id)
    refused: int = 0
    skipped: int = 0  # outside --since/--until; for keys, deleted or temporary ones
    conflicting: int = 0  # keys only: the hash belongs to another organization
    reasons: list[str] = field(default_factory=list)
    tokens: int = 0
    cost_nano: int = 0

    def refuse(self, line: int, reason: str, strict: bool) -> None:
        self.refused += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"line {line}: {reason}")
        if strict:
            raise StrictStop(f"line {line}: {reason} (stopped: --strict)")


Progress = Callable[[int, Tally], None]  # (bytes read, the tally so far)


class RequestImport:
    """Helicone requests into `organization_id`'s rows, in batches: ids stored already are
    skipped, the rest inserted with a token derived from their ids (so a retried batch is
    stored once), bodies too large for a row kept in body files as ingest keeps them."""

    def __init__(
        self,
        store: AnalyticsStore,
        organization_id: str,
        body_dir: Path,
        max_body_bytes: int,
        redactor: Redactor | None = None,
        since: str | None = None,
        until: str | None = None,
        strict: bool = False,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self._store = store
        self._org = str(uuid.UUID(organization_id))
        self._body_dir = body_dir
        self._max_body = max_body_bytes
        self._redactor = redactor
        self._since, self._until = since, until  # stored-time text, compared as text
        self._strict = strict
        self._batch_rows = batch_rows
        self.tally = Tally()

    def run(self, rows: Iterable[SourceRow], progress: Progress | None = None) -> Tally:
        batch: list[ImportedRequest] = []
        size = 0
        for source in rows:
            imported = self._mapped(source)
            if imported is not None:
                batch.append(imported)
                size += len(imported.row["request_body"]) + len(imported.row["response_body"])
            if len(batch) >= self._batch_rows or size >= BATCH_BYTES:
                self._write(batch)
                batch, size = [], 0
            if progress is not None:
                progress(source.offset, self.tally)
        if batch:
            self._write(batch)
        return self.tally

    def _mapped(self, source: SourceRow) -> ImportedRequest | None:
        tally = self.tally
        tally.read += 1
        if source.values is None:
            tally.refuse(source.line, source.problem, self._strict)
            return None
        try:
            imported = request_from_helicone(
                source.values, self._org, self._max_body, self._redactor
            )
        except RefusedRow as refused:
            tally.refuse(source.line, str(refused), self._strict)
            return None
        created = imported.row["request_created_at"]
        if (self._since and created < self._since) or (self._until and created >= self._until):
            tally.skipped += 1
            return None
        return imported

    def _write(self, batch: list[ImportedRequest]) -> None:
        newest: dict[str, ImportedRequest] = {}
        for imported in batch:  # an export without FINAL may hold several versions of a row
            kept = newest.get(imported.row["request_id"])
            if kept is None or imported.version >= kept.version:
                newest[imported.row["request_id"]] = imported
        ids = sorted(newest)
        stored = self._store.stored_request_times_blocking(self._org, ids)
        present = {request_id for request_id, _ in stored}
        fresh = [newest[i] for i in ids if i not in present]
        self.tally.present += len(batch) - len(fresh)
        if not fresh:
            return
        token = _token(self._org, [imported.row["request_id"] for imported in fresh])
        for imported in fresh:
            if imported.body_file is not None:
                request_id = imported.row["request_id"]
                write_body_file(self._body_dir, self._org, request_id, imported.body_file)
        rows = b"\n".join(orjson.dumps(imported.row) for imported in fresh)
        self._store.insert_requests_blocking(rows, token)
        self._write_scores(fresh, token)
        for imported in fresh:
            self.tally.imported += 1
            self.tally.tokens += imported.total_tokens
            self.tally.cost_nano += imported.row["cost"]

    def _write_scores(self, fresh: list[ImportedRequest], token: str) -> None:
        """Helicone keeps scores in the row; here they are annotations, dated at the request
        (so any score given later, here, is newer)."""
        lines = [
            orjson.dumps(
                {
                    "organization_id": self._org,
                    "request_id": imported.row["request_id"],
                    "name": name,
                    "value": value,
                    "created_at": imported.row["request_created_at"],
                    "source": "helicone-import",
                }
            )
            for imported in fresh
            for name, value in imported.scores.items()
        ]
        if lines:
            self._store.engine.insert_blocking(ANNOTATIONS, b"\n".join(lines), f"{token}.scores")


def _token(organization_id: str, request_ids: list[str]) -> str:
    """The same batch of the same file gives the same token, so a retried insert is one."""
    digest = hashlib.sha256("\n".join([organization_id, *request_ids]).encode()).hexdigest()
    return f"helicone-import-{digest[:40]}"


class KeyImport:
    """Helicone API keys into `organization_id`, by their hashes (Helicone's scheme is
    Heliograph's, so the keys work as they are); a hash stored already is left alone."""

    def __init__(
        self, sessions: sessionmaker[Session], audit: AuditLog, organization_id: str
    ) -> None:
        self._sessions = sessions
        self._audit = audit
        self._org = organization_id
        self._strict = False
        self.tally = Tally()

    def run(self, rows: Iterable[SourceRow], strict: bool = False) -> Tally:
        self._strict = strict
        batch: dict[str, ImportedKey] = {}
        for source in rows:
            key = self._mapped(source)
            if key is not None:
                if key.key_hash in batch:
                    self.tally.present += 1
                batch[key.key_hash] = key
            if len(batch) >= KEY_BATCH:
                self._write(batch)
                batch = {}
        if batch:
            self._write(batch)
        return self.tally

    def _mapped(self, source: SourceRow) -> ImportedKey | None:
        self.tally.read += 1
        if source.values is None:
            self.tally.refuse(source.line, source.problem, self._strict)
            return None
        try:
            key = key_from_helicone(source.values)
        except RefusedRow as refused:
            self.tally.refuse(source.line, str(refused), self._strict)
            return None
        if key is None:
            self.tally.skipped += 1
        return key

    def _write(self, batch: dict[str, ImportedKey]) -> None:
        with self._sessions.begin() as session:
            stored = stored_key_hashes(session, list(batch))
            for key_hash, key in batch.items():
                owner = stored.get(key_hash)
                if owner is None:
                    self._add(session, key)
                elif owner == self._org:
                    self.tally.present += 1
                else:
                    self.tally.conflicting += 1

    def _add(self, session: Session, key: ImportedKey) -> None:
        record = ApiKey(
            id=str(uuid.uuid4()),
            organization_id=self._org,
            api_key_hash=key.key_hash,
            api_key_name=key.name,
            key_prefix=IMPORTED_KEY_PREFIX,
            created_at=key.created_at,
            key_permissions=key.permissions.value,
        )
        session.add(record)
        details = {"name": key.name, "key_permissions": key.permissions.value, "from": "helicone"}
        target = ("api_key", record.id)
        self._audit.record(SYSTEM, "api_key.import", self._org, target, details, session=session)
        self.tally.imported += 1


def find_organization(organizations: list[tuple[str, str]], wanted: str) -> str:
    """The id of the organization `wanted` names, by id or by name (which must be unique)."""
    by_id = [org_id for org_id, _ in organizations if org_id == wanted.strip().lower()]
    by_name = [org_id for org_id, name in organizations if name == wanted]
    if by_id or len(by_name) == 1:
        return (by_id or by_name)[0]
    if by_name:
        raise InvalidInput(f"{len(by_name)} organizations are named {wanted!r}; give the id")
    raise InvalidInput(f"no organization {wanted!r}; create it first (heliograph init)")
