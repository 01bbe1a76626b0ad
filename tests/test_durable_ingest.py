"""What the API stores is what it acknowledged, once: `/v1/log/batch` answers 202 only when the
batch is inserted or spooled, a batch sent twice is one set of rows (and one count in the hourly
rollup), every request id has one row, and a log message's model prices its usage."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.executor import StoreUnavailable
from heliograph.domain.filter_tree import ALL_ROWS
from heliograph.domain.record import RequestRecord
from heliograph.domain.request_row import RequestRow
from heliograph.ingest.request_ids import REUSED_PROPERTY, derived_id, settle_ids
from heliograph.ingest.wire import encode_records
from records import make_record

TOKEN = "durable-test-token"


def record(organization_id: str, **changes: Any) -> RequestRecord:
    return make_record(organization_id, **changes)


def counts(executor: ChdbExecutor, organization_id: str) -> tuple[int, int]:
    """Rows in `request_response` and requests counted by the hourly rollup."""
    scope = {"org": organization_id}
    rows = executor.query(
        "SELECT count() AS n FROM request_response WHERE organization_id = {org:UUID}", scope
    )
    rollup = executor.query(
        "SELECT sum(requests) AS n FROM request_rollup_hourly WHERE organization_id = {org:UUID}",
        scope,
    )
    return int(rows[0]["n"]), int(rollup[0]["n"] or 0)


def stored(executor: ChdbExecutor, organization_id: str) -> list[dict[str, Any]]:
    return executor.query(
        "SELECT toString(request_id) AS id, properties, model, cost FROM request_response "
        "WHERE organization_id = {org:UUID}",
        {"org": organization_id},
    )


async def wait_for_rows(
    hg: Heliograph, executor: ChdbExecutor, organization_id: str
) -> list[dict[str, Any]]:
    """The organization's rows once everything handed to the writer so far is stored."""
    await hg.running.services.writer.idle()
    return await asyncio.to_thread(stored, executor, organization_id)


async def post_batch(hg: Heliograph, data: bytes) -> int:
    url = f"{hg.api}/v1/log/batch"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=data, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            return r.status


async def start_slow_flushing(tmp_path: Path, analytics_dir: Path, fake: Fake) -> Heliograph:
    """A Heliograph whose queue is written only at shutdown: what is stored before was stored
    because it was acknowledged."""
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, ingest_token=TOKEN, flush_interval_ms=60_000
    )
    return await start_heliograph(settings)


@pytest.fixture
async def slow_flushing(tmp_path: Path, analytics_dir: Path, fake: Fake) -> Any:
    hg = await start_slow_flushing(tmp_path, analytics_dir, fake)
    yield hg
    await hg.running.stop()


async def test_a_batch_is_acknowledged_only_once_it_is_spooled(slow_flushing: Heliograph) -> None:
    hg = slow_flushing
    inserter = hg.running.services.writer.inserter
    spool_dir = hg.running.services.settings.spool_dir

    def down(rows: bytes, token: str) -> None:
        raise StoreUnavailable("store is down (test)")

    inserter._storage.insert, inserter._storage.answers = down, lambda: False
    assert await post_batch(hg, encode_records([record(hg.organization_id)])) == 202
    assert list(spool_dir.glob("*.jsonl")), "acknowledged before it was on disk"


async def test_a_batch_sent_twice_is_stored_once_in_rows_and_rollup(
    tmp_path: Path, analytics_dir: Path, fake: Fake, chdb_executor: ChdbExecutor
) -> None:
    hg = await start_slow_flushing(tmp_path, analytics_dir, fake)
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    data = encode_records([record(hg.organization_id, created_at=hour_ago) for _ in range(3)])
    try:
        assert await post_batch(hg, data) == 202
        assert counts(chdb_executor, hg.organization_id) == (3, 3), "202 before it was stored"
        statuses = await asyncio.gather(post_batch(hg, data), post_batch(hg, data))
        assert list(statuses) == [202, 202]
    finally:
        await hg.running.stop()  # whatever was still queued is written now
    assert counts(chdb_executor, hg.organization_id) == (3, 3)


async def test_the_same_log_message_twice_is_one_row(
    tmp_path: Path, analytics_dir: Path, fake: Fake, chdb_executor: ChdbExecutor
) -> None:
    request_id = str(uuid.uuid4())
    message = log_message(request_id, datetime.now(UTC))
    hg = await start_slow_flushing(tmp_path, analytics_dir, fake)
    try:
        assert (await hg.api_post("/v1/log/request", message))[0] == 202
    finally:
        await hg.running.stop()  # written as one batch
    again = await start_heliograph(hg.running.services.settings)
    try:  # sent again, in a batch with another request
        assert (await again.api_post("/v1/log/request", message, hg.api_key))[0] == 202
        other = log_message(str(uuid.uuid4()), datetime.now(UTC))
        assert (await again.api_post("/v1/log/request", other, hg.api_key))[0] == 202
    finally:
        await again.running.stop()
    ids = [row["id"] for row in stored(chdb_executor, hg.organization_id)]
    assert sorted(ids) == sorted([request_id, other["log"]["request"]["id"]])


async def test_a_reused_request_id_keeps_one_row_per_id_and_loses_nothing(
    heliograph: Heliograph, chdb_executor: ChdbExecutor
) -> None:
    request_id = str(uuid.uuid4())
    first = datetime.now(UTC) - timedelta(minutes=5)
    assert (await heliograph.api_post("/v1/log/request", log_message(request_id, first)))[0] == 202
    await wait_for_rows(heliograph, chdb_executor, heliograph.organization_id)
    later = log_message(request_id, first + timedelta(minutes=1))
    assert (await heliograph.api_post("/v1/log/request", later))[0] == 202
    assert (await heliograph.api_post("/v1/log/request", later))[0] == 202  # and sent again

    rows = await wait_for_rows(heliograph, chdb_executor, heliograph.organization_id)
    ids = sorted(row["id"] for row in rows)
    assert len(ids) == len(set(ids)) == 2
    reused = [row for row in rows if row["id"] != request_id]
    assert reused[0]["properties"][REUSED_PROPERTY] == request_id


async def test_a_reused_helicone_request_id_gives_two_rows_with_two_ids(
    heliograph: Heliograph, chdb_executor: ChdbExecutor
) -> None:
    request_id = str(uuid.uuid4())
    headers = {**heliograph.gateway_auth(), "Helicone-Request-Id": request_id}
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            url = f"{heliograph.gateway}/openai/v1/chat/completions"
            async with session.post(url, json=chat, headers=headers) as response:
                assert response.status == 200
            await asyncio.sleep(0.01)  # two requests, two start times
    rows = await wait_for_rows(heliograph, chdb_executor, heliograph.organization_id)
    ids = {row["id"] for row in rows}
    assert len(rows) == len(ids) == 2
    assert request_id in ids


async def test_a_reused_id_with_large_bodies_keeps_each_requests_bodies(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake, max_stored_body_bytes=64)
    hg = await start_heliograph(settings)
    request_id, first = str(uuid.uuid4()), datetime.now(UTC) - timedelta(minutes=1)
    try:
        for offset, word in ((0, "first"), (1, "second")):
            message = log_message(request_id, first + timedelta(seconds=offset))
            message["log"]["request"]["body"] = {"model": "gpt-4o-mini", "text": word * 40}
            assert (await hg.api_post("/v1/log/request", message))[0] == 202
            await hg.running.services.writer.idle()  # separate batches
        original = await hg.wait_for(request_id)
        moved = await hg.wait_for(
            derived_id(hg.organization_id, request_id, rows_time(first + timedelta(seconds=1)))
        )
        assert "first" * 40 in str(original)
        assert "second" not in str(original)
        assert "second" * 40 in str(moved)
    finally:
        await hg.running.stop()


async def test_reused_ids_within_one_batch_are_settled_too(
    heliograph: Heliograph, chdb_executor: ChdbExecutor
) -> None:
    writer, org = heliograph.running.services.writer, heliograph.organization_id
    request_id, now = str(uuid.uuid4()), datetime.now(UTC)
    for created_at in (now, now, now + timedelta(seconds=1)):
        writer.put(
            record(org, request_id=request_id, created_at=created_at, client_request_id=True)
        )
    rows = await wait_for_rows(heliograph, chdb_executor, org)
    assert sorted(row["id"] for row in rows) == sorted(
        [request_id, derived_id(org, request_id, rows_time(now + timedelta(seconds=1)))]
    )


def rows_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def test_settling_keeps_places_drops_resends_and_moves_reuses() -> None:
    org, rid = str(uuid.uuid4()), str(uuid.uuid4())

    def row(at: str) -> dict[str, Any]:
        return {"organization_id": org, "request_id": rid, "request_created_at": at}

    stored = {(rid, "t1")}
    bad_org = {**row("t1"), "organization_id": "nope"}
    rows = [row("t1"), None, row("t2"), row("t2"), {"request_id": "x"}, bad_org]

    def stored_times(organization_id: str, ids: list[str]) -> set[tuple[str, str]]:
        assert organization_id == org, "a row the store would refuse is not looked up"
        return stored

    # Rows cut down to the columns settling reads, and rows the store would refuse.
    partial = cast(list[RequestRow | None], rows)
    settled = settle_ids(partial, [True, False, True, True, True, True], stored_times)
    assert [settled[0], settled[1], settled[3]] == [None, None, None]
    assert settled[2] == {
        **row("t2"),
        "request_id": derived_id(org, rid, "t2"),
        "properties": {REUSED_PROPERTY: rid},
    }
    assert settled[4:] == [{"request_id": "x"}, bad_org], "left for the store to refuse"
    untouched = cast(list[RequestRow | None], [row("t1")])
    assert settle_ids(untouched, [False], lambda o, ids: pytest.fail("looked up")) is untouched


def log_message(request_id: str, created_at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "log": {
            "request": {
                "id": request_id,
                "provider": "OPENAI",
                "path": "/v1/chat/completions",
                "requestCreatedAt": created_at.isoformat(),
            },
            "response": {
                "status": 200,
                "delayMs": 10,
                "promptTokens": 100,
                "completionTokens": 50,
                **extra,
            },
        }
    }


@pytest.mark.parametrize(
    ("where", "extra"),
    [("response", {"model": "gpt-4o-mini"}), ("heliconeMeta", {"gatewayModel": "gpt-4o-mini"})],
)
async def test_a_log_messages_model_is_stored_and_priced(
    heliograph: Heliograph, chdb_executor: ChdbExecutor, where: str, extra: dict[str, Any]
) -> None:
    message = log_message(str(uuid.uuid4()), datetime.now(UTC))
    if where == "response":
        message["log"]["response"].update(extra)
    else:
        message["heliconeMeta"] = extra
    assert (await heliograph.api_post("/v1/log/request", message))[0] == 202
    (row,) = await wait_for_rows(heliograph, chdb_executor, heliograph.organization_id)
    assert row["model"] == "gpt-4o-mini"
    assert int(row["cost"]) == 100 * 150 + 50 * 600  # nano-USD at $0.15 and $0.60 per million


async def test_every_acknowledged_batch_is_already_stored(slow_flushing: Heliograph) -> None:
    hg = slow_flushing
    batches = [encode_records([record(hg.organization_id) for _ in range(50)]) for _ in range(5)]
    started = time.perf_counter()
    assert await asyncio.gather(*(post_batch(hg, data) for data in batches)) == [202] * 5
    # Well under the 60 s flush interval: no acknowledgement waited for the queue's flush.
    assert time.perf_counter() - started < 30
    assert await hg.running.services.store.requests.count(hg.organization_id, ALL_ROWS) == 250
