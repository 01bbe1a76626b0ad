"""`Annotations`: what people add to requests and sessions after the fact (scores, feedback,
properties, session tags), appended to their own tables and read back newest value first, so
request rows are never rewritten."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from heliograph.analytics import sessions
from heliograph.analytics.definitions import newest_values_sql
from heliograph.analytics.engine import AnalyticsEngine
from heliograph.domain.times import now_stored

ANNOTATIONS = "request_annotations"
ADDED_PROPERTIES = "request_properties"
SESSION_ANNOTATIONS = "session_annotations"


class Annotations:
    def __init__(self, engine: AnalyticsEngine) -> None:
        self._engine = engine

    async def add(
        self, organization_id: str, request_id: str, values: dict[str, float], source: str
    ) -> None:
        """Append scores for a request (the caller has checked the request is the org's)."""
        created = now_stored()
        rows = [
            {
                "organization_id": organization_id,
                "request_id": request_id,
                "name": name,
                "value": value,
                "created_at": created,
                "source": source,
            }
            for name, value in values.items()
        ]
        data = b"\n".join(orjson.dumps(row) for row in rows)
        await self._engine.insert(ANNOTATIONS, data, uuid.uuid4().hex)

    async def scores(
        self, organization_id: str, request_ids: list[str]
    ) -> dict[str, dict[str, float]]:
        """The newest value of every score name, per request."""
        newest = await self._newest(ANNOTATIONS, "name", organization_id, request_ids)
        return {id_: {k: float(v) for k, v in named.items()} for id_, named in newest.items()}

    async def add_property(
        self, organization_id: str, request_id: str, key: str, value: str
    ) -> None:
        """Append a property to a request (the caller has checked the request is the org's)."""
        row = {
            "organization_id": organization_id,
            "request_id": request_id,
            "key": key,
            "value": value,
            "created_at": now_stored(),
        }
        await self._engine.insert(ADDED_PROPERTIES, orjson.dumps(row), uuid.uuid4().hex)

    async def added_count(self, organization_id: str, request_id: str) -> int:
        """How many values were ever added to one request's properties."""
        scope = self._engine.scope(organization_id)
        params = scope.params(id=request_id)
        sql = (
            f"SELECT count() AS added FROM {ADDED_PROPERTIES} "
            f"WHERE {scope.clause} AND request_id = {{id:UUID}}"
        )
        rows = await self._engine.read(scope, sql, params)
        return int(rows[0]["added"]) if rows else 0

    async def added_properties(
        self, organization_id: str, request_ids: list[str]
    ) -> dict[str, dict[str, str]]:
        """The newest added value of every property key, per request."""
        newest = await self._newest(ADDED_PROPERTIES, "key", organization_id, request_ids)
        return {id_: {k: str(v) for k, v in named.items()} for id_, named in newest.items()}

    async def _newest(
        self, table: str, name_column: str, organization_id: str, request_ids: list[str]
    ) -> dict[str, dict[str, Any]]:
        """Per request, the newest value of each name in an append-only annotation table."""
        if not request_ids:
            return {}
        scope = self._engine.scope(organization_id)
        params = scope.params(ids=request_ids)
        newest = newest_values_sql(
            table, name_column, scope.clause, " AND request_id IN {ids:Array(UUID)}"
        )
        sql = f"SELECT toString(request_id) AS id, name, value FROM ({newest})"
        found: dict[str, dict[str, Any]] = {}
        for row in await self._engine.read(scope, sql, params):
            found.setdefault(row["id"], {})[row["name"]] = row["value"]
        return found

    async def annotate_session(
        self, organization_id: str, session_id: str, kind: str, value: str
    ) -> None:
        row = {
            "organization_id": organization_id,
            "session_id": session_id,
            "kind": kind,
            "value": value,
            "created_at": now_stored(),
        }
        await self._engine.insert(SESSION_ANNOTATIONS, orjson.dumps(row), uuid.uuid4().hex)

    async def of_session(self, organization_id: str, session_id: str) -> dict[str, str]:
        """The newest tag and feedback of one session, by kind."""
        scope = self._engine.scope(organization_id)
        rows = await self._engine.read(scope, *sessions.session_annotation_sql(scope, session_id))
        return {row["kind"]: row["value"] for row in rows}
