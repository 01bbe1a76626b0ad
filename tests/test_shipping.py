"""Gateway processes ship records to the API's ingest endpoint: the wire format, the endpoint's
token check, and the shipper's spool when the API cannot be reached."""

from __future__ import annotations

import gzip
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from conftest import Fake, heliograph_settings, start_heliograph
from heliograph.domain.record import RequestRecord
from heliograph.ingest.shipper import LogShipper
from heliograph.ingest.spool import Spool
from heliograph.ingest.wire import InvalidBatch, decode_records, encode_records

TOKEN = "test-ingest-token"
COMPLETION = b'{"model": "gpt-4o-mini", "usage": {"prompt_tokens": 10, "completion_tokens": 2}}'


def record(organization_id: str, **changes: object) -> RequestRecord:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "request_id": str(uuid.uuid4()),
        "organization_id": organization_id,
        "created_at": now,
        "provider": "OPENAI",
        "target_url": "https://api.openai.com",
        "path": "/v1/chat/completions",
        "method": "POST",
        "request_body": b'{"model": "gpt-4o-mini"}',
        "status": 200,
        "response_body": gzip.compress(COMPLETION),
        "response_encoding": "gzip",
        "response_created_at": now,
        "latency_ms": 12,
        "properties": {"k": "v"},
    }
    values.update(changes)
    return RequestRecord(**values)  # type: ignore[arg-type]


def test_wire_round_trip_keeps_raw_bytes_and_times() -> None:
    original = record(str(uuid.uuid4()), response_created_at=None)
    (decoded,) = decode_records(encode_records([original]))
    assert decoded == original


@pytest.mark.parametrize("data", [b"{not json", b'{"request_id": 1, "evil": 2}', b"[1, 2]"])
def test_wire_rejects_what_is_not_a_record(data: bytes) -> None:
    with pytest.raises(InvalidBatch, match="record 1"):
        decode_records(data)


@pytest.fixture
async def api(tmp_path: Path, analytics_dir: Path, fake: Fake):  # type: ignore[no-untyped-def]
    hg = await start_heliograph(
        heliograph_settings(tmp_path, analytics_dir, fake, ingest_token=TOKEN)
    )
    yield hg
    await hg.running.stop()


async def test_batch_endpoint_needs_the_ingest_token(api) -> None:  # type: ignore[no-untyped-def]
    data = encode_records([record(api.organization_id)])
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer wrong"}, api.auth()):
            async with session.post(f"{api.api}/v1/log/batch", data=data, headers=headers) as r:
                assert r.status == 401
        good = {"Authorization": f"Bearer {TOKEN}"}
        async with session.post(f"{api.api}/v1/log/batch", data=b"junk", headers=good) as r:
            assert r.status == 400
            assert "invalid batch" in (await r.json())["error"]


async def test_shipper_delivers_and_spools_while_the_api_is_away(
    api,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    spool = Spool(tmp_path / "gateway-spool")
    away = LogShipper(
        "http://127.0.0.1:9/v1/log/batch", TOKEN, spool, flush_rows=100, flush_interval_ms=50
    )
    await away.start()
    first = record(api.organization_id)
    away.put(first)
    await away.stop()
    assert len(spool.pending()) == 1, "an undeliverable batch waits on disk"

    shipper = LogShipper(
        f"{api.api}/v1/log/batch", TOKEN, spool, flush_rows=100, flush_interval_ms=50
    )
    await shipper.start()
    second = record(api.organization_id)
    shipper.put(second)
    for shipped in (first, second):
        row = await api.wait_for(shipped.request_id, timeout_s=5)
        assert row["completion_tokens"] == 2
        assert row["properties"] == {"k": "v"}
    await shipper.stop()
    assert spool.pending() == []
