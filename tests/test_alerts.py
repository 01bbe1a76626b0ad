"""Alerts end to end: traffic through the gateway to the fake provider, rules evaluated by the
API process's evaluator (`evaluate_now`, so nothing waits on the interval), notifications to a
webhook receiver and an SMTP server started here; the metrics, the window's minimum, filters,
bad input, read-only keys and other organizations' ids. On SQLite, then on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from sqlalchemy import select, update

from conftest import Fake, Heliograph, heliograph_settings, start_heliograph
from heliograph.analytics.alert_metrics import AlertMetrics, reading_sql
from heliograph.analytics.store import AnalyticsStore
from heliograph.appdb.models import Alert
from heliograph.domain.access import KeyPermissions
from heliograph.domain.alerts import MAX_RULES, Measure, Reading, WebhookChannel
from heliograph.domain.filter_tree import ALL_ROWS
from heliograph.domain.filters import parse_filter
from heliograph.services.audit import AuditQuery
from records import stored_row
from smtp_inbox import Inbox, smtp_server

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
SLACK_URL = "https://hooks.slack.com/services/T000/B000/secretXYZ9"


@dataclass
class Receiver:
    """A webhook receiver on loopback: what it accepted, and how many calls to refuse first."""

    url: str = ""
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    refuse_next: int = 0

    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def hold(self, request: web.Request) -> web.Response:
        """A receiver that answers only once the test releases it."""
        await self.release.wait()
        return await self.handle(request)

    async def handle(self, request: web.Request) -> web.Response:
        if self.refuse_next:
            self.refuse_next -= 1
            self.refused += 1
            return web.Response(status=500)
        self.accepted.append(await request.json())
        self.arrived.set()
        return web.Response(text="ok")


@pytest.fixture
def smtp() -> Iterator[tuple[str, Inbox]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    app.router.add_post("/slow", found.hold)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


@pytest.fixture
async def hg(
    tmp_path: Path,
    analytics_dir: Path,
    fake: Fake,
    database_url: str,
    smtp: tuple[str, Inbox],
    receiver: Receiver,
) -> AsyncIterator[Heliograph]:
    origin = receiver.url.removesuffix("/hook")
    settings = heliograph_settings(
        tmp_path,
        analytics_dir,
        fake,
        database_url=database_url,
        allowed_webhook_origins=(origin,),
        smtp_url=smtp[0],
        alert_interval_s=3600.0,  # the tests evaluate when they choose
    )
    instance = await start_heliograph(settings)
    yield instance
    await instance.running.stop()


async def call(
    hg: Heliograph, method: str, path: str, key: str | None = None, **kwargs: Any
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.request(
            method, hg.api + path, headers=hg.auth(key), **kwargs
        ) as response:
            return response.status, await response.json(content_type=None)


async def chats(
    hg: Heliograph, count: int, model: str = "gpt-4o-mini", headers: dict[str, str] | None = None
) -> None:
    """`count` chats through the gateway, each waited for until it is stored."""
    ids = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            body = {**CHAT, "model": model}
            path = f"{hg.gateway}/openai/v1/chat/completions"
            sent = {**hg.gateway_auth(), **(headers or {})}
            async with session.post(path, json=body, headers=sent) as response:
                await response.read()
                ids.append(response.headers["Helicone-Id"])
    for request_id in ids:
        await hg.wait_for(request_id, timeout_s=10)


def rule(receiver: Receiver, **fields: Any) -> dict[str, Any]:
    return {
        "name": "errors",
        "metric": "error_rate",
        "threshold": 40,
        "window_minutes": 5,
        "min_requests": 1,
        "channels": [{"type": "webhook", "url": receiver.url}],
        **fields,
    }


async def create(hg: Heliograph, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = await call(hg, "POST", "/v1/alerts", json=body)
    assert status == 201, answer
    created: dict[str, Any] = answer["data"]
    return created


async def evaluate(hg: Heliograph) -> dict[str, str]:
    """One evaluation; {alert id: event} of what it changed."""
    transitions = await hg.running.services.alert_evaluator.evaluate_now()
    return {t.alert_id: t.event for t in transitions}


async def test_error_rate_fires_once_and_resolves_once_on_every_channel(
    hg: Heliograph, receiver: Receiver, smtp: tuple[str, Inbox]
) -> None:
    inbox = smtp[1]
    channels = [
        {"type": "webhook", "url": receiver.url},
        {"type": "email", "to": ["ops@example.com", "oncall@example.com"]},
    ]
    created = await create(hg, rule(receiver, min_requests=4, channels=channels))
    alert_id = created["id"]
    assert created["state"] == "ok"
    assert created["enabled"] is True
    assert created["aggregation"] == "avg"

    await chats(hg, 2)
    assert await evaluate(hg) == {}  # 0 % of 2 requests
    await chats(hg, 3, model="error-500")  # the provider starts failing: 3 of 5 fail
    receiver.refuse_next = 1  # the receiver fails once: a quick retry delivers it
    assert await evaluate(hg) == {alert_id: "fired"}
    for _ in range(3):  # still crossed: nobody is told again
        assert await evaluate(hg) == {}
    assert len(receiver.accepted) == 1
    assert receiver.refused == 1
    assert len(inbox.messages) == 1

    fired = receiver.accepted[0]
    assert fired["event"] == "fired"
    assert fired["value"] == pytest.approx(60.0)
    assert fired["request_count"] == 5
    assert fired["organization_id"] == hg.organization_id
    assert fired["alert"] == {
        "id": alert_id,
        "name": "errors",
        "metric": "error_rate",
        "aggregation": "avg",
        "threshold": 40.0,
        "window_minutes": 5,
    }
    assert 'Alert "errors" fired: error rate was 60.0%' in fired["text"]
    assert "threshold of 40.0% (5 requests)" in fired["text"]
    assert fired["at"].endswith("+00:00")
    mail = inbox.messages[0]
    assert mail["To"] == "ops@example.com, oncall@example.com"
    assert mail["Subject"].startswith('[Heliograph] Alert "errors" fired')
    text = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "Threshold:  40.0" in text
    assert "Requests:   5" in text

    status, body = await call(hg, "GET", "/v1/alerts")
    assert status == 200
    (shown,) = body["data"]
    assert shown["state"] == "firing"
    assert shown["last_value"] == pytest.approx(60.0)

    await chats(hg, 5)  # the provider recovers: 3 of 10 fail
    assert await evaluate(hg) == {alert_id: "resolved"}
    assert await evaluate(hg) == {}
    assert [m["event"] for m in receiver.accepted] == ["fired", "resolved"]
    assert 'Alert "errors" resolved: error rate was 30.0%' in receiver.accepted[1]["text"]
    assert len(inbox.messages) == 2
    assert "resolved" in inbox.messages[1]["Subject"]

    status, body = await call(hg, "GET", f"/v1/alerts/{alert_id}/history")
    assert status == 200
    resolved, fired_line = body["data"]
    assert (resolved["event"], fired_line["event"]) == ("resolved", "fired")
    assert fired_line["value"] == pytest.approx(60.0)
    assert fired_line["request_count"] == 5
    assert fired_line["threshold"] == 40.0
    webhook, email = fired_line["notifications"]
    assert webhook["ok"] is True
    assert webhook["attempts"] == 2
    assert webhook["target"].startswith("http://127.0.0.1:")
    assert email == {"type": "email", "target": "ops@example.com, oncall@example.com", "ok": True}
    status, body = await call(hg, "GET", f"/v1/alerts/{alert_id}/history?limit=1")
    assert [line["event"] for line in body["data"]] == ["resolved"]


async def test_each_metric_fires_on_its_data_and_filters_select(
    hg: Heliograph, receiver: Receiver
) -> None:
    model = {"request_response_rmt": {"model": {"equals": "gpt-4o-mini-2024-07-18"}}}
    team = {"properties": {"team": {"equals": "blue"}}}
    ids = {
        name: (await create(hg, rule(receiver, name=name, **fields)))["id"]
        for name, fields in {
            "cost": {"metric": "cost", "threshold": 0},
            "slow p95": {"metric": "latency", "aggregation": "p95", "threshold": 250},
            "fast avg": {"metric": "latency", "threshold": 250, "filter": model},
            "count": {"metric": "count", "threshold": 4},
            "held back": {"metric": "count", "threshold": 0, "min_requests": 100},
            "blue team": {"metric": "count", "threshold": 0, "filter": team},
            "red team": {
                "metric": "count",
                "threshold": 0,
                "filter": {"properties": {"team": {"equals": "red"}}},
            },
        }.items()
    }
    await chats(hg, 2, headers={"Helicone-Property-Team": "blue"})
    assert await evaluate(hg) == {ids["cost"]: "fired", ids["blue team"]: "fired"}
    await chats(hg, 3, model="slow-300")
    fired = await evaluate(hg)
    assert fired == {ids["slow p95"]: "fired", ids["count"]: "fired"}
    by_name = {m["alert"]["name"]: m for m in receiver.accepted}
    assert by_name["cost"]["value"] > 0
    assert by_name["slow p95"]["value"] >= 300
    assert by_name["slow p95"]["alert"]["aggregation"] == "p95"
    assert by_name["count"]["value"] == 5
    assert set(by_name) == {"cost", "blue team", "slow p95", "count"}

    _, body = await call(hg, "GET", "/v1/alerts")
    states = {a["name"]: (a["state"], a["last_value"]) for a in body["data"]}
    assert states["held back"] == ("ok", 5)  # counted, but 5 requests are fewer than 100
    assert states["red team"] == ("ok", 0)
    assert states["fast avg"][0] == "ok"
    assert states["fast avg"][1] < 250


async def test_a_disabled_rule_is_not_evaluated_and_changes_are_audited(
    hg: Heliograph, receiver: Receiver
) -> None:
    alert_id = (await create(hg, rule(receiver, metric="count", threshold=0)))["id"]
    status, body = await call(hg, "PATCH", f"/v1/alerts/{alert_id}", json={"enabled": False})
    assert status == 200
    assert body["data"]["enabled"] is False
    await chats(hg, 1)
    assert await evaluate(hg) == {}
    changed = {"enabled": True, "threshold": 5, "metric": "latency", "aggregation": "p99"}
    status, body = await call(hg, "PATCH", f"/v1/alerts/{alert_id}", json=changed)
    assert status == 200, body
    assert (body["data"]["metric"], body["data"]["aggregation"]) == ("latency", "p99")
    status, body = await call(
        hg, "PATCH", f"/v1/alerts/{alert_id}", json={"metric": "count", "threshold": 0}
    )
    assert body["data"]["aggregation"] == "avg"  # a new metric starts from its default
    assert await evaluate(hg) == {alert_id: "fired"}
    status, body = await call(hg, "DELETE", f"/v1/alerts/{alert_id}")
    assert (status, body["data"]) == (200, {"deleted": alert_id})
    assert (await call(hg, "GET", f"/v1/alerts/{alert_id}"))[0] == 404
    lines = hg.running.services.audit.query(AuditQuery(hg.organization_id, action="alert."))
    assert sorted(line.action for line in lines) == [
        "alert.create",
        "alert.delete",
        "alert.update",
        "alert.update",
        "alert.update",
    ]
    assert all(receiver.url not in str(line.details) for line in lines)


async def test_webhook_urls_are_sealed_and_masked(hg: Heliograph) -> None:
    slack = {"type": "webhook", "url": SLACK_URL}
    created = await create(hg, rule(Receiver(), channels=[slack]))
    assert created["channels"] == [{"type": "webhook", "url": "https://hooks.slack.com/…XYZ9"}]
    _, body = await call(hg, "GET", "/v1/alerts")
    assert SLACK_URL not in str(body)
    with hg.running.services.engine.connect() as connection:
        row = connection.execute(select(Alert).where(Alert.id == created["id"])).one()
    assert b"hooks.slack.com" not in row.channels_ciphertext
    opened = hg.running.services.alerts.get(hg.organization_id, created["id"]).channels
    assert opened == (WebhookChannel(SLACK_URL),)


async def test_bad_input_is_a_clear_400(hg: Heliograph, receiver: Receiver) -> None:
    good = rule(receiver)
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "metric": "errors"}, "metric must be one of"),
        ({**good, "threshold": -1}, "threshold must be a finite number"),
        ({**good, "threshold": "ten"}, "threshold must be a number"),
        ({**good, "threshold": True}, "threshold must be a number"),
        ({**good, "window_minutes": 0}, "window_minutes must be a whole number from 1"),
        ({**good, "window_minutes": 1441}, "window_minutes must be a whole number"),
        ({**good, "min_requests": -1}, "min_requests must be"),
        ({**good, "aggregation": "p95"}, "aggregation applies to the latency metric only"),
        ({**good, "metric": "latency", "aggregation": "p42"}, "aggregation must be one of"),
        ({**good, "name": "  "}, "name must be"),
        ({**good, "name": "n" * 201}, "name must be 1 to 200"),
        ({**good, "name": "n" * 5000}, "name"),
        ({**good, "threshold": 10**400}, "threshold must be a finite number"),
        ({**good, "filter": {"request_response_rmt": {"nope": {"equals": 1}}}}, "nope"),
        ({**good, "filter": {"request_response_rmt": {"model": {"gte": "x"}}}}, "gte"),
        ({**good, "channels": []}, "channels must be a list of 1 to 10"),
        ({**good, "channels": [{"type": "sms", "to": "1"}]}, '.type must be "webhook"'),
        ({**good, "channels": [{"type": "webhook", "url": "not a url"}]}, "channels[0].url"),
        ({**good, "channels": [{"type": "webhook", "url": "http://hooks.example.com/x"}]}, "https"),
        (
            {**good, "channels": [{"type": "webhook", "url": "https://10.0.0.8/x"}]},
            "private or local address",
        ),
        (
            {**good, "channels": [{"type": "webhook", "url": "https://localhost:1/x"}]},
            "private or local address",
        ),
        (
            {**good, "channels": [{"type": "webhook", "url": SLACK_URL, "secret": 1}]},
            "unknown field 'secret'",
        ),
        ({**good, "channels": [{"type": "email", "to": ["not-an-address"]}]}, "not an e-mail"),
        ({**good, "channels": [{"type": "email", "to": "a@example.com"}]}, ".to must be a list"),
        (
            {
                **good,
                "channels": [{"type": "email", "to": [f"u{i}@example.com" for i in range(21)]}],
            },
            "1 to 20 addresses",
        ),
        ({**good, "channels": [{"type": "webhook", "url": SLACK_URL}] * 11}, "1 to 10 channels"),
        ({**good, "surprise": 1}, "surprise"),
        ({key: value for key, value in good.items() if key != "metric"}, "metric"),
    ]
    for body, message in cases:
        status, answer = await call(hg, "POST", "/v1/alerts", json=body)
        assert status == 400, (body, answer)
        assert message in answer["error"], (message, answer["error"])
    for raw in (b"{", b'{"name": "x", "threshold": NaN}', b"\xff\xfe", b"[]"):
        headers = {**hg.auth(), "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as session:
            async with session.post(hg.api + "/v1/alerts", data=raw, headers=headers) as response:
                assert response.status == 400, raw
    nan = b'{"name": "x", "metric": "cost", "threshold": NaN, "window_minutes": 5, '
    nan += b'"channels": [{"type": "email", "to": ["a@example.com"]}]}'
    async with aiohttp.ClientSession() as session:
        headers = {**hg.auth(), "Content-Type": "application/json"}
        async with session.post(hg.api + "/v1/alerts", data=nan, headers=headers) as response:
            assert response.status == 400
    status, body = await call(hg, "GET", "/v1/alerts")
    assert body["data"] == []  # nothing was saved
    alert_id = (await create(hg, good))["id"]
    for patch, message in (
        ({"threshold": -5}, "threshold"),
        ({"name": None}, "name must be"),
        ({"enabled": None}, "enabled must be true or false"),
        ({"filter": "everything"}, "filter"),
    ):
        status, answer = await call(hg, "PATCH", f"/v1/alerts/{alert_id}", json=patch)
        assert status == 400, (patch, answer)
        assert message in answer["error"]
    status, answer = await call(hg, "GET", f"/v1/alerts/{alert_id}/history?limit=0")
    assert status == 400


async def test_at_most_100_rules(hg: Heliograph, receiver: Receiver) -> None:
    services = hg.running.services
    body = rule(receiver)
    for index in range(MAX_RULES - 10):
        services.alerts.create(hg.organization_id, {**body, "name": f"r{index}"})
    # The last ten places raced for by thirty: concurrent creations are counted one at a time.
    raced = [call(hg, "POST", "/v1/alerts", json=body) for _ in range(30)]
    statuses = sorted(status for status, _ in await asyncio.gather(*raced))
    assert statuses == [201] * 10 + [409] * 20
    status, answer = await call(hg, "POST", "/v1/alerts", json=body)
    assert status == 409
    assert "at most 100 alerts" in answer["error"]
    assert len(services.alerts.list_rules(hg.organization_id)) == MAX_RULES


async def test_read_only_keys_and_other_organizations(hg: Heliograph, receiver: Receiver) -> None:
    alert_id = (await create(hg, rule(receiver, metric="count", threshold=0)))["id"]
    await chats(hg, 1)
    assert await evaluate(hg) == {alert_id: "fired"}
    read_key = hg.running.services.keys.create_key(
        hg.organization_id, "reader", KeyPermissions.READ
    ).api_key
    assert (await call(hg, "GET", "/v1/alerts", read_key))[0] == 200
    assert (await call(hg, "POST", "/v1/alerts", read_key, json=rule(receiver)))[0] == 403
    patch = {"name": "stolen"}
    assert (await call(hg, "PATCH", f"/v1/alerts/{alert_id}", read_key, json=patch))[0] == 403
    assert (await call(hg, "DELETE", f"/v1/alerts/{alert_id}", read_key))[0] == 403

    before = (await call(hg, "GET", "/v1/alerts"))[1]
    _, other_key = hg.new_organization("rival")
    for method, path, body in (
        ("GET", f"/v1/alerts/{alert_id}", None),
        ("GET", f"/v1/alerts/{alert_id}/history", None),
        ("PATCH", f"/v1/alerts/{alert_id}", {"name": "stolen", "enabled": False}),
        ("DELETE", f"/v1/alerts/{alert_id}", None),
    ):
        status, answer = await call(hg, method, path, other_key, json=body)
        assert status == 404, (method, path, answer)
    assert (await call(hg, "GET", "/v1/alerts", other_key))[1]["data"] == []
    assert (await call(hg, "GET", "/v1/alerts"))[1] == before


async def test_readings_take_whole_hours_from_the_rollup(store: AnalyticsStore) -> None:
    """Rows an hour and more old are read from the rollup, the edges from the requests; the
    numbers are the same whichever source answers."""
    org = str(uuid.uuid4())
    now_ms = int(time.time() * 1000)
    minutes_ago = (170, 130, 95, 61, 30, 1)
    rows = [
        stored_row(
            org,
            ["gpt-4o", "gpt-4o-mini"][index % 2],
            request_created_at=datetime.fromtimestamp(now_ms / 1000 - 60 * ago, UTC).strftime(
                "%Y-%m-%d %H:%M:%S.%f"
            )[:-3],
            status=500 if index in (0, 3) else -1 if index == 5 else 200,
            latency=100 * (index + 1),
            cost=1_000_000 * (index + 1),
        )
        for index, ago in enumerate(minutes_ago)
    ]
    await store.insert_requests(b"\n".join(map(orjson.dumps, rows)), org)
    metrics = AlertMetrics(store.engine)
    start, end = now_ms - 180 * 60_000, now_ms + 1
    scope = store.engine.scope(org)
    sql, _ = reading_sql(scope, ALL_ROWS, Measure("count"), start, end)
    assert "request_rollup_hourly" in sql  # three hours: at least one whole hour in the rollup

    async def read(measure: Measure, tree: Any = "all", begin: int = start) -> Reading:
        return await metrics.reading(org, parse_filter(tree), measure, begin, end)

    assert await read(Measure("count")) == Reading(6.0, 6)
    assert await read(Measure("error_rate")) == Reading(50.0, 6)  # two 500s and one failure
    assert await read(Measure("cost")) == Reading(pytest.approx(0.021), 6)  # type: ignore[arg-type]
    assert await read(Measure("latency")) == Reading(350.0, 6)
    p50 = await read(Measure("latency", "p50"))
    assert 300 <= (p50.value or 0) <= 400
    mini = {"request_response_rmt": {"model": {"equals": "gpt-4o-mini"}}}
    assert await read(Measure("count"), mini) == Reading(3.0, 3)
    assert await read(Measure("count"), begin=now_ms - 45 * 60_000) == Reading(2.0, 2)
    empty = await read(Measure("latency", "p95"), begin=now_ms - 60_000 + 30_000)
    assert empty == Reading(None, 0)
    assert await read(Measure("error_rate"), begin=end - 1000) == Reading(None, 0)


async def test_a_slow_channel_or_a_broken_rule_holds_up_no_other_rule(
    hg: Heliograph, receiver: Receiver
) -> None:
    slow = rule(receiver, name="slow", metric="count", threshold=0)
    slow["channels"] = [{"type": "webhook", "url": receiver.url.replace("/hook", "/slow")}]
    slow_id = (await create(hg, slow))["id"]
    fast_id = (await create(hg, rule(receiver, name="fast", metric="count", threshold=0)))["id"]
    sealed_id = (await create(hg, rule(receiver, name="sealed", metric="count", threshold=0)))["id"]
    parsed_id = (await create(hg, rule(receiver, name="parsed", metric="count", threshold=0)))["id"]
    with hg.running.services.engine.begin() as connection:  # as after a lost key, a grammar change
        connection.execute(
            update(Alert).where(Alert.id == sealed_id).values(channels_ciphertext=b"garbage")
        )
        connection.execute(update(Alert).where(Alert.id == parsed_id).values(filter='{"x": 1}'))
    await chats(hg, 1)
    evaluation = asyncio.ensure_future(evaluate(hg))
    # The fast rule is told while the slow receiver holds on.
    await asyncio.wait_for(receiver.arrived.wait(), 10)
    assert [m["alert"]["name"] for m in receiver.accepted] == ["fast"]
    assert not evaluation.done()
    receiver.release.set()
    async with asyncio.timeout(10):
        assert await evaluation == {fast_id: "fired", slow_id: "fired"}
    assert sorted(m["alert"]["name"] for m in receiver.accepted) == ["fast", "slow"]
    _, body = await call(hg, "GET", "/v1/alerts")
    states = {alert["name"]: alert["state"] for alert in body["data"]}
    assert states == {"slow": "firing", "fast": "firing", "sealed": "ok", "parsed": "ok"}
    (sealed,) = [alert for alert in body["data"] if alert["name"] == "sealed"]
    assert sealed["channels"] == []  # shown without the channels it can no longer open


async def test_the_api_process_evaluates_on_its_own_every_interval(
    tmp_path: Path, analytics_dir: Path, fake: Fake, receiver: Receiver
) -> None:
    origin = receiver.url.removesuffix("/hook")
    settings = heliograph_settings(
        tmp_path, analytics_dir, fake, allowed_webhook_origins=(origin,), alert_interval_s=0.2
    )
    instance = await start_heliograph(settings)
    try:
        await create(instance, rule(receiver, metric="count", threshold=0))
        await chats(instance, 1)
        await asyncio.wait_for(receiver.arrived.wait(), 10)
        assert [m["event"] for m in receiver.accepted] == ["fired"]
    finally:
        await instance.running.stop()
