"""Gateway processes ship records to the API's ingest endpoint: the wire format, the endpoint's
token check, the shipper's spool when the API cannot be reached, and a shipper nothing can stop:
poisoned records are cleaned or quarantined, refused batches set aside, unacknowledged batches
re-sent intact, and a stuck shipper reported."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.domain.record import ATTRIBUTION_FIELDS, Attribution, RequestRecord
from heliograph.domain.text import clean_text
from heliograph.ingest.quarantine import Quarantine
from heliograph.ingest.shipper import LogShipper
from heliograph.ingest.spool import Spool
from heliograph.ingest.wire import InvalidBatch, decode_records, encode_records
from heliograph.telemetry import Telemetry
from records import make_record

TOKEN = "test-ingest-token"


def record(organization_id: str, **changes: Any) -> RequestRecord:
    """`make_record`, with the attribution's fields (user, properties…) given flat."""
    attribution: dict[str, Any] = {"properties": {"k": "v"}}
    attribution.update({name: changes.pop(name) for name in ATTRIBUTION_FIELDS if name in changes})
    return make_record(organization_id, attribution=Attribution(**attribution), **changes)


def test_wire_round_trip_keeps_raw_bytes_and_times() -> None:
    original = record(str(uuid.uuid4()), response_created_at=None)
    (decoded,) = decode_records(encode_records([original]))
    assert decoded == original


# A line as gateway processes have always written it (and left spooled): the attribution's fields
# sit flat beside the record's.
FLAT_LINE = (
    b'{"request_id":"0b0e6c4e-7f55-4a64-9a43-0d1e3c7e1f10",'
    b'"organization_id":"5d1b2a34-1c2d-4e5f-8a9b-0c1d2e3f4a5b",'
    b'"created_at":"2026-11-30T10:00:00.123456+00:00","provider":"OPENAI",'
    b'"target_url":"https://api.openai.com","path":"/v1/chat/completions","method":"POST",'
    b'"request_body":"e30=","status":200,"response_body":"","response_encoding":"",'
    b'"response_created_at":null,"latency_ms":12,"time_to_first_token_ms":null,'
    b'"is_stream":false,"user_id":"u-1","properties":{"Helicone-Session-Id":"s-1","k":"v"},'
    b'"session_id":"s-1","session_path":"/a","session_name":"plan","omit_request":true,'
    b'"omit_response":false,"model_override":"gpt-4o","api_key_id":"key-1","error":"",'
    b'"attempts":1,"cache_enabled":false,"cache_reference_id":"",'
    b'"cache_original_latency_ms":0,"client_request_id":true,"reported":null}'
)


def test_wire_decodes_the_flat_records_older_processes_spooled() -> None:
    (decoded,) = decode_records(FLAT_LINE)
    assert decoded.attribution == Attribution(
        user_id="u-1",
        properties={"Helicone-Session-Id": "s-1", "k": "v"},
        session_id="s-1",
        session_path="/a",
        session_name="plan",
        omit_request=True,
        omit_response=False,
        model_override="gpt-4o",
    )
    assert decoded.request_body == b"{}"
    assert decoded.client_request_id
    assert decoded.api_key_id == "key-1"
    assert decoded.latency_ms == 12
    written, old = orjson.loads(encode_records([decoded])), orjson.loads(FLAT_LINE)
    assert {name: written[name] for name in old} == old, "written flat"
    # Fields newer than the line take their defaults.
    assert (written["translated"], written["provider_response_body"]) == (False, "")


@pytest.mark.parametrize("data", [b"{not json", b'{"request_id": 1, "evil": 2}', b"[1, 2]"])
def test_wire_rejects_what_is_not_a_record(data: bytes) -> None:
    with pytest.raises(InvalidBatch, match="record 1"):
        decode_records(data)


@pytest.fixture
async def api(tmp_path: Path, analytics_dir: Path, fake: Fake) -> AsyncIterator[Heliograph]:
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
    api: Heliograph,
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path / "gateway-spool")
    away = shipper_to("http://127.0.0.1:9/v1/log/batch", spool)
    await away.start()
    first = record(api.organization_id)
    away.put(first)
    await away.stop()
    assert len(spool.pending()) == 1, "an undeliverable batch waits on disk"

    shipper = shipper_to(f"{api.api}/v1/log/batch", spool)
    await shipper.start()
    second = record(api.organization_id)
    shipper.put(second)
    for shipped in (first, second):
        row = await api.wait_for(shipped.request_id, timeout_s=5)
        assert row["completion_tokens"] == 2
        assert row["properties"] == {"k": "v"}
    await shipper.stop()
    assert spool.pending() == []


def shipper_to(url: str, spool: Spool, **options: Any) -> LogShipper:
    quarantine = Quarantine(spool.directory.parent / "quarantine", Telemetry().quarantined)
    return LogShipper(
        url, TOKEN, spool, flush_rows=100, flush_interval_ms=50, quarantine=quarantine, **options
    )


@dataclass
class FakeIngest:
    """An ingest endpoint that answers with the statuses it is given (then 202) and keeps every
    body it was sent."""

    url: str
    statuses: list[int]
    bodies: list[bytes] = field(default_factory=list)
    answering: asyncio.Event = field(default_factory=asyncio.Event)

    def delivered(self) -> list[RequestRecord]:
        return [record for body in self.bodies for record in decode_records(body)]

    async def until(self, count: int, timeout_s: float = 5.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.bodies) < count:
            assert time.monotonic() < deadline, f"{len(self.bodies)} posts, expected {count}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def ingest() -> AsyncIterator[FakeIngest]:
    fake = FakeIngest("", [])
    fake.answering.set()

    async def batch(request: web.Request) -> web.Response:
        fake.bodies.append(await request.read())
        await fake.answering.wait()
        status = fake.statuses.pop(0) if fake.statuses else 202
        return web.json_response({}, status=status)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/log/batch", batch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    fake.url = f"http://127.0.0.1:{port}/v1/log/batch"
    yield fake
    fake.answering.set()
    await runner.cleanup()


def quarantined(spool: Spool) -> list[dict[str, Any]]:
    found = []
    for path in sorted((spool.directory.parent / "quarantine").glob("*.jsonl")):
        found += [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return found


async def test_a_record_with_a_lone_surrogate_is_shipped_cleaned(
    ingest: FakeIngest, tmp_path: Path
) -> None:
    shipper = shipper_to(ingest.url, Spool(tmp_path / "spool"))
    await shipper.start()
    organization = str(uuid.uuid4())
    poisoned = record(
        organization, user_id="user\ud800", properties={"k\udfff": "v\ud800"}, session_name="\0s"
    )
    shipper.put(poisoned)
    await ingest.until(1)
    after = record(organization)
    shipper.put(after)
    await ingest.until(2)
    await shipper.stop()
    # Stopping while the second post awaits its answer sends that batch again (at least once;
    # ingest stores it once by its token), intact: each record is read once.
    first, second = {record.request_id: record for record in ingest.delivered()}.values()
    assert first.request_id == poisoned.request_id
    assert first.attribution.user_id == clean_text("user\ud800") == "user\ufffd\ufffd\ufffd"
    assert first.attribution.properties == {clean_text("k\udfff"): clean_text("v\ud800")}
    assert first.attribution.session_name == "s"
    assert second.request_id == after.request_id, "the shipper lives on after a poisoned record"


async def test_a_record_that_cannot_be_encoded_is_quarantined_and_the_rest_shipped(
    ingest: FakeIngest, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    shipper = shipper_to(ingest.url, spool)
    await shipper.start()
    organization = str(uuid.uuid4())
    hopeless = record(organization, reported={"tokens": 2**70})  # beyond any JSON integer
    good = record(organization)
    shipper.put(hopeless)
    shipper.put(good)
    await ingest.until(1)
    await shipper.stop()
    assert [r.request_id for r in ingest.delivered()] == [good.request_id]
    (entry,) = quarantined(spool)
    assert entry["kind"] == "gateway record"
    assert hopeless.request_id.encode() in base64.b64decode(entry["data_base64"])


async def test_the_shipper_survives_any_error_in_a_round(
    ingest: FakeIngest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipper = shipper_to(ingest.url, Spool(tmp_path / "spool"))
    real_post = LogShipper._post
    failures = [RuntimeError("boom")]

    async def flaky(self: LogShipper, data: bytes) -> int | None:
        if failures:
            raise failures.pop()
        return await real_post(self, data)

    monkeypatch.setattr(LogShipper, "_post", flaky)
    await shipper.start()
    shipped = record(str(uuid.uuid4()))
    shipper.put(shipped)
    await ingest.until(1)
    await shipper.stop()
    assert [r.request_id for r in ingest.delivered()] == [shipped.request_id]


async def test_an_unacknowledged_batch_is_spooled_and_sent_again_intact(
    ingest: FakeIngest, tmp_path: Path
) -> None:
    ingest.statuses = [503, 503]
    spool = Spool(tmp_path / "spool")
    shipper = shipper_to(ingest.url, spool)
    await shipper.start()
    organization = str(uuid.uuid4())
    for _ in range(3):
        shipper.put(record(organization))
    await ingest.until(3)
    await shipper.stop()
    assert ingest.bodies[0] == ingest.bodies[1] == ingest.bodies[2], "re-sent byte for byte"
    assert spool.pending() == []


async def test_a_batch_refused_for_good_is_quarantined_not_retried(
    ingest: FakeIngest, tmp_path: Path
) -> None:
    ingest.statuses = [400]
    spool = Spool(tmp_path / "spool")
    shipper = shipper_to(ingest.url, spool)
    await shipper.start()
    organization = str(uuid.uuid4())
    shipper.put(record(organization))
    await ingest.until(1)
    later = record(organization)
    shipper.put(later)
    await ingest.until(2)
    await shipper.stop()
    assert [r.request_id for r in decode_records(ingest.bodies[1])] == [later.request_id]
    assert [entry["kind"] for entry in quarantined(spool)] == ["gateway batch"]
    assert spool.pending() == []


async def test_a_shipper_that_cannot_deliver_says_it_is_stalled(
    ingest: FakeIngest, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool")
    shipper = shipper_to(ingest.url, spool, stall_after_s=0.3)
    await shipper.start()
    assert shipper.stalled() is None
    ingest.statuses = [503] * 1000
    shipper.put(record(str(uuid.uuid4())))
    await asyncio.sleep(0.6)  # twice `stall_after_s` without a delivery: the condition tested
    assert shipper.stalled() is not None
    ingest.statuses = []
    deadline = time.monotonic() + 10
    while shipper.stalled() is not None:
        assert time.monotonic() < deadline, "the shipper did not recover"
        await asyncio.sleep(0.05)
    await shipper.stop()
    assert spool.pending() == []


async def test_a_batch_never_acknowledged_is_spooled_at_shutdown(
    ingest: FakeIngest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("heliograph.ingest.shipper.STOP_DELIVERY_S", 0.3)
    ingest.answering.clear()  # takes the batch, never answers
    spool = Spool(tmp_path / "spool")
    shipper = shipper_to(ingest.url, spool)
    await shipper.start()
    waiting = record(str(uuid.uuid4()))
    shipper.put(waiting)
    await ingest.until(1)
    later = record(str(uuid.uuid4()))
    shipper.put(later)
    started = time.monotonic()
    await shipper.stop()
    # Stopping gives up on an ingest that never answers (after `STOP_DELIVERY_S`, 0.3 s here).
    assert time.monotonic() - started < 5
    spooled = [r.request_id for path in spool.pending() for r in decode_records(path.read_bytes())]
    assert sorted(spooled) == sorted([waiting.request_id, later.request_id])
    assert ingest.bodies[0] in [path.read_bytes() for path in spool.pending()], "kept intact"
