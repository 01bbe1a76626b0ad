"""The orders a request list can take: Helicone's `SortLeafRequest` (one key, asc or desc)
parsed into a `Sort`, and the keys the user and session lists sort by. The API's schemas and
the SQL builders both take their names from here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from heliograph.domain.filters import FilterError, show, single


class RequestSortKey(StrEnum):
    CREATED_AT = "created_at"
    LATENCY = "latency"
    TOTAL_TOKENS = "total_tokens"
    COMPLETION_TOKENS = "completion_tokens"
    PROMPT_TOKENS = "prompt_tokens"
    COST = "cost"
    TIME_TO_FIRST_TOKEN = "time_to_first_token"  # noqa: S105 (a column, not a secret)
    USER_ID = "user_id"
    BODY_MODEL = "body_model"
    MODEL = "model"
    STATUS = "status"
    PROVIDER = "provider"


@dataclass(frozen=True, slots=True)
class Sort:
    """One key and a direction; ties are broken by request id in the same direction."""

    key: RequestSortKey = RequestSortKey.CREATED_AT
    descending: bool = True

    @property
    def is_newest_first(self) -> bool:
        return self.key is RequestSortKey.CREATED_AT and self.descending


NEWEST_FIRST = Sort()

# The user list's sort keys (`/v1/user/metrics/query`) and the session list's.
USER_SORT_KEYS = (
    "last_active",
    "first_active",
    "total_requests",
    "cost",
    "total_prompt_tokens",
    "total_completion_tokens",
    "total_tokens",
    "user_id",
)
SESSION_SORT_KEYS = (
    "latest_request_created_at",
    "created_at",
    "total_cost",
    "total_requests",
    "avg_latency",
)
DIRECTIONS = ("asc", "desc")


def parse_sort(sort: Any) -> Sort:
    """Helicone's `SortLeafRequest`; none (or `{}`) is newest first."""
    if sort is None or sort == {}:
        return NEWEST_FIRST
    key, direction = single(sort, "sort key")
    if key not in tuple(RequestSortKey):
        known = ", ".join(RequestSortKey)
        raise FilterError(f"unknown sort key {show(key)}; use one of {known}")
    if direction not in DIRECTIONS:
        raise FilterError(f'sort direction must be "asc" or "desc", got {show(direction)}')
    return Sort(RequestSortKey(key), direction == "desc")
