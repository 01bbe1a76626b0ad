"""Times as the analytics engine prints and parses them (`YYYY-MM-DD hh:mm:ss.fff`, UTC) and as
the API shows them (ISO 8601 with a Z)."""

from __future__ import annotations

from datetime import UTC, datetime

STORED_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; a time without an offset is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stored_time(moment: datetime) -> str:
    """`moment` (aware) as the engine's `DateTime64(3)` text, in UTC to the millisecond."""
    return moment.astimezone(UTC).strftime(STORED_FORMAT)[:-3]


def now_stored() -> str:
    return stored_time(datetime.now(UTC))


def parse_stored(value: str) -> datetime:
    """A stored `YYYY-MM-DD hh:mm:ss.fff` (UTC) time; `ValueError` for anything else."""
    return datetime.strptime(value, STORED_FORMAT).replace(tzinfo=UTC)


def stored_ms(value: str) -> int:
    """A stored time as unix milliseconds."""
    return int(parse_stored(value).timestamp() * 1000)


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def iso(value: str | None) -> str | None:
    """A stored time as ISO 8601 with milliseconds and a Z; None for none."""
    if not value:
        return None
    return parse_stored(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_time(value: str) -> str:
    """A stored time without fraction (`YYYY-MM-DD hh:mm:ss`, a series bucket) as ISO 8601 Z."""
    return value.replace(" ", "T") + "Z"
