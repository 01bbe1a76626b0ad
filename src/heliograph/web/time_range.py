"""The time range every page's picker sets in the URL: `range=1h|24h|7d|30d|90d`, or
`range=custom&start=…&end=…` (ISO dates or times, UTC unless they say otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from heliograph.domain.errors import InvalidInput
from heliograph.domain.queries import TimeRange

# name -> (span, series bucket, label)
RANGES: dict[str, tuple[timedelta, str, str]] = {
    "1h": (timedelta(hours=1), "min", "Last hour"),
    "24h": (timedelta(hours=24), "hour", "Last 24 hours"),
    "7d": (timedelta(days=7), "hour", "Last 7 days"),
    "30d": (timedelta(days=30), "day", "Last 30 days"),
    "90d": (timedelta(days=90), "day", "Last 90 days"),
}
DEFAULT_RANGE = "24h"


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    start: datetime
    end: datetime
    increment: str

    @property
    def time(self) -> TimeRange:
        return TimeRange(int(self.start.timestamp() * 1000), int(self.end.timestamp() * 1000))

    @property
    def label(self) -> str:
        if self.name in RANGES:
            return RANGES[self.name][2]
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"


def window(name: str | None, start: str | None = None, end: str | None = None) -> Window:
    """The window the URL names; an unknown name is the default, a bad custom one a 400."""
    now = datetime.now(UTC)
    if name == "custom":
        first, last = _moment(start, "start"), _moment(end, "end") if end else now
        if first >= last:
            raise InvalidInput("the range's start must be before its end")
        return Window("custom", first, last, _increment(last - first))
    chosen = name if name in RANGES else DEFAULT_RANGE
    span, increment, _ = RANGES[chosen]
    return Window(chosen, now - span, now, increment)


def _moment(text: str | None, which: str) -> datetime:
    if not text:
        raise InvalidInput(f"a custom range needs its {which}")
    try:
        moment = datetime.fromisoformat(text[:40])
    except ValueError:
        raise InvalidInput(f"the range's {which} is not an ISO date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _increment(span: timedelta) -> str:
    if span <= timedelta(hours=3):
        return "min"
    if span <= timedelta(days=14):
        return "hour"
    if span <= timedelta(days=400):
        return "day"
    return "week"
