"""Webhooks end to end: requests sent through the gateway reach a receiver started here, signed
with `Helicone-Signature` (checked on every POST), with Helicone's payload; a 500 is retried; the
sample rate and property filters choose; a restart delivers what was pending; a hanging
destination holds up no other; unsafe destinations, bad input, other organizations' ids and
read-only keys are refused. Every test runs on SQLite, then on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from sqlalchemy import update

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.appdb.engine import session_factory
from heliograph.appdb.models import Webhook, WebhookDelivery
from heliograph.domain.access import KeyPermissions
from heliograph.domain.request_row import RequestRow
from heliograph.domain.webhooks import (
    BODY_TOO_LARGE,
    PropertyFilter,
    WebhookRule,
    checked_filters,
    matches,
    payload,
    retry_delay_s,
    sampled,
    signature,
)
from heliograph.services.audit import SYSTEM
from heliograph.services.outbound import DestinationRejected, OutboundPolicy
from heliograph.services.secret_rotation import reseal_all
from heliograph.services.vault import Sealed, key_from_text, key_id_of, new_key_text, open_with
from heliograph.services.webhook_delivery import PER_WEBHOOK, WebhookDeliveryWorker
from test_permissions import new_key

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello webhooks"}]}
WAIT_S = 10.0


@dataclass
class Received:
    path: str
    body: bytes
    signature: str

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on loopback: `/ok` answers 200, `/flaky` 500 the first time it sees a
    request id, `/fail` always 500, `/hang` never (until released). Every POST is kept."""

    origin: str = ""
    received: list[Received] = field(default_factory=list)
    seen_once: set[str] = field(default_factory=set)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        item = Received(request.path, body, request.headers.get("Helicone-Signature", ""))
        assert request.headers["Content-Type"] == "application/json"
        async with self.arrived:
            self.received.append(item)
            self.arrived.notify_all()
        if request.path == "/hang":
            await self.release.wait()
        if request.path == "/fail":
            return web.Response(status=500)
        if request.path == "/flaky":
            request_id = orjson.loads(body)["request_id"]
            if request_id not in self.seen_once:
                self.seen_once.add(request_id)
                return web.Response(status=500, text="try again")
        return web.Response(text="ok")

    async def wait(
        self, wanted: Callable[[list[Received]], bool], timeout_s: float = WAIT_S
    ) -> list[Received]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: wanted(self.received)), timeout_s)
            return list(self.received)

    def at(self, path: str, request_id: str | None = None) -> list[Received]:
        return [
            item
            for item in self.received
            if item.path == path and (request_id is None or item.json["request_id"] == request_id)
        ]


@contextlib.asynccontextmanager
async def receiving(port: int = 0) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    receiver.origin = f"http://127.0.0.1:{bound}"
    try:
        yield receiver
    finally:
        receiver.release.set()
        await runner.cleanup()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving() as found:
        yield found


@pytest.fixture
async def hg(
    tmp_path: Path, analytics_dir: Path, fake: Fake, database_url: str, receiver: Receiver
) -> AsyncIterator[Heliograph]:
    settings = heliograph_settings(
        tmp_path,
        analytics_dir,
        fake,
        database_url=database_url,
        allowed_webhook_origins=(receiver.origin,),
        webhook_retry_base_s=0.2,
    )
    instance = await start_heliograph(settings)
    yield instance
    await instance.running.stop()


async def create(
    hg: Heliograph, destination: str, key: str | None = None, **config: Any
) -> dict[str, Any]:
    include = config.pop("includeData", True)
    body = {"destination": destination, "config": config, "includeData": include}
    status, answer = await hg.api_post("/v1/webhooks", body, key)
    assert status == 201, answer
    created: dict[str, Any] = answer["data"]
    return created


async def send(hg: Heliograph, headers: dict[str, str] | None = None) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            hg.gateway + "/openai/v1/chat/completions",
            json=CHAT,
            headers={**hg.gateway_auth(), **(headers or {})},
        ) as response:
            assert response.status == 200, await response.text()
            await response.read()
            return response.headers["Helicone-Id"]


async def deliveries(hg: Heliograph, webhook_id: str) -> list[dict[str, Any]]:
    status, body = await hg.api_get(f"/v1/webhooks/{webhook_id}/deliveries?limit=100")
    assert status == 200, body
    found: list[dict[str, Any]] = body["data"]
    return found


async def until(check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """`check()`'s awaited value once it is truthy, polled."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def signed(item: Received, key: str) -> bool:
    expected = hmac.new(key.encode(), item.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, item.signature)


# Delivery ---------------------------------------------------------------------------------


async def test_a_request_arrives_signed_with_helicones_payload_and_a_500_is_retried(
    hg: Heliograph, receiver: Receiver
) -> None:
    webhook = await create(hg, receiver.origin + "/flaky")
    assert len(webhook["hmac_key"]) == 64
    assert webhook["config"]["sampleRate"] == 100
    request_id = await send(hg, {"Helicone-User-Id": "webhook-user"})
    found = await receiver.wait(lambda got: len([g for g in got if g.path == "/flaky"]) >= 2)
    first, retry = receiver.at("/flaky", request_id)[:2]
    assert first.body == retry.body, "the retry sends the exact stored bytes"
    assert all(signed(item, webhook["hmac_key"]) for item in found)
    sent = retry.json
    row = await hg.wait_for(request_id)
    assert sent["request_id"] == request_id
    assert sent["user_id"] == "webhook-user"
    assert sent["model"] == row["model"]
    assert sent["provider"] == row["provider"]
    assert "hello webhooks" in sent["request_body"]
    assert orjson.loads(sent["response_body"]) == row["response_body"]
    metadata = sent["metadata"]
    assert metadata["cost"] == pytest.approx(row["cost"])
    assert metadata["cost"] > 0
    assert metadata["promptTokens"] == row["prompt_tokens"] > 0
    assert metadata["completionTokens"] == row["completion_tokens"] > 0
    assert metadata["totalTokens"] == row["total_tokens"]
    assert metadata["latencyMs"] == row["delay_ms"]

    log = await until(
        lambda: _delivered(hg, webhook["id"]),
    )
    assert log[0]["request_id"] == request_id
    assert log[0]["attempts"] == 2
    assert log[0]["last_status"] == 200
    assert log[0]["last_error"] == ""


async def _delivered(hg: Heliograph, webhook_id: str) -> list[dict[str, Any]] | None:
    found = await deliveries(hg, webhook_id)
    return found if found and all(d["status"] == "delivered" for d in found) else None


async def test_the_log_shows_failed_attempts_and_the_test_route_delivers(
    hg: Heliograph, receiver: Receiver
) -> None:
    failing = await create(hg, receiver.origin + "/fail")
    status, body = await hg.api_post(f"/v1/webhooks/{failing['id']}/test", {})
    assert status == 202, body
    delivery_id = body["data"]["delivery_id"]
    await receiver.wait(lambda got: len(receiver.at("/fail")) >= 2)

    async def retried() -> dict[str, Any] | None:
        found = {d["id"]: d for d in await deliveries(hg, failing["id"])}
        entry = found.get(delivery_id)
        return entry if entry and entry["attempts"] >= 2 else None

    entry = await until(retried)
    assert entry["status"] == "pending"
    assert entry["last_status"] == 500
    assert entry["last_error"] == "answered 500"
    assert failing["hmac_key"] not in str(entry)
    assert entry["next_attempt_at"] > entry["created_at"]
    trial = receiver.at("/fail")[0].json
    assert trial["test"] is True
    assert trial["request_id"] == entry["request_id"]
    assert signed(receiver.at("/fail")[0], failing["hmac_key"])


async def test_old_settled_deliveries_are_pruned_and_pending_ones_kept(
    hg: Heliograph, receiver: Receiver
) -> None:
    ok = await create(hg, receiver.origin + "/ok/pruned")
    failing = await create(hg, receiver.origin + "/fail")
    await send(hg)
    await until(lambda: _delivered(hg, ok["id"]))
    await until(lambda: deliveries(hg, failing["id"]))
    services = hg.running.services
    month_ago = datetime.now(UTC) - timedelta(days=30)
    with session_factory(services.engine).begin() as session:
        session.execute(update(WebhookDelivery).values(created_at=month_ago))
    assert services.webhook_delivery.prune() == 1
    assert await deliveries(hg, ok["id"]) == []
    kept = await deliveries(hg, failing["id"])
    assert [entry["status"] for entry in kept] == ["pending"], "still owed: never pruned"
    assert services.webhook_delivery.prune() == 0


async def test_include_data_sample_rate_and_property_filters_choose(
    hg: Heliograph, receiver: Receiver
) -> None:
    bare = await create(hg, receiver.origin + "/ok/bare", includeData=False)
    never = await create(hg, receiver.origin + "/ok/never", sampleRate=0)
    filtered = await create(
        hg, receiver.origin + "/ok/filtered", propertyFilters=[{"key": "team", "value": "red"}]
    )
    blue = await send(hg, {"Helicone-Property-Team": "blue"})
    red = await send(hg, {"Helicone-Property-team": "red"})
    await receiver.wait(lambda got: len(receiver.at("/ok/bare")) >= 2)
    await receiver.wait(lambda got: len(receiver.at("/ok/filtered")) >= 1)
    without = receiver.at("/ok/bare", blue)[0]
    assert "request_body" not in without.json
    assert "response_body" not in without.json
    assert without.json["metadata"]["promptTokens"] > 0
    assert signed(without, bare["hmac_key"])
    # The webhooks of one organization sample and filter independently; all are stored first.
    await until(lambda: _delivered(hg, filtered["id"]))
    assert [item.json["request_id"] for item in receiver.at("/ok/filtered")] == [red]
    assert receiver.at("/ok/never") == []
    assert await deliveries(hg, never["id"]) == []
    assert [d["request_id"] for d in await deliveries(hg, filtered["id"])] == [red]


async def test_a_hanging_destination_delays_no_other(hg: Heliograph, receiver: Receiver) -> None:
    await create(hg, receiver.origin + "/hang")
    await create(hg, receiver.origin + "/fail")
    quick = await create(hg, receiver.origin + "/ok/quick")
    count = PER_WEBHOOK + 4
    sent = await asyncio.gather(*(send(hg) for _ in range(count)))
    # The hanging one holds its slots; the failing one retries; the quick one gets them all.
    await receiver.wait(lambda got: len(receiver.at("/ok/quick")) >= count, timeout_s=8)
    assert {item.json["request_id"] for item in receiver.at("/ok/quick")} == set(sent)
    await receiver.wait(lambda got: len(receiver.at("/hang")) >= PER_WEBHOOK)
    await asyncio.sleep(0.3)  # had the cap not held, the rest would have come by now
    assert len(receiver.at("/hang")) == PER_WEBHOOK, "at most PER_WEBHOOK at once to one webhook"
    assert await until(lambda: _delivered(hg, quick["id"]))


async def test_two_workers_on_one_app_db_never_send_an_attempt_twice(
    hg: Heliograph, receiver: Receiver
) -> None:
    services = hg.running.services
    policy = OutboundPolicy([receiver.origin])
    rival = WebhookDeliveryWorker(
        session_factory(services.engine), services.vault, policy, 0.2, 86400
    )
    await rival.start()  # as a second API process would: same app DB, leases of its own
    woken = services.webhooks._wake

    def wake_both() -> None:  # both hear of every enqueue
        woken()
        rival.wake()

    services.webhooks._wake = wake_both
    try:
        webhook = await create(hg, receiver.origin + "/ok/both")
        count = 120  # more than one worker holds at once (PER_WEBHOOK * HELD_FACTOR)
        sent = await asyncio.gather(*(send(hg) for _ in range(count)))
        await receiver.wait(lambda got: len(receiver.at("/ok/both")) >= count)
        await until(lambda: _delivered(hg, webhook["id"]))
        ids = [item.json["request_id"] for item in receiver.at("/ok/both")]
        assert sorted(ids) == sorted(sent), "each request once"
        assert {d["attempts"] for d in await deliveries(hg, webhook["id"])} == {1}
    finally:
        await rival.close()


async def test_a_restart_delivers_what_was_pending(
    tmp_path: Path, analytics_dir: Path, fake: Fake, database_url: str
) -> None:
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    settings = heliograph_settings(
        tmp_path,
        analytics_dir,
        fake,
        database_url=database_url,
        allowed_webhook_origins=(origin,),
        webhook_retry_base_s=0.2,
    )
    first = await start_heliograph(settings)
    try:
        webhook = await create(first, origin + "/ok")
        request_id = await send(first)
        await first.wait_for(request_id)  # stored, enqueued; the receiver is not up yet

        async def refused() -> Any:
            found = await deliveries(first, webhook["id"])
            return found and found[0]["attempts"] >= 1 and "Connect" in found[0]["last_error"]

        await until(refused)
    finally:
        await first.running.stop()
    async with receiving(port) as receiver:
        again = await server_start(settings)
        try:
            got = await receiver.wait(lambda got: len(got) >= 1)
            assert got[0].json["request_id"] == request_id
            assert signed(got[0], webhook["hmac_key"])
            headers = first.auth()
            status, body = await _get(again, f"/v1/webhooks/{webhook['id']}/deliveries", headers)
            assert status == 200
            entry = body["data"][0]
            assert entry["request_id"] == request_id
        finally:
            await again.running.stop()


async def server_start(settings: Any) -> Heliograph:
    """The same Heliograph started again (same data directory and app DB)."""
    from heliograph import server

    running = await server.start(replace(settings))
    return Heliograph(running, "", "")


async def _get(hg: Heliograph, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.get(hg.api + path, headers=headers) as response:
            return response.status, await response.json()


# Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "destination",
    [
        "http://hooks.example.com/in",  # plain http to an unlisted origin
        "https://10.0.0.8/in",
        "https://192.168.1.1/in",
        "https://localhost/in",
        "https://127.0.0.1/in",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/in",
        "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/in",  # full-width 127.0.0.1
        "https://user:secret@hooks.example.com/in",
        "ftp://hooks.example.com/in",
        "not a url",
    ],
)
async def test_unsafe_destinations_are_refused(hg: Heliograph, destination: str) -> None:
    status, body = await hg.api_post("/v1/webhooks", {"destination": destination})
    assert status == 400, body
    assert body["data"] is None
    assert body["error"]
    status, body = await hg.api_get("/v1/webhooks")
    assert body["data"] == []


@pytest.mark.parametrize(
    "destination",
    [
        "https://127。0。0。1/in",  # ideographic full stops
        "https://⑫⑦.0.0.1/in",  # enclosed numbers
        "https://127.0.0.\uff11/in",  # one full-width digit
        "https://[::ffff:127.0.0.1]/in",  # IPv4-mapped
        "https://[::127.0.0.1]/in",  # IPv4-compatible
        "https://[64:ff9b::7f00:1]/in",  # NAT64 to 127.0.0.1
        "https://[64:ff9b::a00:1]/in",  # NAT64 to 10.0.0.1
        "https://[2002:c0a8:101::]/in",  # 6to4 of 192.168.1.1
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/in",  # Teredo
        "https://192.0.0.8/in",
        "https://0.0.0.0/in",
        "https://[fe80::1%25eth0]/in",
        "https://metadata.localhost/in",
    ],
)
def test_every_spelling_of_a_private_address_is_refused(destination: str) -> None:
    with pytest.raises(DestinationRejected):
        OutboundPolicy([]).check(destination)


@pytest.mark.parametrize(
    "destination",
    [
        "https://hooks.example.com/in",
        "https://bücher.example/in",  # a Unicode name is a name, looked up as its IDNA form
        "https://1.1.1.1/in",
        "https://[2606:4700:4700::1111]/in",
        "https://[64:ff9b::101:101]/in",  # NAT64 to 1.1.1.1
    ],
)
def test_public_destinations_pass(destination: str) -> None:
    assert OutboundPolicy([]).check(destination) == destination


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    hg: Heliograph, receiver: Receiver
) -> None:
    port = int(receiver.origin.rsplit(":", 1)[1])
    listed = OutboundPolicy([f"http://localhost:{port}"])
    services = hg.running.services
    services.webhooks._policy = listed  # the check passes: the origin is listed...
    webhook = await create(hg, f"http://localhost:{port}/ok")
    # ...but the resolver no longer sees it listed: localhost resolves to 127.0.0.1, refused.
    listed.listed_any_scheme = lambda host, port: False  # type: ignore[method-assign]
    services.webhook_delivery._policy = listed
    await services.webhook_delivery.close()
    await services.webhook_delivery.start()
    status, _body = await hg.api_post(f"/v1/webhooks/{webhook['id']}/test", {})
    assert status == 202

    async def refused() -> Any:
        found = await deliveries(hg, webhook["id"])
        return found and found[0]["attempts"] >= 1 and found[0]

    entry = await until(refused)
    assert "private addresses" in entry["last_error"]
    assert receiver.received == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"destination": 5}, 400),
        ({"destination": "https://hooks.example.com", "config": {"sampleRate": 101}}, 400),
        ({"destination": "https://hooks.example.com", "config": {"sampleRate": -1}}, 400),
        ({"destination": "https://hooks.example.com", "config": {"sampleRate": "all"}}, 400),
        ({"destination": "https://hooks.example.com", "config": {"propertyFilters": "x"}}, 400),
        ({"destination": "https://hooks.example.com", "config": {"propertyFilters": [{}]}}, 400),
        (
            {
                "destination": "https://hooks.example.com",
                "config": {"propertyFilters": [{"key": "k", "value": 1}]},
            },
            400,
        ),
        (
            {
                "destination": "https://hooks.example.com",
                "config": {"propertyFilters": [{"key": "k", "value": "v"}] * 21},
            },
            400,
        ),
        ({"destination": "https://hooks.example.com", "includeData": "yes"}, 400),
        ({"destination": "https://hooks.example.com", "surprise": 1}, 400),
        ({"destination": "https://" + "a" * 2050 + ".com"}, 400),
    ],
)
async def test_bad_bodies_are_refused(hg: Heliograph, body: Any, status: int) -> None:
    found, answer = await hg.api_post("/v1/webhooks", body)
    assert found == status, answer
    assert answer["error"]
    assert (await hg.api_get("/v1/webhooks"))[1]["data"] == []


async def test_malformed_json_and_invalid_utf8_are_refused(hg: Heliograph) -> None:
    async with aiohttp.ClientSession() as session:
        for raw in (b"{not json", b'{"destination": "https://h\xff.example.com"}'):
            async with session.post(
                hg.api + "/v1/webhooks",
                data=raw,
                headers={**hg.auth(), "Content-Type": "application/json"},
            ) as response:
                assert response.status == 400, await response.text()
        async with session.get(
            hg.api + "/v1/webhooks/x/deliveries?limit=0", headers=hg.auth()
        ) as response:
            assert response.status == 400


async def test_an_organization_keeps_at_most_twenty_webhooks(hg: Heliograph) -> None:
    for index in range(20):
        await create(hg, f"https://hooks{index}.example.com/in", sampleRate=0)
    status, body = await hg.api_post(
        "/v1/webhooks", {"destination": "https://one-more.example.com"}
    )
    assert status == 409, body
    _, body = await hg.api_get("/v1/webhooks")
    assert len(body["data"]) == 20


async def test_concurrent_creations_never_pass_the_cap(hg: Heliograph) -> None:
    async def one(index: int) -> int:
        body = {"destination": f"https://race{index}.example.com/in", "config": {"sampleRate": 0}}
        return (await hg.api_post("/v1/webhooks", body))[0]

    statuses = await asyncio.gather(*(one(index) for index in range(40)))
    assert sorted(statuses) == [201] * 20 + [409] * 20
    _, body = await hg.api_get("/v1/webhooks")
    assert len(body["data"]) == 20


async def test_other_organizations_and_read_only_keys_are_refused(
    hg: Heliograph, receiver: Receiver
) -> None:
    webhook = await create(hg, receiver.origin + "/ok", sampleRate=0)
    _, other_key = hg.new_organization("rival")
    for method, path in (
        ("DELETE", f"/v1/webhooks/{webhook['id']}"),
        ("POST", f"/v1/webhooks/{webhook['id']}/test"),
        ("GET", f"/v1/webhooks/{webhook['id']}/deliveries"),
    ):
        async with aiohttp.ClientSession() as session:
            async with session.request(
                method, hg.api + path, json={}, headers=hg.auth(other_key)
            ) as response:
                text = await response.text()
                assert response.status == 404, (path, text)
                assert webhook["hmac_key"] not in text
    status, body = await hg.api_get("/v1/webhooks", other_key)
    assert status == 200
    assert body["data"] == []
    read_only = new_key(hg, KeyPermissions.READ)
    status, _ = await hg.api_get("/v1/webhooks", read_only)
    assert status == 403
    status, _ = await hg.api_post("/v1/webhooks", {"destination": receiver.origin}, read_only)
    assert status == 403
    status, body = await hg.api_get("/v1/webhooks")
    assert [item["id"] for item in body["data"]] == [webhook["id"]]
    assert body["data"][0]["hmac_key"] == webhook["hmac_key"]
    assert await deliveries(hg, webhook["id"]) == [], "the rival's test enqueued nothing"
    async with aiohttp.ClientSession() as session:
        async with session.delete(
            hg.api + f"/v1/webhooks/{webhook['id']}", headers=hg.auth()
        ) as response:
            assert response.status == 200
    assert (await hg.api_get("/v1/webhooks"))[1]["data"] == []
    lines = hg.running.services.audit
    assert lines is not None


async def test_a_key_rotation_reseals_the_hmac_keys(hg: Heliograph, receiver: Receiver) -> None:
    webhook = await create(hg, receiver.origin + "/ok", sampleRate=0)
    new_key = key_from_text(new_key_text())
    services = hg.running.services
    sessions = session_factory(services.engine)
    moved = reseal_all(sessions, services.vault, services.audit, new_key, SYSTEM)
    assert moved == {"webhooks": 1}
    again = reseal_all(sessions, services.vault, services.audit, new_key, SYSTEM)
    assert again == {}, "already under the new key"
    with session_factory(services.engine)() as session:
        row = session.get(Webhook, webhook["id"])
        assert row is not None
        sealed = Sealed(row.hmac_ciphertext, row.hmac_nonce, row.secret_key_id)
    assert sealed.key_id == key_id_of(new_key)
    assert open_with(new_key, sealed, hg.organization_id, webhook["id"]) == webhook["hmac_key"]


# Pure parts -------------------------------------------------------------------------------


def _row(**changes: Any) -> RequestRow:
    row: dict[str, Any] = {
        "request_id": str(uuid.uuid4()),
        "organization_id": str(uuid.uuid4()),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "user_id": "u",
        "properties": {"team": "red"},
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "prompt_cache_read_tokens": 2,
        "prompt_cache_write_tokens": 0,
        "reasoning_tokens": 1,
        "cost": 1_500_000_000,
        "latency": 42,
        **changes,
    }
    return row  # type: ignore[return-value]


def test_payload_shape_and_large_bodies() -> None:
    row = _row()
    document = orjson.loads(payload(row, ("x" * 10_241, "short")))
    assert document["request_body"] == BODY_TOO_LARGE
    assert document["response_body"] == "short"
    assert document["metadata"] == {
        "cost": 1.5,
        "promptTokens": 10,
        "completionTokens": 5,
        "totalTokens": 18,
        "latencyMs": 42,
    }
    assert "request_body" not in orjson.loads(payload(row, None))


def test_sampling_is_deterministic_and_near_its_rate() -> None:
    ids = [str(uuid.UUID(int=index)) for index in range(4000)]
    chosen = [sampled("w", request_id, 25) for request_id in ids]
    assert chosen == [sampled("w", request_id, 25) for request_id in ids]
    assert 800 < sum(chosen) < 1200
    assert all(sampled("w", request_id, 100) for request_id in ids[:50])
    assert not any(sampled("w", request_id, 0) for request_id in ids[:50])


def test_filters_backoff_and_signature() -> None:
    filters = checked_filters([{"key": "team", "value": "red"}])
    assert matches(filters, {"team": "red", "x": "y"})
    assert not matches(filters, {"team": "blue"})
    assert not matches((*filters, PropertyFilter("env", "prod")), {"team": "red"})
    rule = WebhookRule("w", "o", 100, filters, True)
    assert rule.wants(_row())
    assert not rule.wants(_row(properties={}))
    assert retry_delay_s(1, 10, 0.5) == pytest.approx(10)
    assert retry_delay_s(3, 10, 0.5) == pytest.approx(40)
    assert retry_delay_s(40, 10, 0.99) <= 3600 * 1.1
    assert retry_delay_s(40, 10, 0.0) >= 0.9 * 3600
    assert signature("k", b"{}") == hmac.new(b"k", b"{}", hashlib.sha256).hexdigest()
