"""Export: every matching request, paged by keyset under the hood, as JSON lines or CSV, through
the API and through `heliograph export`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from click.testing import CliRunner

from conftest import Heliograph
from heliograph.analytics.chdb_executor import ChdbExecutor
from heliograph.cli.main import cli
from heliograph.domain.times import stored_time

ROWS = 4500  # more than two export pages


@pytest.fixture
def many(heliograph: Heliograph, chdb_executor: ChdbExecutor) -> list[str]:
    """Rows written straight into the store, some of them sharing a timestamp."""
    start = datetime.now(UTC) - timedelta(hours=1)
    ids, lines = [], []
    for index in range(ROWS):
        request_id = str(uuid.uuid4())
        ids.append(request_id)
        created = start + timedelta(milliseconds=index // 3)  # ties resolved by request id
        lines.append(
            orjson.dumps(
                {
                    "request_id": request_id,
                    "organization_id": heliograph.organization_id,
                    "request_created_at": stored_time(created),
                    "provider": "OPENAI",
                    "model": "gpt-4o-mini" if index % 2 else "gpt-4o",
                    "status": 200,
                    "latency": 10,
                    "is_stream": False,
                    "request_body": '{"q": "ünïcode, \\"quoted\\""}',
                    "pricing_status": "priced",
                    "cost": 1000,
                }
            )
        )
    chdb_executor.insert("request_response", b"\n".join(lines), uuid.uuid4().hex)
    return ids


async def export(hg: Heliograph, body: dict[str, Any], key: str | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{hg.api}/v1/request/export", json=body, headers=hg.auth(key)
        ) as r:
            return r.status, await r.read()


async def test_jsonl_export_has_every_row_once_newest_first(
    heliograph: Heliograph, many: list[str]
) -> None:
    status, body = await export(heliograph, {"format": "jsonl"})
    assert status == 200
    rows = [orjson.loads(line) for line in body.splitlines()]
    assert len(rows) == ROWS
    assert {row["request_id"] for row in rows} == set(many)
    created = [row["request_created_at"] for row in rows]
    assert created == sorted(created, reverse=True)
    assert rows[0]["request_body"] == {"q": 'ünïcode, "quoted"'}


async def test_csv_export_with_a_filter(heliograph: Heliograph, many: list[str]) -> None:
    body = {"format": "csv", "filter": {"request_response_rmt": {"model": {"equals": "gpt-4o"}}}}
    status, payload = await export(heliograph, body)
    assert status == 200
    reader = list(csv.DictReader(io.StringIO(payload.decode())))
    assert len(reader) == ROWS // 2 + ROWS % 2
    assert {row["model"] for row in reader} == {"gpt-4o"}
    assert json.loads(reader[0]["request_body"]) == {"q": 'ünïcode, "quoted"'}


async def test_export_is_scoped_and_validated(heliograph: Heliograph, many: list[str]) -> None:
    _, other_key = heliograph.new_organization("rival")
    status, body = await export(heliograph, {}, key=other_key)
    assert (status, body) == (200, b"")
    status, body = await export(heliograph, {"filter": {"request_response_rmt": {"x": {}}}})
    assert status == 400
    assert b"unknown column" in body
    status, body = await export(heliograph, {"format": "xml"})
    assert status == 400


async def test_cli_export_streams_to_a_file(
    heliograph: Heliograph, many: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "requests.csv"
    args = ["export", "--key", heliograph.api_key, "--api-url", heliograph.api, "--format", "csv"]
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == ROWS + 1
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["export", "--key", "sk-helicone-wrong", "--api-url", heliograph.api],
    )
    assert result.exit_code != 0
    assert "401" in result.output


async def test_keyset_pages_are_stable_while_requests_arrive(
    heliograph: Heliograph, many: list[str], chdb_executor: ChdbExecutor
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        status, body = await heliograph.api_post(
            "/v1/request/page", {"limit": 1000, "cursor": cursor}
        )
        assert status == 200, body
        seen += [row["request_id"] for row in body["data"]["requests"]]
        pages += 1
        if pages == 1:  # new requests arrive after the first page: they must not shift pages
            newer = orjson.dumps(
                {
                    "request_id": str(uuid.uuid4()),
                    "organization_id": heliograph.organization_id,
                    "request_created_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.000"),
                    "provider": "OPENAI",
                    "model": "late",
                    "status": 200,
                    "latency": 1,
                    "is_stream": False,
                }
            )
            chdb_executor.insert("request_response", newer, uuid.uuid4().hex)
        cursor = body["data"]["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == ROWS
    assert set(seen) == set(many)


@pytest.mark.parametrize(
    "body", [{"cursor": "not-a-cursor"}, {"cursor": "WzEsMl0="}, {"limit": 0}, {"limit": 1001}]
)
async def test_bad_page_requests_are_400(heliograph: Heliograph, body: dict[str, Any]) -> None:
    status, response = await heliograph.api_post("/v1/request/page", body)
    assert status == 400, response
