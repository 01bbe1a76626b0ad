"""Users: per-user activity and totals over an organization's requests, and the distribution of
requests and cost over users, in Helicone's shapes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from heliograph.analytics.aggregate_rows import UserRow
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.filters import check_text
from heliograph.domain.money import nano_to_usd
from heliograph.domain.queries import SESSION_PERCENTILES, AggregateQuery, QueryError
from heliograph.domain.times import iso
from heliograph.services.sessions import check_bounds
from heliograph.services.token_counts import token_counts

MAX_USER_IDS = 1000


class UserService:
    def __init__(self, store: AnalyticsStore) -> None:
        self._aggregates = store.aggregates

    async def metrics(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        check_bounds(query)
        rows = await self._aggregates.users(organization_id, query)
        count = await self._aggregates.user_count(organization_id, query)
        return {"users": [_user(row) for row in rows], "count": count, "hasUsers": count > 0}

    async def overview(
        self, organization_id: str, query: AggregateQuery, p_size: str, interquartile: bool
    ) -> dict[str, list[dict[str, Any]]]:
        """Helicone's user overview: histograms of requests and of cost (USD) per user, trimmed
        at the `p_size` quantile (or between it and its mirror with `interquartile`)."""
        if p_size not in SESSION_PERCENTILES:
            choices = ", ".join(SESSION_PERCENTILES)
            raise QueryError(f"pSize must be one of {choices}, got {p_size!r}")
        upper = SESSION_PERCENTILES[p_size]
        lower = round(1 - upper, 6) if interquartile else None
        if lower is not None and lower > upper:
            upper, lower = lower, upper
        found = await self._aggregates.user_distributions(organization_id, query, upper, lower)
        return {
            name: [_bin(entry) for entry in found.get(name, [])]
            for name in ("request_count", "user_cost")
        }

    async def activity(self, organization_id: str, query: AggregateQuery) -> dict[str, Any] | None:
        """The first user `query` selects, with its activity (first and last active, active days),
        without counting the users: a user page's header, from one read."""
        check_bounds(query)
        rows = await self._aggregates.users(organization_id, replace(query, limit=1))
        if not rows:
            return None
        return {**_user(rows[0]), "active_days": int(rows[0]["active_days"])}

    async def top(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        """The busiest users in the range, with their requests and cost (the home page's list)."""
        check_bounds(query)
        rows = await self._aggregates.top_users(organization_id, query)
        return [
            {
                "user_id": row["user_id"],
                "count": int(row["count"]),
                "cost": nano_to_usd(row["cost"]),
            }
            for row in rows
        ]

    async def totals(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        check_bounds(query)
        if len(query.user_ids) > MAX_USER_IDS:
            raise QueryError(f"userIds takes at most {MAX_USER_IDS} ids")
        for user_id in query.user_ids:
            check_text("a user id in userIds", user_id)
        rows = await self._aggregates.user_totals(organization_id, query)
        return [
            {
                "user_id": row["user_id"],
                "count": int(row["count"]),
                **token_counts(row),
                "cost": nano_to_usd(row["cost"]),
            }
            for row in rows
        ]


def _top_user(row: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": row["user_id"], "count": int(row["count"]), "cost": nano_to_usd(row["cost"])}


def _user(row: UserRow) -> dict[str, Any]:
    requests = int(row["total_requests"])
    tokens = token_counts(row)
    first, last = iso(row["first_active"]), iso(row["last_active"])
    return {
        "id": row["user_id"],
        "user_id": row["user_id"],
        "first_active": first,
        "last_active": last,
        "active_for": _days_between(first, last),
        "total_requests": requests,
        "average_requests_per_day_active": requests / max(int(row["active_days"]), 1),
        "average_tokens_per_request": tokens["total_tokens"] / max(requests, 1),
        "total_prompt_tokens": tokens["prompt_tokens"],
        "total_completion_tokens": tokens["completion_tokens"],
        "total_prompt_cache_read_tokens": tokens["prompt_cache_read_tokens"],
        "total_prompt_cache_write_tokens": tokens["prompt_cache_write_tokens"],
        "total_reasoning_tokens": tokens["reasoning_tokens"],
        "total_tokens": tokens["total_tokens"],
        "cost": nano_to_usd(row["total_cost"]),
    }


def _days_between(first: str | None, last: str | None) -> int:
    if not first or not last:
        return 0
    start = datetime.fromisoformat(first).astimezone(UTC).date()
    end = datetime.fromisoformat(last).astimezone(UTC).date()
    return (end - start).days + 1


def _bin(entry: Any) -> dict[str, Any]:
    start, end, height = entry
    return {"range_start": str(start), "range_end": str(end), "value": float(height)}
