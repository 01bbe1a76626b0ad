"""The analytics store's contract, run on every engine: embedded chDB always, a ClickHouse server
when HELIOGRAPH_TEST_CLICKHOUSE_URL is set. Same SQL, same answers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from conftest import CLICKHOUSE_URL
from heliograph.analytics.rollup import summary_source
from heliograph.analytics.store import AnalyticsStore, open_store
from heliograph.domain.filter_tree import ALL_ROWS
from heliograph.domain.filters import parse_filter
from heliograph.domain.queries import AggregateQuery, RequestQuery, TimeRange
from heliograph.domain.sorts import parse_sort
from heliograph.domain.times import stored_time

ENGINES = [
    "chdb",
    pytest.param(
        "server",
        marks=[
            pytest.mark.clickhouse_server,
            pytest.mark.skipif(
                not CLICKHOUSE_URL, reason="set HELIOGRAPH_TEST_CLICKHOUSE_URL to run on a server"
            ),
        ],
    ),
]


@pytest.fixture(params=ENGINES)
async def store(
    request: pytest.FixtureRequest, analytics_dir: Path
) -> AsyncIterator[AnalyticsStore]:
    store = open_store(CLICKHOUSE_URL if request.param == "server" else "", analytics_dir)
    await store.migrate()
    yield store
    await store.close()


def row(org: str, minutes_ago: int, **values: object) -> dict[str, object]:
    created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {
        "request_id": str(uuid.uuid4()),
        "organization_id": org,
        "request_created_at": stored_time(created),
        "provider": "OPENAI",
        "model": "gpt-4o-mini",
        "status": 200,
        "latency": 100,
        "is_stream": False,
        "user_id": "u",
        "properties": {"team": "red"},
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": 1234,
        "pricing_status": "priced",
        "request_body": '{"q": "héllo"}',
        **values,
    }


async def insert(store: AnalyticsStore, rows: list[dict[str, object]]) -> None:
    data = b"\n".join(orjson.dumps(r) for r in rows)
    await store.insert_requests(data, uuid.uuid4().hex)


async def test_migrations_are_idempotent(store: AnalyticsStore) -> None:
    assert await store.migrate() == []
    assert await store.ping()


async def test_insert_list_count_and_get_are_scoped_to_the_organization(
    store: AnalyticsStore,
) -> None:
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [row(mine, 3, latency=300), row(mine, 2, user_id="v"), row(mine, 1), row(theirs, 1)]
    await insert(store, rows)

    listed = await store.requests.search(mine, RequestQuery(limit=10))
    assert [r["request_id"] for r in listed] == [
        rows[2]["request_id"],
        rows[1]["request_id"],
        rows[0]["request_id"],
    ]
    assert listed[0]["cost"] == 1234
    assert listed[0]["properties"] == {"team": "red"}
    assert await store.requests.count(mine, ALL_ROWS) == 3
    only_v = parse_filter({"request_response_rmt": {"user_id": {"equals": "v"}}})
    assert await store.requests.count(mine, only_v) == 1
    assert await store.requests.count(theirs, ALL_ROWS) == 1

    found = await store.requests.get(mine, str(rows[0]["request_id"]), include_body=True)
    assert found is not None
    assert found["request_body"] == '{"q": "héllo"}'
    assert await store.requests.get(theirs, str(rows[0]["request_id"]), include_body=False) is None

    by_latency = await store.requests.search(
        mine, RequestQuery(sort=parse_sort({"latency": "desc"}), limit=1)
    )
    assert by_latency[0]["latency"] == 300
    assert await store.requests.existing_ids(mine, [str(r["request_id"]) for r in rows]) == {
        str(r["request_id"]) for r in rows[:3]
    }


async def test_same_token_inserts_once(store: AnalyticsStore) -> None:
    org = str(uuid.uuid4())
    data = orjson.dumps(row(org, 1))
    await store.insert_requests(data, "contract-token-" + org)
    await store.insert_requests(data, "contract-token-" + org)
    assert await store.requests.count(org, ALL_ROWS) == 1


async def test_newest_first_reads_span_every_time_slice(store: AnalyticsStore) -> None:
    """Pages are read an hour, a day, a week, a month and then the rest at a time; requests in
    the future, at every slice edge and years back still come out in one newest-first order."""
    org = str(uuid.uuid4())
    minutes_ago = [-5, 0, 59, 61, 60 * 23, 60 * 25, 60 * 24 * 6, 60 * 24 * 8, 60 * 24 * 40, 10**6]
    rows = [row(org, minutes, latency=index) for index, minutes in enumerate(minutes_ago)]
    await insert(store, list(reversed(rows)))
    newest_first = [r["request_id"] for r in rows]

    listed = await store.requests.search(org, RequestQuery(limit=100))
    assert [r["request_id"] for r in listed] == newest_first
    for offset, limit in ((0, 3), (2, 5), (7, 3), (9, 10), (10, 1)):
        page = await store.requests.search(org, RequestQuery(limit=limit, offset=offset))
        assert [r["request_id"] for r in page] == newest_first[offset : offset + limit]
    oldest_first = await store.requests.search(
        org, RequestQuery(sort=parse_sort({"created_at": "asc"}), limit=100)
    )
    assert [r["request_id"] for r in oldest_first] == newest_first[::-1]
    slow = parse_filter({"request_response_rmt": {"latency": {"gte": 4}}})
    filtered = await store.requests.search(org, RequestQuery(filter=slow, limit=3))
    assert [r["request_id"] for r in filtered] == newest_first[4:7]

    paged, after = [], None
    while True:
        page = await store.requests.page_after(org, ALL_ROWS, after, 3)
        paged += [r["request_id"] for r in page]
        if len(page) < 3:
            break
        after = (page[-1]["request_created_at"], page[-1]["request_id"])
    assert paged == newest_first


ALWAYS = {"request_response_rmt": {"latency": {"gte": 0}}}  # true, but not in the rollup


def both_paths(filter_node: object) -> tuple[object, object]:
    """The filter as the rollup can answer it, and an equal one only the requests can answer."""
    return filter_node, {"left": filter_node, "operator": "and", "right": ALWAYS}


@pytest.mark.parametrize(
    ("filter_node", "start_minutes", "end_minutes"),
    [
        ("all", 60 * 30, 0),  # edges inside hours at both ends
        ({"request_response_rmt": {"model": {"equals": "gpt-4o"}}}, 60 * 30, 0),
        ({"request_response_rmt": {"status": {"gte": 400}}}, 60 * 24 * 3, 7),
        ("all", 20, 5),  # inside one hour: no whole hour at all
    ],
)
async def test_metrics_from_the_rollup_equal_metrics_from_requests(
    store: AnalyticsStore, filter_node: object, start_minutes: int, end_minutes: int
) -> None:
    org = str(uuid.uuid4())
    rows = [
        row(
            org,
            minutes,
            model=["gpt-4o", "gpt-4o-mini"][minutes % 2],
            status=[200, 200, 500, 429][minutes % 4],
            latency=minutes % 997,
            user_id=f"user-{minutes % 7}",
            time_to_first_token=None if minutes % 3 else minutes,
            cost=minutes * 1000,
        )
        for minutes in range(1, 60 * 24 * 4, 37)
    ]
    await insert(store, rows)
    now = datetime.now(UTC)
    span = TimeRange(
        int((now - timedelta(minutes=start_minutes)).timestamp() * 1000),
        int((now - timedelta(minutes=end_minutes)).timestamp() * 1000),
    )
    rollup, requests = (
        AggregateQuery(filter=parse_filter(f), time=span) for f in both_paths(filter_node)
    )
    whole_hours = start_minutes - end_minutes > 60
    scope = store.engine.scope(org)
    assert ("request_rollup_hourly" in summary_source(scope, rollup)[0]) is whole_hours
    assert "request_rollup_hourly" not in summary_source(scope, requests)[0]
    reads = store.aggregates
    totals = await reads.metric_totals(org, rollup)
    assert totals == await reads.metric_totals(org, requests)
    assert int(totals["requests"]) > 0 or start_minutes == 20
    assert await reads.model_breakdown(org, rollup) == await reads.model_breakdown(org, requests)
    for series in ("requests", "cost", "latency", "ttft", "users", "errors", "status"):
        for increment, tz in (("hour", 0), ("day", -120), ("day", 330), ("min", 0)):
            assert await reads.metric_series(org, rollup, series, increment, tz) == (
                await reads.metric_series(org, requests, series, increment, tz)
            ), (series, increment, tz)
    for metric in ("latency", "time_to_first_token", "total_tokens"):
        assert await reads.metric_quantiles(org, rollup, metric, "day", 0) == (
            await reads.metric_quantiles(org, requests, metric, "day", 0)
        )


BODIES = [
    '{"q": "Der GROSSE Bär aus Tökyö"}',
    '{"q": "東京都の天気"}',
    '{"q": "ДАННЫЕ за квартал"}',
    '{"q": "kubernetes budget review"}',
    '{"q": "naïve café"}',
]


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("bär aus TÖKYÖ", [0]),
        ("東京都", [1]),
        ("京", [1]),  # shorter than a 3-gram: no index, still found
        ("данные", [2]),
        ("ubernetes budg", [3]),
        ("NAÏVE CAFÉ", [4]),
        ('{"q": "', [0, 1, 2, 3, 4]),
        ("100%", []),
        ("nothing like it", []),
    ],
)
async def test_body_search_is_a_case_insensitive_substring_in_any_script(
    store: AnalyticsStore, search: str, expected: list[int]
) -> None:
    org = str(uuid.uuid4())
    rows = [row(org, index + 1, request_body=body) for index, body in enumerate(BODIES)]
    await insert(store, rows)
    contains = parse_filter({"request_response_rmt": {"request_body": {"contains": search}}})
    found = await store.requests.search(org, RequestQuery(filter=contains))
    assert sorted(str(r["request_id"]) for r in found) == sorted(
        str(rows[index]["request_id"]) for index in expected
    )
    excluded = await store.requests.count(
        org, parse_filter({"request_response_rmt": {"request_body": {"not-contains": search}}})
    )
    assert excluded == len(BODIES) - len(expected)


class RecordingExecutor:
    """Records the statements a migration run sends, as a fresh engine would see them."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def command(self, sql: str) -> None:
        self.commands.append(sql)

    def query(self, sql: str, params: object, settings: object = None) -> list[dict[str, object]]:
        return []


@pytest.mark.parametrize("server", [False, True])
def test_the_console_user_is_created_on_a_server_only(server: bool) -> None:
    from heliograph.analytics.migrate import apply_migrations

    recorded = RecordingExecutor()
    values = {"console_password_sha256": "ab" * 32}
    applied = apply_migrations(recorded, server, values)  # type: ignore[arg-type]
    assert "0008_console_user.server.sql" in applied  # recorded as applied either way
    created = [sql for sql in recorded.commands if "heliograph_console" in sql]
    if not server:
        assert created == []
        return
    user = next(sql for sql in created if sql.startswith("CREATE USER"))
    assert "sha256_hash BY '" + "ab" * 32 + "'" in user
    policy = next(sql for sql in created if sql.startswith("CREATE ROW POLICY"))
    assert "getSetting('SQL_heliograph_organization_id')" in policy
    assert "request_rollup_hourly" in policy
