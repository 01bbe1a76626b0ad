"""Sessions: the list and totals, names, the distributions behind the session charts, one
session's tree, and the tag and feedback a person gives a session, in Helicone's shapes."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from heliograph.analytics.aggregate_rows import SessionNameRow, SessionRow
from heliograph.analytics.sessions import DISTRIBUTIONS, QUANTILES
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.filters import check_text
from heliograph.domain.money import nano_to_usd
from heliograph.domain.queries import AggregateQuery, QueryError
from heliograph.domain.sessions import build_tree
from heliograph.domain.times import iso
from heliograph.services.token_counts import token_counts

MAX_TAG_CHARS = 200


class SessionService:
    def __init__(self, store: AnalyticsStore) -> None:
        self._aggregates = store.aggregates
        self._annotations = store.annotations

    async def sessions(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        check_bounds(query)
        return [_session(row) for row in await self._aggregates.sessions(organization_id, query)]

    async def count(self, organization_id: str, query: AggregateQuery) -> dict[str, Any]:
        check_bounds(query)
        row = await self._aggregates.session_count(organization_id, query)
        return {
            "count": int(row["count"]),
            "total_cost": nano_to_usd(row["total_cost"]),
            "avg_cost": nano_to_usd(row["avg_cost"]),
            "avg_latency": float(row["avg_latency"] or 0),
            "avg_requests": float(row["avg_requests"] or 0),
        }

    async def names(
        self, organization_id: str, query: AggregateQuery, name_contains: str
    ) -> list[dict[str, Any]]:
        check_bounds(query)
        check_text("nameContains", name_contains)
        rows = await self._aggregates.session_names(organization_id, query, name_contains)
        return [_name(row) for row in rows]

    async def metrics(
        self, organization_id: str, query: AggregateQuery, p_size: str, interquartile: bool
    ) -> dict[str, Any]:
        """Histograms of requests, duration (seconds) and cost (USD) per session, trimmed at the
        `p_size` quantile (or to the range between it and its mirror with `interquartile`)."""
        check_bounds(query)
        if p_size not in QUANTILES:
            raise QueryError(f"pSize must be one of {', '.join(QUANTILES)}, got {p_size!r}")
        upper = QUANTILES[p_size]
        lower = round(1 - upper, 6) if interquartile else None
        if lower is not None and lower > upper:
            upper, lower = lower, upper
        bounds, histograms = await self._aggregates.session_distributions(
            organization_id, query, upper, lower
        )
        result: dict[str, Any] = {"average": {}}
        for name in DISTRIBUTIONS:
            result[name] = [_bin(entry) for entry in histograms.get(name, [])]
            average = bounds[f"{name}_average"]
            result["average"][name] = [{"average": _finite(average)}]
        return result

    async def tree(self, organization_id: str, session_id: str) -> dict[str, Any] | None:
        check_text("session id", session_id)
        rows = await self._aggregates.session_requests(organization_id, session_id)
        if not rows:
            return None
        tree = build_tree(session_id, rows)
        tree["session_name"] = rows[0]["session_name"] or None
        tree.update(await self.annotations(organization_id, session_id))
        return tree

    async def detail(self, organization_id: str, session_id: str) -> dict[str, Any] | None:
        """`tree`, plus when the session started (UTC ISO) and who took part in it: the
        dashboard's session page, from one read of its requests."""
        check_text("session id", session_id)
        rows = await self._aggregates.session_requests(organization_id, session_id)
        if not rows:
            return None
        tree = build_tree(session_id, rows)
        tree["session_name"] = rows[0]["session_name"] or None
        started_ms = min(int(row["created_ms"]) for row in rows)
        tree["started_at"] = datetime.fromtimestamp(started_ms / 1000, UTC).isoformat()
        tree["user_ids"] = sorted({str(row["user_id"]) for row in rows if row["user_id"]})
        tree.update(await self.annotations(organization_id, session_id))
        return tree

    async def annotations(self, organization_id: str, session_id: str) -> dict[str, Any]:
        check_text("session id", session_id)
        found = await self._annotations.of_session(organization_id, session_id)
        feedback = found.get("feedback")
        rating = None if not feedback else feedback == "1"
        return {"tag": found.get("tag") or None, "feedback": rating}

    async def set_tag(self, organization_id: str, session_id: str, tag: str) -> bool:
        """Tag a session of the organization's; False when it has no such session."""
        check_text("tag", tag, MAX_TAG_CHARS)
        return await self._annotate(organization_id, session_id, "tag", tag)

    async def set_feedback(self, organization_id: str, session_id: str, rating: bool) -> bool:
        value = "1" if rating else "0"
        return await self._annotate(organization_id, session_id, "feedback", value)

    async def _annotate(self, organization_id: str, session_id: str, name: str, value: str) -> bool:
        check_text("session id", session_id)
        if not await self._aggregates.session_exists(organization_id, session_id):
            return False
        await self._annotations.annotate_session(organization_id, session_id, name, value)
        return True


def check_bounds(query: AggregateQuery) -> None:
    """Limit, offset and time range are sane (the filter was checked when it was parsed)."""
    if not 1 <= query.limit <= 1000:
        raise QueryError(f"limit must be between 1 and 1000, got {query.limit}")
    if query.offset < 0:
        raise QueryError(f"offset must be 0 or more, got {query.offset}")
    start, end = query.time.start_ms, query.time.end_ms
    if start is not None and end is not None and start >= end:
        raise QueryError("timeFilter.startTimeUnixMs must be before endTimeUnixMs")
    check_text("search", query.search)
    check_text("name", query.name or "")


def _session(row: SessionRow) -> dict[str, Any]:
    return {
        "session_id": row["session_id"],
        "session_name": row["session_name"],
        "created_at": iso(row["created_at"]),
        "latest_request_created_at": iso(row["latest_request_created_at"]),
        **_requests_and_cost(row),
        **token_counts(row),
        "avg_latency": float(row["avg_latency"]),
        "duration_ms": int(row["duration_ms"]),
        "user_ids": sorted(user for user in row["user_ids"] if user),
    }


def _name(row: SessionNameRow) -> dict[str, Any]:
    return {
        "name": row["name"],
        "created_at": iso(row["first_used"]),
        "first_used": iso(row["first_used"]),
        "last_used": iso(row["last_used"]),
        "session_count": int(row["session_count"]),
        **_requests_and_cost(row),
        "avg_latency": float(row["avg_latency"]),
    }


def _requests_and_cost(row: SessionRow | SessionNameRow) -> dict[str, int | float]:
    """What a session, or every session of a name, cost in requests and in USD."""
    return {
        "total_requests": int(row["total_requests"]),
        "total_cost": nano_to_usd(row["total_cost"]),
    }


def _finite(value: Any) -> float:
    """An average over no sessions is NULL or NaN depending on the engine; report 0."""
    number = float(value) if value is not None else 0.0
    return number if math.isfinite(number) else 0.0


def _bin(entry: Any) -> dict[str, Any]:
    start, end, height = entry
    return {"range_start": str(start), "range_end": str(end), "value": float(height)}
