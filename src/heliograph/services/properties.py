"""Custom properties in Helicone's shapes: keys, value search, top values by cost or requests, and
requests and cost per value over time."""

from __future__ import annotations

import asyncio
from typing import Any

from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.filters import MAX_KEY_CHARS, check_text
from heliograph.domain.money import nano_to_usd
from heliograph.domain.queries import AggregateQuery, QueryError, check_span
from heliograph.domain.times import iso_time
from heliograph.services.hidden_properties import HiddenProperties


class PropertyService:
    def __init__(self, store: AnalyticsStore, hidden: HiddenProperties) -> None:
        self._aggregates = store.aggregates
        self.hidden = hidden

    async def keys(self, organization_id: str, query: AggregateQuery) -> list[dict[str, Any]]:
        """The keys in use, busiest first, leaving out those the organization hid."""
        hidden = await asyncio.to_thread(self.hidden.keys, organization_id)
        rows = await self._aggregates.property_keys(organization_id, query, hidden)
        return [{"property": row["key"], "requests": int(row["requests"])} for row in rows]

    async def values(
        self, organization_id: str, query: AggregateQuery, key: str, search: str
    ) -> list[dict[str, Any]]:
        check_key(key)
        check_text("searchTerm", search)
        rows = await self._aggregates.property_values(organization_id, query, key, search)
        return [{"value": row["value"], "requests": int(row["requests"])} for row in rows]

    async def top(
        self, organization_id: str, query: AggregateQuery, key: str, by: str
    ) -> list[dict[str, Any]]:
        check_key(key)
        rows = await self._aggregates.property_top(organization_id, query, key, by)
        return [
            {
                "value": row["value"],
                "requests": int(row["requests"]),
                "cost": nano_to_usd(row["cost_nano"]),
            }
            for row in rows
        ]

    async def over_time(
        self, organization_id: str, query: AggregateQuery, key: str, increment: str, tz: int
    ) -> list[dict[str, Any]]:
        check_key(key)
        check_span(query.time, increment)
        rows = await self._aggregates.property_over_time(organization_id, query, key, increment, tz)
        return [
            {
                "time": iso_time(row["time"]),
                "value": row["value"],
                "requests": int(row["requests"]),
                "cost": nano_to_usd(row["cost_nano"]),
            }
            for row in rows
        ]


def check_key(key: str) -> None:
    if not key:
        raise QueryError("a property key cannot be empty")
    check_text("a property key", key, MAX_KEY_CHARS)
