"""The engine itself holds every store read to one organization: a query that forgets its
`organization_id` clause, in any table, subquery or join, still sees only that organization."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from heliograph.analytics import aggregates
from heliograph.analytics.scope import Scope
from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.queries import AggregateQuery
from records import stored_row


async def seed(store: AnalyticsStore, org: str, model: str) -> str:
    row = stored_row(org, model, user_id=model)
    request_id: str = row["request_id"]
    await store.insert_requests(orjson.dumps(row), uuid.uuid4().hex)
    await store.annotations.add(org, request_id, {model: 1.0}, "test")
    await store.annotations.annotate_session(org, model, "tag", model)
    return request_id


UNSCOPED = [
    "SELECT DISTINCT model AS seen FROM request_response",
    "SELECT DISTINCT name AS seen FROM request_annotations",
    "SELECT DISTINCT value AS seen FROM session_annotations",
    "SELECT DISTINCT model AS seen FROM request_rollup_hourly",
    "SELECT DISTINCT seen FROM (SELECT model AS seen FROM request_response)",
    "SELECT DISTINCT r.model AS seen FROM request_response AS r "
    "JOIN request_annotations AS a ON a.request_id = r.request_id",
    "SELECT DISTINCT model AS seen FROM request_response "
    "WHERE request_id IN (SELECT request_id FROM request_annotations)",
    "SELECT DISTINCT model AS seen FROM request_response UNION DISTINCT "
    "SELECT DISTINCT model AS seen FROM request_rollup_hourly",
]


@pytest.mark.parametrize("sql", UNSCOPED)
async def test_an_unscoped_read_sees_only_its_organization(store: AnalyticsStore, sql: str) -> None:
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    marker = "mine-" + mine[:8]
    await seed(store, mine, marker)
    await seed(store, theirs, "theirs-" + theirs[:8])
    rows = await store.engine.read(store.engine.scope(mine), sql, {})
    assert {row["seen"] for row in rows} == {marker}


async def test_a_builder_that_forgets_its_scope_still_cannot_leak(
    store: AnalyticsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    await seed(store, mine, "mine")
    await seed(store, theirs, "theirs")

    def forgetful(_scope: Scope, _query: AggregateQuery) -> tuple[str, dict[str, Any]]:
        return "SELECT uniqExact(user_id) AS count FROM request_response", {}

    monkeypatch.setattr(aggregates, "user_count_sql", forgetful)
    assert await store.aggregates.user_count(mine, AggregateQuery()) == 1


async def test_the_ingest_lookup_is_scoped_and_blocking(store: AnalyticsStore) -> None:
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    my_id = await seed(store, mine, "mine")
    their_id = await seed(store, theirs, "theirs")
    stored = store.stored_request_times_blocking(mine, [my_id, their_id])
    assert {request_id for request_id, _ in stored} == {my_id}
    assert await store.requests.existing_ids(mine, [my_id, their_id]) == {my_id}


def test_only_the_engine_makes_a_scope(store: AnalyticsStore) -> None:
    """Every builder takes a `Scope`, and a `Scope` comes only from the engine, for one valid
    organization id, so no builder can be handed a made-up or mistyped organization."""
    org = str(uuid.uuid4())
    with pytest.raises(TypeError, match="made by the analytics engine"):
        Scope(org)
    with pytest.raises(ValueError, match="hexadecimal UUID"):
        store.engine.scope("not-a-uuid")
    scope = store.engine.scope(org.upper())
    assert scope.organization_id == org  # canonical, as the engine setting quotes it
    params: dict[str, Any] = {}
    assert scope.where("1", params) == "organization_id = {org:UUID} AND 1"
    assert params == {"org": org}
    assert org in scope.engine_settings()["additional_table_filters"]
