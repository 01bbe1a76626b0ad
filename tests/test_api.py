"""The request API: filters, sorts, paging, reading one request, counting, log shipping, bad
input (always a 400 that says what is wrong), and tenant isolation."""

from __future__ import annotations

import asyncio
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from conftest import Heliograph
from heliograph.runtime import bind

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "find the needle ü"}]}


async def send(hg: Heliograph, key: str | None = None, **headers: str) -> str:
    request_id = str(uuid.uuid4())
    all_headers = {**hg.gateway_auth(key), "Helicone-Request-Id": request_id, **headers}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{hg.gateway}/openai/v1/chat/completions", json=CHAT, headers=all_headers
        ) as response,
    ):
        assert response.status == 200
        await response.read()
    return request_id


async def query(hg: Heliograph, body: object, key: str | None = None) -> tuple[int, dict[str, Any]]:
    return await hg.api_post("/v1/request/query-clickhouse", body, key)


@pytest.fixture
async def three_requests(heliograph: Heliograph) -> list[str]:
    """Three requests, oldest first, each stamped at least a few milliseconds after the last
    (times are stored to the millisecond, and the order tests need no ties)."""
    ids = []
    for headers in (
        {"Helicone-User-Id": "u1", "Helicone-Property-Team": "red"},
        {"Helicone-User-Id": "u2", "Helicone-Property-Team": "blue"},
        {"Helicone-User-Id": "u2", "Helicone-Session-Id": "sess-9"},
    ):
        ids.append(await send(heliograph, **headers))
        await asyncio.sleep(0.005)
    for request_id in ids:
        await heliograph.wait_for(request_id)
    return ids


def leaf(column: str, operator: str, value: object) -> dict[str, Any]:
    return {"request_response_rmt": {column: {operator: value}}}


async def test_filters_select_the_right_requests(
    heliograph: Heliograph, three_requests: list[str]
) -> None:
    first, second, third = three_requests
    cases = [
        (leaf("user_id", "equals", "u2"), {second, third}),
        ({"request_response_rmt": {"properties": {"team": {"equals": "red"}}}}, {first}),
        ({"properties": {"team": {"equals": "blue"}}}, {second}),
        (leaf("session_id", "equals", "sess-9"), {third}),
        (
            {
                "left": leaf("user_id", "equals", "u1"),
                "operator": "or",
                "right": leaf("request_id", "equals", third),
            },
            {first, third},
        ),
        (
            {
                "left": leaf("user_id", "equals", "u2"),
                "operator": "and",
                "right": leaf("prompt_tokens", "gte", 16),
            },
            {second, third},
        ),
        (leaf("request_body", "contains", "NEEDLE Ü"), {first, second, third}),
        (leaf("request_body", "contains", "haystack"), set()),
        (leaf("cost", "gt", 0.000001), {first, second, third}),
        (leaf("status", "equals", 200), {first, second, third}),
        (leaf("model", "like", "gpt-4o-mini%"), {first, second, third}),
        ({"request_response_rmt": {"cached": {"equals": False}}}, {first, second, third}),
    ]
    for node, expected in cases:
        status, body = await query(heliograph, {"filter": node, "limit": 100})
        assert status == 200, body
        assert {row["request_id"] for row in body["data"]} == expected, node


async def test_time_filter_sort_limit_and_offset(
    heliograph: Heliograph, three_requests: list[str]
) -> None:
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    node = leaf("request_created_at", "gte", since)
    status, body = await query(heliograph, {"filter": node, "sort": {"created_at": "asc"}})
    assert status == 200
    assert [row["request_id"] for row in body["data"]] == three_requests
    status, body = await query(
        heliograph, {"filter": node, "sort": {"created_at": "desc"}, "limit": 1, "offset": 1}
    )
    assert [row["request_id"] for row in body["data"]] == [three_requests[1]]
    status, body = await query(heliograph, {"filter": "all", "sort": {"latency": "desc"}})
    latencies = [row["delay_ms"] for row in body["data"]]
    assert latencies == sorted(latencies, reverse=True)


async def test_query_alias_count_and_get(heliograph: Heliograph, three_requests: list[str]) -> None:
    status, body = await heliograph.api_post("/v1/request/query", {"filter": "all"})
    assert status == 200
    assert len(body["data"]) == 3
    status, body = await heliograph.api_post(
        "/v1/request/count/query", {"filter": leaf("user_id", "equals", "u2")}
    )
    assert (status, body) == (200, {"data": 2, "error": None})
    status, body = await heliograph.api_get(f"/v1/request/{three_requests[0]}")
    assert status == 200
    assert "request_body" not in body["data"]
    status, body = await heliograph.api_get(f"/v1/request/{three_requests[0]}?includeBody=true")
    assert body["data"]["request_body"]["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"filter": {"nope": {"x": {"equals": 1}}}}, "unknown table"),
        ({"filter": leaf("colour", "equals", "x")}, "unknown column"),
        ({"filter": leaf("latency", "contains", "x")}, "not valid for latency"),
        ({"filter": leaf("latency", "gte", "fast")}, "takes a number"),
        ({"filter": leaf("request_created_at", "gte", "yesterday")}, "ISO 8601"),
        ({"filter": leaf("request_id", "equals", "not-a-uuid")}, "takes a UUID"),
        ({"filter": leaf("user_id", "equals", 5)}, "takes a string"),
        ({"filter": {"left": "all", "operator": "xor", "right": "all"}}, '"and" or "or"'),
        ({"filter": {"request_response_rmt": {"a": {}, "b": {}}}}, "exactly one"),
        ({"filter": "all", "limit": 1001}, "limit"),
        ({"filter": "all", "limit": -1}, "limit"),
        ({"filter": "all", "offset": -5}, "offset"),
        ({"filter": "all", "sort": {"shoe_size": "asc"}}, "unknown sort key"),
        ({"filter": "all", "sort": {"latency": "sideways"}}, "asc"),
        ({"filter": "all", "limit": "ten"}, "limit"),
    ],
)
async def test_bad_queries_are_400_with_a_message(
    heliograph: Heliograph, body: object, message: str
) -> None:
    status, response = await query(heliograph, body)
    assert status == 400, response
    assert response["data"] is None
    assert message in response["error"]


async def test_a_refused_filter_is_answered_with_the_parsers_message_alone(
    heliograph: Heliograph,
) -> None:
    """Filters are parsed as the body is validated; the answer is the refusal itself, and a field
    the schema refuses is still reported alone, as when filters were checked later."""
    bad = leaf("colour", "equals", "x")
    status, response = await query(heliograph, {"filter": bad})
    assert (status, response) == (
        400,
        {"data": None, "error": "unknown column 'colour' in request_response_rmt"},
    )
    status, response = await query(heliograph, {"filter": bad, "limit": -1})
    assert (status, response) == (
        400,
        {
            "data": None,
            "error": "invalid request: limit: Input should be greater than or equal to 0",
        },
    )


async def test_deeply_nested_filter_is_rejected(heliograph: Heliograph) -> None:
    node: object = "all"
    for _ in range(100):
        node = {"left": node, "operator": "and", "right": "all"}
    status, response = await query(heliograph, {"filter": node})
    assert status == 400
    assert "nested deeper" in response["error"]


async def test_malformed_json_and_oversized_body_are_rejected(heliograph: Heliograph) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{heliograph.api}/v1/request/query-clickhouse",
            data=b'{"filter": ',
            headers={**heliograph.auth(), "Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            assert "JSON" in (await response.json())["error"]
        async with session.post(
            f"{heliograph.api}/v1/request/query-clickhouse",
            data=b"x" * (9 * 1024 * 1024),
            headers={**heliograph.auth(), "Content-Type": "application/json"},
        ) as response:
            assert response.status == 413


async def test_api_needs_a_valid_key(heliograph: Heliograph) -> None:
    for key in ("sk-helicone-wrong", ""):
        status, body = await query(heliograph, {"filter": "all"}, key=key or " ")
        assert status == 401
        assert body["data"] is None
    status, body = await heliograph.api_get("/v1/request/not-a-uuid")
    assert status == 400
    status, body = await heliograph.api_get(f"/v1/request/{uuid.uuid4()}")
    assert status == 404


async def test_one_organization_never_sees_another(
    heliograph: Heliograph, three_requests: list[str]
) -> None:
    _, other_key = heliograph.new_organization("rival")
    theirs = await send(heliograph, key=other_key)
    await heliograph.wait_for(theirs, key=other_key)
    status, body = await query(heliograph, {"filter": "all", "limit": 1000}, key=other_key)
    assert [row["request_id"] for row in body["data"]] == [theirs]
    status, body = await heliograph.api_get(f"/v1/request/{three_requests[0]}", key=other_key)
    assert status == 404
    status, body = await heliograph.api_post(
        "/v1/request/count/query", {"filter": "all"}, key=other_key
    )
    assert body["data"] == 1
    status, body = await query(heliograph, {"filter": leaf("request_id", "equals", theirs)})
    assert body["data"] == []


def log_message(request_id: str, **response: object) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "authorization": "ignored: the API key decides the organization",
        "heliconeMeta": {"modelOverride": None},
        "log": {
            "request": {
                "id": request_id,
                "userId": "shipper",
                "properties": {"source": "remote"},
                "targetUrl": "https://api.openai.com",
                "provider": "OPENAI",
                "path": "/v1/chat/completions",
                "requestCreatedAt": now.isoformat(),
                "isStream": False,
                "body": {"model": "gpt-4o-mini", "messages": []},
            },
            "response": {
                "id": request_id,
                "status": 200,
                "delayMs": 321,
                "timeToFirstToken": 100,
                "responseCreatedAt": (now + timedelta(milliseconds=321)).isoformat(),
                "promptTokens": 100,
                "completionTokens": 50,
                "model": "gpt-4o-mini",
                **response,
            },
        },
    }


async def test_log_endpoint_accepts_heliconess_message(heliograph: Heliograph) -> None:
    request_id = str(uuid.uuid4())
    status, body = await heliograph.api_post("/v1/log/request", log_message(request_id))
    assert status == 202, body
    row = await heliograph.wait_for(request_id)
    assert row["request_user_id"] == "shipper"
    assert row["delay_ms"] == 321
    assert (row["prompt_tokens"], row["completion_tokens"]) == (100, 50)
    assert row["model"] == "gpt-4o-mini"
    assert row["properties"] == {"source": "remote"}
    assert round(row["cost"] * 1e9) == 100 * 150 + 50 * 600


def too_many_properties() -> dict[str, Any]:
    message = log_message(str(uuid.uuid4()))
    message["log"]["request"]["properties"] = {f"p{number}": "v" for number in range(65)}
    return message


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({}, "'log'"),
        ({"log": {"request": {}}}, "'request' and 'response'"),
        (log_message("not-a-uuid"), "must be a UUID"),
        (log_message(str(uuid.uuid4()), status="ok"), "must be a number"),
        (too_many_properties(), "at most 64 properties"),
    ],
)
async def test_log_endpoint_rejects_bad_messages(
    heliograph: Heliograph, message: dict[str, Any], error: str
) -> None:
    status, body = await heliograph.api_post("/v1/log/request", message)
    assert status == 400
    assert error in body["error"]


async def test_healthz_and_metrics(heliograph: Heliograph, three_requests: list[str]) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{heliograph.api}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["store"] == "ok"
        async with session.get(f"{heliograph.api}/metrics") as response:
            text = await response.text()
    assert 'heliograph_requests_total{provider="OPENAI",status_class="2xx"} 3.0' in text
    assert "heliograph_gateway_overhead_seconds_bucket" in text
    assert "heliograph_ingest_queue_depth" in text
    assert "heliograph_ingest_flush_seconds_count" in text
    assert "heliograph_ingest_spool_files" in text


async def test_feedback_and_scores_are_returned_and_filterable(
    heliograph: Heliograph, three_requests: list[str]
) -> None:
    first, second, _ = three_requests
    status, body = await heliograph.api_post(f"/v1/request/{first}/feedback", {"rating": True})
    assert status == 201, body
    status, body = await heliograph.api_post(
        f"/v1/request/{first}/score", {"scores": {"accuracy": 0.75, "helpful": True}}
    )
    assert status == 201, body
    await heliograph.api_post(f"/v1/request/{second}/score", {"scores": {"accuracy": 0.25}})
    await heliograph.api_post(f"/v1/request/{second}/score", {"scores": {"accuracy": 0.5}})

    status, body = await heliograph.api_get(f"/v1/request/{first}")
    assert body["data"]["feedback_rating"] is True
    assert body["data"]["scores"] == {
        "helicone-score-feedback": 1.0,
        "accuracy": 0.75,
        "helpful": 1.0,
    }

    by_score = {"request_response_rmt": {"scores": {"accuracy": {"gte": 0.5}}}}
    status, body = await query(heliograph, {"filter": by_score})
    assert {row["request_id"] for row in body["data"]} == {first, second}, "newest value wins"
    liked = {"request_response_rmt": {"helicone-score-feedback": {"equals": True}}}
    status, body = await query(heliograph, {"filter": liked})
    assert [row["request_id"] for row in body["data"]] == [first]

    _, other_key = heliograph.new_organization("rival")
    await heliograph.api_post(f"/v1/request/{second}/feedback", {"rating": False}, key=other_key)
    status, body = await heliograph.api_get(f"/v1/request/{second}")
    assert body["data"]["feedback_rating"] is None, "another organization's feedback is not ours"


async def test_gateway_feedback_route_uses_heliconess_shape(
    heliograph: Heliograph, three_requests: list[str]
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{heliograph.gateway}/v1/feedback",
            json={"helicone-id": three_requests[2], "rating": False},
            headers=heliograph.gateway_auth(),
        ) as response:
            assert response.status == 201
        async with session.post(
            f"{heliograph.gateway}/v1/feedback",
            json={"rating": "meh"},
            headers=heliograph.gateway_auth(),
        ) as response:
            assert response.status == 400
    _, body = await heliograph.api_get(f"/v1/request/{three_requests[2]}")
    assert body["data"]["feedback_rating"] is False


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("feedback", {"rating": "yes"}, "rating"),
        ("score", {"scores": {}}, "scores"),
        ("score", {"scores": {"x": "high"}}, "scores.x"),
        ("score", {"scores": {"x": 1}, "extra": 1}, "extra"),
    ],
)
async def test_bad_feedback_and_scores_are_400(
    heliograph: Heliograph, path: str, body: dict[str, Any], message: str
) -> None:
    status, response = await heliograph.api_post(f"/v1/request/{uuid.uuid4()}/{path}", body)
    assert status == 400
    assert message in response["error"]
    status, response = await heliograph.api_post(f"/v1/request/nope/{path}", {"rating": True})
    assert status == 400


async def test_keep_alive_responses_are_not_held_back_by_nagle() -> None:
    """Each response on a reused connection arrives at once: every connection accepted on a port
    from `bind` has Nagle off. A listener without IPPROTO_TCP leaves Nagle on, and every response
    after the first waits ~40 ms for a delayed ACK (timed by `bench/keep_alive.py`)."""
    listener = bind("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    loop = asyncio.get_running_loop()
    nodelay: asyncio.Future[int] = loop.create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            nodelay.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await loop.create_server(Probe, sock=listener)
    async with server:
        _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        assert await nodelay != 0
        writer.close()


ENGINE_TEXT = (
    "Code: 27. DB::Exception: Cannot parse input: expected '\"' before: 'x'\n"
    "/var/lib/heliograph/analytics/store/data/default/request_response/all_1_1_0/ SELECT "
) * 500


async def test_store_errors_reach_clients_as_a_generic_503(
    heliograph: Heliograph, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine's text (SQL, values, paths) stays in one short log line."""
    from heliograph.analytics.executor import StoreUnavailable

    async def failing(*_args: object) -> int:
        raise StoreUnavailable(ENGINE_TEXT)

    monkeypatch.setattr(heliograph.running.services.requests, "count", failing)
    status, body = await heliograph.api_post("/v1/request/count/query", {"filter": "all"})
    assert status == 503
    assert body == {
        "data": None,
        "error": "the analytics store could not answer; try again shortly",
    }
    (line,) = [r.getMessage() for r in caplog.records if "analytics store error" in r.getMessage()]
    assert "\n" not in line
    assert len(line) < 400
    assert "/v1/request/count/query" in line


async def test_a_huge_search_term_is_a_400_naming_the_limit(
    heliograph: Heliograph, caplog: pytest.LogCaptureFixture
) -> None:
    term = "needle " * 15_000
    leaf = {"request_response_rmt": {"request_body": {"contains": term}}}
    status, body = await query(heliograph, {"filter": leaf})
    assert status == 400
    assert "at most 1000 characters" in body["error"]
    assert len(body["error"]) < 200
    assert sum(len(r.getMessage()) for r in caplog.records) < 10_000


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/session/query", {"search": "", "nameEquals": "n" * 1001}),
        ("/v1/user/query", {"userIds": ["u" * 1001]}),
        ("/v1/property/" + "k" * 501 + "/search", {}),
        ("/v1/session/" + "s" * 1001 + "/tag", {"tag": "t"}),
    ],
)
async def test_other_oversized_inputs_are_400s(
    heliograph: Heliograph, path: str, body: dict[str, Any]
) -> None:
    status, answer = await heliograph.api_post(path, body)
    assert status == 400, answer
    assert "at most" in answer["error"]
    assert len(answer["error"]) < 300


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/request/query",
            {"filter": {"request_response_rmt": {"model": {"equals": "\ud800"}}}},
        ),
        ("/v1/request/count/query", {"filter": {"properties": {"k\udfff": {"equals": "v"}}}}),
    ],
)
async def test_text_that_is_not_unicode_is_a_400(
    heliograph: Heliograph, path: str, body: dict[str, Any]
) -> None:
    """JSON can carry lone surrogates; no store can hold or compare them. (Fields typed as
    strings are refused by validation already; filters take any JSON.)"""
    status, answer = await heliograph.api_post(path, body)
    assert status == 400, answer
    assert "not valid Unicode" in answer["error"]


async def test_a_body_without_a_length_is_capped_too(heliograph: Heliograph) -> None:
    """A chunked body declares no length; it is cut off at the same limit, not read whole."""

    async def chunks() -> Any:
        yield b'{"filter": "all", "pad": "'
        for _ in range(10):
            yield b"x" * 1024 * 1024
        yield b'"}'

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            heliograph.api + "/v1/request/count/query", data=chunks(), headers=heliograph.auth()
        ) as response,
    ):
        assert response.status == 413
        assert "larger than" in (await response.json())["error"]


FILTER_ROUTES = (
    "/v1/request/query-clickhouse",
    "/v1/request/query",
    "/v1/request/count/query",
    "/v1/session/query",
    "/v1/session/count",
    "/v1/session/name/query",
    "/v1/session/metrics/query",
    "/v1/user/metrics/query",
)


async def test_json_nested_past_the_parser_is_a_400_on_every_filter_route(
    heliograph: Heliograph,
) -> None:
    """Nesting far beyond the filter's own 64 levels (and Python's recursion limit) is refused
    while the body is read, on every route that takes a filter, and the API keeps answering."""
    depth = 20_000
    body = b'{"filter": ' + b'{"left": ' * depth + b'"all"'
    body += b', "operator": "and", "right": "all"}' * depth + b"}"
    async with aiohttp.ClientSession() as session:
        for path in FILTER_ROUTES:
            async with session.post(
                f"{heliograph.api}{path}",
                data=body,
                headers={**heliograph.auth(), "Content-Type": "application/json"},
            ) as response:
                assert response.status == 400, path
                assert (await response.json())["data"] is None
    status, _ = await query(heliograph, {"filter": "all"})
    assert status == 200
