"""The fake Bedrock runtime, held to what boto3 accepts: it answers Converse and InvokeModel,
plain and streamed, and refuses requests not signed with the test credentials as AWS does.
Requests signed by `sign_request` and streams decoded by `aws_event_stream` pass through it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import boto3  # type: ignore[import-untyped, unused-ignore]
import pytest
from aiohttp import web
from botocore.config import Config  # type: ignore[import-untyped, unused-ignore]
from botocore.exceptions import ClientError, EventStreamError  # type: ignore[import-untyped, unused-ignore]
from yarl import URL

from fake_provider import TEXT, Seen, bedrock_api
from fake_provider.shared import SEEN
from heliograph.providers.aws_event_stream import EventStreamDecoder, InvokeStreamDecoder
from heliograph.providers.aws_signing import AwsCredentials, sign_request
from heliograph.translation.aws_event_stream import ConverseStreamTranslator
from heliograph.translation.bedrock import converse_path, error_to_openai

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
PROFILE_ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
)
MESSAGES = [{"role": "user", "content": [{"text": "Hi"}]}]
TOOLS = {"tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {}}}}]}
ANTHROPIC_BODY = json.dumps(
    {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
    }
)
CREDENTIALS = AwsCredentials(bedrock_api.ACCESS_KEY_ID, bedrock_api.SECRET_ACCESS_KEY, None)
T = TypeVar("T")


class Fake:
    def __init__(self, port: int, seen: Seen) -> None:
        self.port = port
        self.seen = seen
        self.url = f"http://127.0.0.1:{port}"

    def client(self, secret: str = bedrock_api.SECRET_ACCESS_KEY, key_id: str = "") -> Any:
        return boto3.client(
            "bedrock-runtime",
            region_name="us-east-1",
            endpoint_url=self.url,
            aws_access_key_id=key_id or bedrock_api.ACCESS_KEY_ID,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10),
        )


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    seen = Seen()
    app = web.Application()
    app[SEEN] = seen
    bedrock_api.add_routes(app.router)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sock = site._server.sockets[0]  # type: ignore[union-attr]
    yield Fake(sock.getsockname()[1], seen)
    await runner.cleanup()


async def blocking(call: Callable[[], T]) -> T:
    """boto3 blocks: run it in a thread, bounded in time."""
    return await asyncio.wait_for(asyncio.to_thread(call), timeout=30)


# ---- through boto3 ----


async def test_converse(fake: Fake) -> None:
    client = fake.client()
    answer = await blocking(lambda: client.converse(modelId=MODEL, messages=MESSAGES))
    assert answer["output"]["message"] == {"role": "assistant", "content": [{"text": TEXT}]}
    assert answer["stopReason"] == "end_turn"
    assert answer["usage"] == {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19}
    assert answer["metrics"]["latencyMs"] == 42
    (seen,) = fake.seen.requests
    assert seen["path"] == converse_path(MODEL, stream=False)  # boto3 sends ":" as "%3A"
    assert seen["body"]["messages"] == MESSAGES
    assert seen["headers"]["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")


async def test_converse_with_tools_calls_the_first_tool(fake: Fake) -> None:
    client = fake.client()
    answer = await blocking(
        lambda: client.converse(modelId=MODEL, messages=MESSAGES, toolConfig=TOOLS)
    )
    (block,) = answer["output"]["message"]["content"]
    assert block["toolUse"]["name"] == "get_weather"
    assert block["toolUse"]["input"] == {"city": "Paris"}
    assert answer["stopReason"] == "tool_use"


async def test_converse_stream(fake: Fake) -> None:
    client = fake.client()

    def events() -> list[dict[str, Any]]:
        return list(client.converse_stream(modelId=MODEL, messages=MESSAGES)["stream"])

    found = await blocking(events)
    assert [next(iter(e)) for e in found] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in found[1:4])
    assert text == TEXT
    assert found[5]["messageStop"]["stopReason"] == "end_turn"
    assert found[6]["metadata"]["usage"]["totalTokens"] == 19


async def test_converse_stream_with_tools(fake: Fake) -> None:
    client = fake.client()

    def events() -> list[dict[str, Any]]:
        stream = client.converse_stream(modelId=MODEL, messages=MESSAGES, toolConfig=TOOLS)
        return list(stream["stream"])

    found = await blocking(events)
    assert found[1]["contentBlockStart"]["start"]["toolUse"]["name"] == "get_weather"
    fragments = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in found[2:4]]
    assert json.loads("".join(fragments)) == {"city": "Paris"}
    assert found[5]["messageStop"]["stopReason"] == "tool_use"


async def test_converse_stream_exception_mid_stream(fake: Fake) -> None:
    client = fake.client()
    got: list[Any] = []

    def events() -> None:
        for event in client.converse_stream(modelId="error-stream", messages=MESSAGES)["stream"]:
            got.append(event)

    with pytest.raises(EventStreamError) as raised:
        await blocking(events)
    assert raised.value.response["Error"]["Code"] == "throttlingException"
    assert [next(iter(e)) for e in got] == ["messageStart", "contentBlockDelta"]


@pytest.mark.parametrize("model", [MODEL, PROFILE_ARN])
async def test_invoke_model(fake: Fake, model: str) -> None:
    client = fake.client()
    answer = await blocking(lambda: client.invoke_model(modelId=model, body=ANTHROPIC_BODY))
    message = json.loads(answer["body"].read())
    assert message["model"] == model
    assert fake.seen.requests[0]["path"] == f"/model/{quote(model, safe='')}/invoke"
    assert message["content"] == [{"type": "text", "text": TEXT}]
    assert message["usage"] == {"input_tokens": 12, "output_tokens": 7}
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-output-token-count"] == "7"
    assert fake.seen.requests[0]["body"]["anthropic_version"] == "bedrock-2023-05-31"


async def test_invoke_model_with_response_stream(fake: Fake) -> None:
    client = fake.client()

    def documents() -> list[Any]:
        answer = client.invoke_model_with_response_stream(modelId=MODEL, body=ANTHROPIC_BODY)
        return [json.loads(e["chunk"]["bytes"]) for e in answer["body"]]

    found = await blocking(documents)
    assert found[0]["type"] == "message_start"
    assert found[0]["message"]["model"] == MODEL
    text = "".join(e["delta"]["text"] for e in found if e["type"] == "content_block_delta")
    assert text == TEXT
    assert found[-1]["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 7


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [("error-429", 429, "ThrottlingException"), ("error-500", 500, "InternalServerException")],
)
async def test_errors_steered_by_model(fake: Fake, model: str, status: int, code: str) -> None:
    client = fake.client()
    for call in (
        lambda: client.converse(modelId=model, messages=MESSAGES),
        lambda: client.invoke_model(modelId=model, body=ANTHROPIC_BODY),
    ):
        with pytest.raises(ClientError) as raised:
            await blocking(call)
        assert raised.value.response["Error"]["Code"] == code
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    if status == 429:
        assert raised.value.response["Error"]["Message"] == "Too many requests"


async def test_a_wrong_secret_is_an_invalid_signature(fake: Fake) -> None:
    client = fake.client(secret="not-the-secret")
    with pytest.raises(ClientError) as raised:
        await blocking(lambda: client.converse(modelId=MODEL, messages=MESSAGES))
    error = raised.value.response
    assert error["Error"]["Code"] == "InvalidSignatureException"
    assert error["Error"]["Message"].startswith("The request signature we calculated")
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(fake.seen.requests) == 1  # recorded, then refused


async def test_an_unknown_key_id_is_unrecognized(fake: Fake) -> None:
    client = fake.client(key_id="AKIDSOMEONEELSE")
    with pytest.raises(ClientError) as raised:
        await blocking(lambda: client.invoke_model(modelId=MODEL, body=ANTHROPIC_BODY))
    assert raised.value.response["Error"]["Code"] == "UnrecognizedClientException"


# ---- through aiohttp, signed by sign_request ----


async def post(
    fake: Fake, path: str, body: bytes, headers: list[tuple[str, str]]
) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(URL(fake.url + path, encoded=True), data=body, headers=headers) as response,
    ):
        return response.status, dict(response.headers), await response.read()


def signed(fake: Fake, path: str, body: bytes, **extra: str) -> list[tuple[str, str]]:
    headers = [("Content-Type", "application/json"), *extra.items()]
    return sign_request("POST", fake.url + path, headers, body, CREDENTIALS, "eu-west-3")


@pytest.mark.parametrize("model", [MODEL, PROFILE_ARN])
async def test_sign_request_and_the_stream_decoders_against_the_fake(
    fake: Fake, model: str
) -> None:
    path = converse_path(model, stream=True)  # ":" as %3A, an ARN's "/" as %2F
    body = json.dumps({"messages": MESSAGES}).encode()
    status, headers, data = await post(fake, path, body, signed(fake, path, body))
    assert status == 200
    assert headers["Content-Type"] == bedrock_api.EVENT_STREAM
    messages = EventStreamDecoder().feed(data)
    assert [m.event_type for m in messages][:2] == ["messageStart", "contentBlockDelta"]
    translator = ConverseStreamTranslator("bedrock-x", "chatcmpl-1", 1, include_usage=True)
    sse = b"".join(translator.feed(data[i : i + 5]) for i in range(0, len(data), 5))
    chunks = [json.loads(b[6:]) for b in (sse + translator.close()).split(b"\n\n")[:-2] if b]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1]) == TEXT
    assert chunks[-1]["usage"]["total_tokens"] == 19


async def test_invoke_stream_decoder_against_the_fake(fake: Fake) -> None:
    path = f"/model/{MODEL.replace(':', '%3A')}/invoke-with-response-stream"
    body = ANTHROPIC_BODY.encode()
    status, _, data = await post(fake, path, body, signed(fake, path, body))
    assert status == 200
    decoder = InvokeStreamDecoder()
    documents = [json.loads(d) for d in decoder.feed(data)]
    decoder.close()
    assert decoder.failure is None
    assert documents[0]["type"] == "message_start"
    assert documents[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] == 12


async def test_the_fake_checks_what_was_signed(fake: Fake) -> None:
    path = converse_path(MODEL, stream=False)
    body = json.dumps({"messages": MESSAGES}).encode()
    good = signed(fake, path, body)
    assert (await post(fake, path, body, good))[0] == 200

    status, headers, answer = await post(fake, path, body + b" ", good)  # body changed
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("InvalidSignatureException:")
    error = error_to_openai(status, answer, headers["x-amzn-ErrorType"])["error"]
    assert error["type"] == "authentication_error"
    assert error["message"].startswith("The request signature we calculated does not match")

    # Signed over the decoded path, sent encoded: the paths differ, so the signatures do.
    decoded = signed(fake, path.replace("%3A", ":"), body)
    assert (await post(fake, path, body, decoded))[0] == 403

    unsigned = [("Content-Type", "application/json")]
    status, headers, _ = await post(fake, path, body, unsigned)
    assert status == 403
    assert headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")

    garbled = [*good[:-1], ("Authorization", "AWS4-HMAC-SHA256 nonsense")]
    status, headers, _ = await post(fake, path, body, garbled)
    assert headers["x-amzn-ErrorType"].startswith("IncompleteSignatureException")

    wrong_hash = signed(fake, path, body, **{"X-Amz-Meta": "1"})
    wrong_hash.insert(0, ("X-Amz-Content-SHA256", hashlib.sha256(b"other").hexdigest()))
    status, headers, _ = await post(fake, path, body, wrong_hash)
    assert headers["x-amzn-ErrorType"].startswith("XAmzContentSHA256Mismatch")

    other_service = sign_request(
        "POST", fake.url + path, unsigned, body, CREDENTIALS, "us-east-1", service="s3"
    )
    assert (await post(fake, path, body, other_service))[0] == 403


async def test_a_converse_body_without_messages_is_a_validation_error(fake: Fake) -> None:
    path = converse_path(MODEL, stream=False)
    body = b'{"messages": []}'
    status, headers, answer = await post(fake, path, body, signed(fake, path, body))
    assert status == 400
    assert headers["x-amzn-ErrorType"].startswith("ValidationException")
    assert json.loads(answer)["message"]


async def test_an_invoke_stream_chunk_is_base64_of_the_native_event(fake: Fake) -> None:
    path = f"/model/{MODEL.replace(':', '%3A')}/invoke-with-response-stream"
    body = ANTHROPIC_BODY.encode()
    _, _, data = await post(fake, path, body, signed(fake, path, body))
    (first, *_) = EventStreamDecoder().feed(data)
    assert first.event_type == "chunk"
    assert json.loads(base64.b64decode(first.payload["bytes"]))["type"] == "message_start"
