"""`BatchInserter`: puts one batch of rows into the store, or on disk, and never lets one bad row
hold up the others. Reused request ids are settled first; a refused insert while the store still
answers is split in halves until the refused rows are found and quarantined; a store that does
not answer sends the whole batch to the spool, which `replay` writes back oldest first. Once rows
are in the store, the `on_stored` listeners hear of them (export, webhooks)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import orjson

from heliograph.domain.errors import HeliographError
from heliograph.domain.request_row import RequestRow
from heliograph.ingest.quarantine import Quarantine, portable_bytes
from heliograph.ingest.request_ids import StoredTimes, settle_ids
from heliograph.ingest.rows import BuiltRow
from heliograph.ingest.spool import Spool
from heliograph.telemetry import Telemetry

log = logging.getLogger("heliograph.ingest")

Insert = Callable[[bytes, str], None]
WriteBodies = Callable[[RequestRow, bytes], None]
# Told the rows of a batch once they are in the store, on the inserter's thread: it must return
# quickly (hand the rows to a queue of its own) and may not change them.
RowsStored = Callable[[list[RequestRow]], None]
# ClickHouse's names for errors in the data itself, not in the store.
ROW_ERRORS = re.compile(
    r"\((CANNOT_PARSE_\w+|CANNOT_READ_\w+|INCORRECT_DATA|TYPE_MISMATCH|CANNOT_CONVERT_TYPE"
    r"|VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE|TOO_LARGE_STRING_SIZE)\)"
)
# A spooled batch the store took none of is tried again this often, or as soon as it takes others.
RETRY_UNDECIDED_S = 30.0
# Spooled rows keep these beside the columns: whether the caller chose the id, so a replay
# settles it like the first attempt did, and the body file still to write once it is settled.
CLIENT_ID_MARK = "_client_request_id"
DEFERRED_BODIES = "_deferred_bodies"


@dataclass(slots=True)
class Batch:
    """Rows in the order they came (None where a record was quarantined), whether each id was
    chosen by the caller, and the deduplication token that stores the batch once."""

    rows: list[BuiltRow | None]
    client_chosen: list[bool]
    token: str


def blames_the_rows(error: Exception) -> bool:
    """Whether the store refused an insert because it could not read the rows (so other rows
    would go in), as opposed to refusing inserts at all."""
    return isinstance(error, UnicodeError) or ROW_ERRORS.search(str(error)) is not None


class StoreDown(HeliographError):
    """The store does not answer at all; the batch must wait in the spool."""


class Undecided(HeliographError):
    """The store answers but took none of the batch's rows, and nothing shows yet whether the
    rows or the store are at fault; the batch waits in the spool, nothing of it inserted."""


@dataclass(slots=True)
class Storage:
    """Where rows go, called on the inserter's thread: the store's blocking calls, and the files
    of bodies kept outside their row. Not frozen, so that a test can stand in a failing store."""

    insert: Insert
    answers: Callable[[], bool]
    stored_times: StoredTimes
    write_bodies: WriteBodies


class BatchInserter:
    def __init__(
        self, storage: Storage, spool: Spool, quarantine: Quarantine, telemetry: Telemetry
    ) -> None:
        self._storage = storage
        self._spool = spool
        self.quarantine = quarantine
        self.telemetry = telemetry
        self.store_healthy = True
        self._inserted = 0  # successful inserts: proof that the store takes rows
        # spool file -> (`_inserted`, time) when the store last took none of it
        self._undecided: dict[str, tuple[int, float]] = {}
        self._spooled = spool.size()
        self.spool_moved_at = time.monotonic()
        self.on_stored: list[RowsStored] = []

    def store(self, batch: Batch) -> None:
        """Insert the batch, or spool it (fsync'd) when the store is down. Raises only when the
        spool itself cannot be written, so a caller that gets no error knows the batch is kept."""
        if self.store_healthy:
            try:
                self._write(batch, proven=False)
                return
            except StoreDown as error:
                log.warning("store write failed, spooling %d rows: %s", len(batch.rows), error)
                self.telemetry.flush_failures.inc()
                self.store_healthy = False
            except Undecided:
                log.warning("the store took none of %d rows; spooled them", len(batch.rows))
                self.telemetry.flush_failures.inc()
            except Exception as error:  # a bug must not cost the batch: the replay sorts it out
                log.error(
                    "could not write a batch (%s: %s); spooling it", type(error).__name__, error
                )
        self.spool(batch)

    def spool(self, batch: Batch) -> None:
        """Keep the batch on disk (fsync'd), behind the batches spooled before it."""
        self._spool.write(batch.token, self._encode_spooled(batch))
        self._note_spool()

    def replay(self) -> bool:
        """Write spooled batches, oldest first; True when the spool is empty afterwards. A batch
        the store answers about but takes none of waits (the others go on) until the store has
        taken other rows since: then its refused rows are quarantined."""
        waiting, undecided_in_a_row = False, 0
        for path in self._spool.pending():
            if undecided_in_a_row == 2:
                break  # the store likely refuses everything: the rest waits for the next pass
            inserted_then, tried_at = self._undecided.get(path.name, (-1, 0.0))
            proven = inserted_then >= 0 and self._inserted > inserted_then
            if inserted_then == self._inserted and time.monotonic() - tried_at < RETRY_UNDECIDED_S:
                waiting = True
                continue  # nothing new to learn from it yet: let the files behind it go first
            try:
                self._write(self._read_spooled(path), proven)
            except StoreDown as error:
                log.info("store still unavailable (%s); %d batches spooled", error, self._spooled)
                self.store_healthy = False
                return False
            except Undecided:
                self._undecided[path.name] = (self._inserted, time.monotonic())
                waiting, undecided_in_a_row = True, undecided_in_a_row + 1
                continue
            except FileNotFoundError:
                continue  # replayed meanwhile by the other caller (shutdown)
            except Exception as error:  # never retried forever: set aside, go on with the rest
                self._quarantine_file(path, error)
            self._undecided.pop(path.name, None)
            undecided_in_a_row = 0
            path.unlink(missing_ok=True)
            self._note_spool()
        self.store_healthy = True  # it answers: new batches are tried, and show what it takes
        self._note_spool()
        return not waiting

    def spool_stalled(self, after_s: float) -> bool:
        return self._spooled > 0 and time.monotonic() - self.spool_moved_at > after_s

    def _write(self, batch: Batch, proven: bool) -> None:
        built = batch.rows
        rows = settle_ids([b.row if b else None for b in built], batch.client_chosen, self._lookup)
        for row, before in zip(rows, built, strict=True):
            if row is not None and before is not None and before.deferred_bodies is not None:
                self._write_deferred_bodies(row, before.deferred_bodies)
        lines = [self._encode(row) for row in rows]
        inserted = self._insert_finding_bad_rows(lines, batch.token, proven)
        if self.on_stored:
            stored = zip(rows, inserted, strict=True)
            self._announce([row for row, went_in in stored if went_in and row is not None])

    def _announce(self, rows: list[RequestRow]) -> None:
        """Tell each listener which rows are now stored. A listener that fails is logged and
        never fails the insert: the rows are in the store whatever it does. Only a batch written
        whole is announced; one cut short by an outage is announced when its replay is in."""
        if not rows:
            return
        for listener in self.on_stored:
            try:
                listener(rows)
            except Exception as error:
                log.error(
                    "a stored-rows listener (%s) failed on %d rows: %s: %s",
                    getattr(listener, "__qualname__", type(listener).__name__),
                    len(rows),
                    type(error).__name__,
                    error,
                )

    def _encode(self, row: Mapping[str, object] | None) -> bytes | None:
        if row is None:
            return None
        try:
            return orjson.dumps(row)
        except (TypeError, orjson.JSONEncodeError) as error:
            self.quarantine.add("row", f"not serializable: {error}", portable_bytes(row))
            return None

    def _insert_finding_bad_rows(
        self, lines: list[bytes | None], token: str, proven: bool
    ) -> list[bool]:
        """Insert the lines; when the store refuses them but still answers, split them in halves
        (tokens named after their place, so a retry splits and deduplicates the same way) down
        to the single rows it refuses, which are quarantined: at once when the store says the
        row cannot be read, else only once the store is seen taking rows (`proven`, or a piece
        of this batch). Until then the store may be refusing everything, and `Undecided` is
        raised with nothing inserted. Returns, for each line, whether it went in."""
        inserted = [False] * len(lines)
        refused: list[tuple[bytes, str]] = []
        failures_allowed = len(lines).bit_length() + 3  # a path to two neighbouring bad rows
        pieces = [(0, len(lines), token)]
        while pieces:
            start, end, piece_token = pieces.pop()
            present = [line for line in lines[start:end] if line is not None]
            if not present:
                continue
            try:
                self._storage.insert(b"\n".join(present), piece_token)
            except Exception as error:
                if not self._answers():
                    raise StoreDown(str(error)) from error
                unreadable = blames_the_rows(error)
                if not unreadable:
                    failures_allowed -= 1
                    if not proven and failures_allowed < 0:
                        raise Undecided from error
                if end - start > 1:
                    middle = (start + end) // 2
                    pieces += [
                        (middle, end, f"{piece_token}.1"),
                        (start, middle, f"{piece_token}.0"),
                    ]
                elif unreadable:
                    self.quarantine.add("row", f"refused by the store: {error}", present[0])
                else:
                    refused.append((present[0], str(error)))
                continue
            proven = True
            self._inserted += 1
            self.telemetry.rows_written.inc(len(present))
            inserted[start:end] = [line is not None for line in lines[start:end]]
        if refused and not proven:
            raise Undecided
        for line, reason in refused:
            self.quarantine.add("row", f"refused by the store: {reason}", line)
        return inserted

    def _write_deferred_bodies(self, row: RequestRow, document: bytes) -> None:
        try:
            self._storage.write_bodies(row, document)
        except OSError as error:  # the row keeps its previews; the rest of the batch goes on
            log.error("could not write the bodies of request %s: %s", row.get("request_id"), error)

    def _lookup(self, organization_id: str, request_ids: list[str]) -> set[tuple[str, str]]:
        try:
            return self._storage.stored_times(organization_id, request_ids)
        except Exception as error:
            raise StoreDown(f"could not look request ids up: {error}") from error

    def _answers(self) -> bool:
        try:
            return self._storage.answers()
        except Exception:
            return False

    def _read_spooled(self, path: Path) -> Batch:
        """A spooled batch, each line in its place; a line that is not a row is quarantined."""
        rows: list[BuiltRow | None] = []
        chosen: list[bool] = []
        for line in path.read_bytes().splitlines():
            row = self._decode_spooled(line)
            chosen.append(bool(row.pop(CLIENT_ID_MARK, False)) if row is not None else False)
            rows.append(_unspooled(row) if row is not None else None)
        return Batch(rows, chosen, Spool.token(path))

    def _decode_spooled(self, line: bytes) -> dict[str, object] | None:
        if not line.strip() or line == b"null":
            return None  # a place kept for a record quarantined before the batch was spooled
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            self.quarantine.add("spooled line", f"unreadable: {error}", line)
            return None
        if not isinstance(row, dict):
            self.quarantine.add("spooled line", "not a JSON object", line)
            return None
        return row

    def _encode_spooled(self, batch: Batch) -> bytes:
        """The batch as JSON lines, `null` keeping the place of a missing row so a replay splits
        it exactly as the first attempt did."""
        lines = []
        for built, chosen in zip(batch.rows, batch.client_chosen, strict=True):
            lines.append(self._encode(_spooled(built, chosen)) or b"null")
        return b"\n".join(lines)

    def _quarantine_file(self, path: Path, error: Exception) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            return
        reason = f"could not replay: {type(error).__name__}: {error}"
        self.quarantine.add("spool file", reason, data)

    def _note_spool(self) -> None:
        """Track when the spool last moved: emptied, shrank, or received its first batch."""
        size = self._spool.size()
        if size == 0 or size < self._spooled or self._spooled == 0:
            self.spool_moved_at = time.monotonic()
        self._spooled = size
        self.telemetry.spool_files.set(size)


def _spooled(built: BuiltRow | None, chosen: bool) -> Mapping[str, object] | None:
    """A row as the spool keeps it: its columns, and the marks it carries beside them."""
    if built is None:
        return None
    if not chosen and built.deferred_bodies is None:
        return built.row
    marked: dict[str, object] = {**built.row}
    if chosen:
        marked[CLIENT_ID_MARK] = True
    if built.deferred_bodies is not None:
        marked[DEFERRED_BODIES] = built.deferred_bodies.decode()
    return marked


def _unspooled(row: dict[str, object]) -> BuiltRow:
    """A spooled row (its client mark already taken), its deferred bodies set beside it."""
    document = row.pop(DEFERRED_BODIES, None)
    deferred = document.encode() if isinstance(document, str) else None
    return BuiltRow(cast(RequestRow, row), deferred)
