"""Nothing can poison the API's log pipeline: strings that are not valid UTF-8 (lone surrogates,
undecodable bytes as `\\udcff`) or hold NUL, a row the store refuses, a spooled file that cannot
be read. Each is cleaned or quarantined, and the next organization's records are still stored;
a pipeline that stops moving says so on `/healthz`."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.analytics.executor import StoreUnavailable
from heliograph.domain.record import ATTRIBUTION_FIELDS, Attribution, RequestRecord
from heliograph.domain.text import clean_text
from records import make_record

POISON = "a\ud800b\udcffc\x00d"
CLEAN = clean_text(POISON)  # U+FFFD for each bad byte, NUL dropped


def rows_of(executor: ChdbExecutor, organization_id: str) -> list[dict[str, Any]]:
    return executor.query(
        "SELECT toString(request_id) AS id, user_id, properties, session_name, model, cost, "
        "request_path FROM request_response WHERE organization_id = {org:UUID}",
        {"org": organization_id},
    )


async def wait_for_rows(
    executor: ChdbExecutor, organization_id: str, count: int, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await asyncio.to_thread(rows_of, executor, organization_id)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.05)


async def until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)


def record(organization_id: str, **changes: Any) -> RequestRecord:
    """A record with no response body, so only what the test puts in it is parsed."""
    plain = {"response_body": b"", "response_encoding": "", "latency_ms": 5}
    attribution = {name: changes.pop(name) for name in ATTRIBUTION_FIELDS if name in changes}
    return make_record(
        organization_id, attribution=Attribution(**attribution), **{**plain, **changes}
    )


def message(request_id: str, **request: Any) -> dict[str, Any]:
    return {
        "log": {
            "request": {
                "id": request_id,
                "provider": "OPENAI",
                "path": "/v1/chat/completions",
                "requestCreatedAt": datetime.now(UTC).isoformat(),
                **request,
            },
            "response": {"status": 200, "delayMs": 10, "model": "gpt-4o-mini"},
        }
    }


async def test_a_poisoned_log_message_is_cleaned_and_logging_goes_on(
    heliograph: Heliograph, chdb_executor: ChdbExecutor
) -> None:
    poisoned = message(
        str(uuid.uuid4()),
        userId=POISON,
        properties={POISON: POISON, "Helicone-Session-Name": POISON},
        path=f"/v1/{POISON}",
    )
    status, body = await heliograph.api_post("/v1/log/request", poisoned)
    assert status == 202, body
    other_org, other_key = heliograph.new_organization()
    status, body = await heliograph.api_post(
        "/v1/log/request", message(str(uuid.uuid4())), other_key
    )
    assert status == 202, body

    assert len(await wait_for_rows(chdb_executor, other_org, 1)) == 1
    (row,) = await wait_for_rows(chdb_executor, heliograph.organization_id, 1)
    assert row["user_id"] == CLEAN
    assert row["properties"] == {CLEAN: CLEAN, "Helicone-Session-Name": CLEAN}
    assert row["session_name"] == CLEAN
    assert row["request_path"] == f"/v1/{CLEAN}"


@pytest.mark.parametrize("body", [POISON, {"model": "gpt-4o-mini", POISON: [POISON]}])
async def test_a_poisoned_log_body_is_a_202_not_a_500(
    heliograph: Heliograph, chdb_executor: ChdbExecutor, body: object
) -> None:
    status, answer = await heliograph.api_post(
        "/v1/log/request", message(str(uuid.uuid4()), body=body)
    )
    assert status == 202, answer
    assert len(await wait_for_rows(chdb_executor, heliograph.organization_id, 1)) == 1


async def test_poisoned_records_put_into_the_writer_do_not_stop_it(
    heliograph: Heliograph, chdb_executor: ChdbExecutor
) -> None:
    writer = heliograph.running.services.writer
    org = heliograph.organization_id
    writer.put(record(org, user_id="\udcff", properties={"k\ud800": "v\x00"}))
    writer.put(record(org, session_name=POISON, session_id=POISON, error=POISON))
    writer.put(record(org, model_override=POISON, path=POISON))
    other_org, _ = heliograph.new_organization()
    writer.put(record(other_org))

    assert len(await wait_for_rows(chdb_executor, other_org, 1)) == 1
    rows = await wait_for_rows(chdb_executor, org, 3)
    assert sorted(row["user_id"] for row in rows) == ["", "", clean_text("\udcff")]
    assert {clean_text("k\ud800"): "v"} in [row["properties"] for row in rows]
    assert CLEAN in [row["model"] for row in rows]


async def test_a_row_the_store_refuses_is_quarantined_alone(
    heliograph: Heliograph, chdb_executor: ChdbExecutor
) -> None:
    writer = heliograph.running.services.writer
    org = heliograph.organization_id
    for _ in range(3):
        writer.put(record(org))
    writer.put(record("not-an-organization-id", client_request_id=True))  # refused on insert
    for _ in range(3):
        writer.put(record(org))

    assert len(await wait_for_rows(chdb_executor, org, 6)) == 6
    quarantine = writer.inserter.quarantine
    await until(lambda: bool(quarantine.entries()))
    (entry,) = quarantine.entries()
    assert entry["kind"] == "row"
    assert b"not-an-organization-id" in base64.b64decode(entry["data_base64"])
    telemetry = heliograph.running.services.telemetry
    assert telemetry.quarantined.labels("row")._value.get() == 1
    writer.put(record(org))
    assert len(await wait_for_rows(chdb_executor, org, 7)) == 7, "the store is not down"


async def test_a_lone_refused_row_is_quarantined_even_with_nothing_else_to_write(
    heliograph: Heliograph,
) -> None:
    writer = heliograph.running.services.writer
    writer.put(record("not-an-organization-id"))
    await until(lambda: bool(writer.inserter.quarantine.entries()))
    assert [entry["kind"] for entry in writer.inserter.quarantine.entries()] == ["row"]
    assert not list(heliograph.running.services.settings.spool_dir.glob("*.jsonl"))


async def test_a_request_id_cannot_write_bodies_outside_the_body_directory(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake, max_stored_body_bytes=64)
    hg = await start_heliograph(settings)
    try:
        writer = hg.running.services.writer
        body = b'{"model": "gpt-4o-mini", "text": "' + b"x" * 200 + b'"}'
        writer.put(record(hg.organization_id, request_id="../../escaped", request_body=body))
        await until(lambda: bool(writer.inserter.quarantine.entries()))
        assert [entry["kind"] for entry in writer.inserter.quarantine.entries()] == ["record"]
        assert not await asyncio.to_thread(lambda: list(tmp_path.rglob("escaped*")))
    finally:
        await hg.running.stop()


async def test_a_poisoned_spool_file_neither_blocks_nor_stops_the_replay(
    tmp_path: Path, analytics_dir: Path, fake: Fake, chdb_executor: ChdbExecutor
) -> None:
    settings = heliograph_settings(tmp_path, analytics_dir, fake)
    org = str(uuid.uuid4())
    good = {
        "organization_id": org,
        "request_created_at": "2026-01-01 00:00:00.000",
        "provider": "OPENAI",
        "model": "m",
        "status": 200,
        "latency": 1,
        "is_stream": False,
    }
    poisoned = b"\n".join(
        [
            orjson.dumps({**good, "request_id": str(uuid.uuid4())}),
            b'{"request_id": "\xff\xfe not utf-8',
            orjson.dumps({**good, "request_id": "not-a-uuid"}),
            b"[1, 2]",
        ]
    )
    settings.spool_dir.mkdir(parents=True)
    (settings.spool_dir / f"{1:020d}-poisoned.jsonl").write_bytes(poisoned)
    later = orjson.dumps({**good, "request_id": str(uuid.uuid4())})
    (settings.spool_dir / f"{2:020d}-later.jsonl").write_bytes(later)

    hg = await start_heliograph(settings)
    try:
        assert len(await wait_for_rows(chdb_executor, org, 2)) == 2
        await until(lambda: not list(settings.spool_dir.glob("*.jsonl")))
        assert not list(settings.spool_dir.glob("*.jsonl"))
        kinds = sorted(e["kind"] for e in hg.running.services.writer.inserter.quarantine.entries())
        assert kinds == ["row", "spooled line", "spooled line"]
        assert hg.running.services.writer.inserter.store_healthy
    finally:
        await hg.running.stop()


async def get_health(hg: Heliograph) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{hg.api}/healthz") as response:
            return response.status, await response.json()


async def wait_for_stall(hg: Heliograph, timeout_s: float = 5.0) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = await get_health(hg)
        if status != 200 or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(0.1)


async def test_healthz_says_stalled_when_the_queue_does_not_move(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    hg = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, stall_after_s=0.3)
    )
    writer = hg.running.services.writer
    release = threading.Event()
    real_insert = writer.inserter._storage.insert

    def stuck_insert(rows: bytes, token: str) -> None:
        release.wait(10)  # an insert that hangs: the records behind it stop moving
        real_insert(rows, token)

    writer.inserter._storage.insert = stuck_insert
    try:
        assert (await get_health(hg))[0] == 200
        for _ in range(3):
            writer.put(record(hg.organization_id))
            await asyncio.sleep(0.2)
        status, body = await wait_for_stall(hg)
        assert status == 503
        assert body["status"] == "stalled"
        assert "writer queue" in body["stalled"]
    finally:
        release.set()
        await hg.running.stop()


async def test_healthz_says_stalled_when_the_spool_does_not_move(
    tmp_path: Path, analytics_dir: Path, fake: Fake
) -> None:
    hg = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, stall_after_s=0.3)
    )
    writer = hg.running.services.writer
    refused = StoreUnavailable("inserts refused (test)")

    def refuse(rows: bytes, token: str) -> None:
        raise refused  # the store answers SELECT 1 but takes no rows

    real_insert = writer.inserter._storage.insert
    writer.inserter._storage.insert = refuse
    try:
        writer.put(record(hg.organization_id))
        status, body = await wait_for_stall(hg)
        assert (status, body["status"], body["stalled"]) == (503, "stalled", ["spool"])
    finally:
        writer.inserter._storage.insert = real_insert
        await hg.running.stop()
