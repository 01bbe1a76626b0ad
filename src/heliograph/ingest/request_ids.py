"""One row per request id. An id the caller chose (`Helicone-Request-Id`, a log message) may
arrive again: an identical re-send (same id, same start time) is dropped, and a different request
reusing an id is stored under an id derived from it, keeping the id it asked for in the property
`Helicone-Reused-Request-Id`. Ids the gateway made up are random and never looked up."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

from heliograph.domain.request_row import RequestRow

REUSED_PROPERTY = "Helicone-Reused-Request-Id"

# (organization id, request ids) -> {(request id, created at)} of the ones already stored
StoredTimes = Callable[[str, list[str]], set[tuple[str, str]]]
Row = RequestRow


def derived_id(organization_id: str, request_id: str, created_at: str) -> str:
    """The id a reused id is stored under: the same for every re-send of that request."""
    digest = hashlib.sha256(f"{organization_id}|{request_id}|{created_at}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def settle_ids(
    rows: list[Row | None], client_chosen: list[bool], stored_times: StoredTimes
) -> list[Row | None]:
    """`rows` with identical re-sends replaced by None and reused ids moved to derived ids.

    Positions never shift, so a batch retried after a partial insert splits the same way."""
    chosen_rows = [
        chosen and _checkable(row) for row, chosen in zip(rows, client_chosen, strict=True)
    ]
    wanted: dict[str, list[str]] = {}
    for row, chosen in zip(rows, chosen_rows, strict=True):
        if row is not None and chosen:
            ids = wanted.setdefault(row["organization_id"], [])
            ids += [row["request_id"], _derived(row)]
    if not wanted:
        return rows
    taken: dict[tuple[str, str], set[str]] = {}
    for organization_id, ids in wanted.items():
        for request_id, created_at in stored_times(organization_id, ids):
            taken.setdefault((organization_id, request_id), set()).add(created_at)
    return [
        _settle(row, taken) if row is not None and chosen else row
        for row, chosen in zip(rows, chosen_rows, strict=True)
    ]


def _checkable(row: Row | None) -> bool:
    """A row whose organization and id are UUIDs and whose time is given; any other row is
    refused on insert, and must not fail the look-up of the rows around it."""
    if row is None or not isinstance(row.get("request_created_at"), str):
        return False
    return _is_uuid(row.get("organization_id")) and _is_uuid(row.get("request_id"))


def _is_uuid(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _settle(row: Row, taken: dict[tuple[str, str], set[str]]) -> Row | None:
    organization_id, created_at = row["organization_id"], row["request_created_at"]
    times = taken.setdefault((organization_id, row["request_id"]), set())
    if not times:
        times.add(created_at)
        return row
    if created_at in times:
        return None  # this very request, sent again
    fresh = _derived(row)
    fresh_times = taken.setdefault((organization_id, fresh), set())
    if created_at in fresh_times:
        return None  # the reuse itself was stored by an earlier send
    fresh_times.add(created_at)
    kept = row.get("properties")
    properties = {**(kept if isinstance(kept, dict) else {}), REUSED_PROPERTY: row["request_id"]}
    settled = row.copy()
    settled["request_id"], settled["properties"] = fresh, properties
    return settled


def _derived(row: Row) -> str:
    return derived_id(row["organization_id"], row["request_id"], row["request_created_at"])
