"""Sessions and users: aggregates over an organization's requests, in Helicone's shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from heliograph.analytics.aggregates import AggregateQuery
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.filters import compile_filter
from heliograph.domain.sessions import build_tree
from heliograph.services.requests import QueryError, iso

NANO = 1_000_000_000


class AggregateService:
    def __init__(self, store: AnalyticsStore) -> None:
        self._store = store

    async def sessions(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        _validate(query)
        return [_session(row) for row in await self._store.sessions(organization_id, query)]

    async def session_count(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        _validate(query)
        row = await self._store.session_count(organization_id, query)
        return {
            "count": int(row["count"]),
            "total_cost": int(row["total_cost"] or 0) / NANO,
            "avg_cost": float(row["avg_cost"] or 0) / NANO,
            "avg_latency": float(row["avg_latency"] or 0),
            "avg_requests": float(row["avg_requests"] or 0),
        }

    async def session_tree(self, organization_id: str, session_id: str) -> dict[str, Any] | None:
        rows = await self._store.session_requests(organization_id, session_id)
        if not rows:
            return None
        tree = build_tree(session_id, rows)
        tree["session_name"] = rows[0]["session_name"] or None
        return tree

    async def users(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        _validate(query)
        rows = await self._store.users(organization_id, query)
        count = await self._store.user_count(organization_id, query)
        return {"users": [_user(row) for row in rows], "count": count, "hasUsers": count > 0}


def _validate(query: AggregateQuery) -> None:
    if not 1 <= query.limit <= 1000:
        raise QueryError(f"limit must be between 1 and 1000, got {query.limit}")
    if query.offset < 0:
        raise QueryError(f"offset must be 0 or more, got {query.offset}")
    start, end = query.time.start_ms, query.time.end_ms
    if start is not None and end is not None and start >= end:
        raise QueryError("timeFilter.startTimeUnixMs must be before endTimeUnixMs")
    compile_filter(query.filter)


def _session(row: dict[str, Any]) -> dict[str, Any]:
    prompt, completion = int(row["prompt_tokens"]), int(row["completion_tokens"])
    return {
        "session_id": row["session_id"],
        "session_name": row["session_name"],
        "created_at": iso(row["created_at"]),
        "latest_request_created_at": iso(row["latest_request_created_at"]),
        "total_requests": int(row["total_requests"]),
        "total_cost": int(row["total_cost"]) / NANO,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "avg_latency": float(row["avg_latency"]),
        "user_ids": sorted(user for user in row["user_ids"] if user),
    }


def _user(row: dict[str, Any]) -> dict[str, Any]:
    requests = int(row["total_requests"])
    prompt, completion = int(row["total_prompt_tokens"]), int(row["total_completion_tokens"])
    first, last = iso(row["first_active"]), iso(row["last_active"])
    return {
        "id": row["user_id"],
        "user_id": row["user_id"],
        "first_active": first,
        "last_active": last,
        "active_for": _days_between(first, last),
        "total_requests": requests,
        "average_requests_per_day_active": requests / max(int(row["active_days"]), 1),
        "average_tokens_per_request": (prompt + completion) / max(requests, 1),
        "total_prompt_tokens": prompt,
        "total_completion_tokens": completion,
        "cost": int(row["total_cost"]) / NANO,
    }


def _days_between(first: str | None, last: str | None) -> int:
    if not first or not last:
        return 0
    start = datetime.fromisoformat(first).astimezone(UTC).date()
    end = datetime.fromisoformat(last).astimezone(UTC).date()
    return (end - start).days + 1
