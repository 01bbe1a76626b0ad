"""The translation contract, with each side's official SDK: every recorded provider answer is
one the provider's own SDK parses (Anthropic's `Message` and stream events, google-genai's
`GenerateContentResponse`), and what the translation makes of it is read by the OpenAI SDK as a
client would read it (a completion, a stream of chunks, or the exception its status means)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import anthropic.types
import openai
import orjson
import pytest
from google.genai import types as genai
from pydantic import TypeAdapter

from heliograph.providers.sse import iter_events
from heliograph.translation import anthropic as to_anthropic
from heliograph.translation import gemini as to_gemini

FIXTURES = Path(__file__).parent / "translation_fixtures"
ANTHROPIC_EVENT = TypeAdapter(anthropic.types.RawMessageStreamEvent)
ERROR_CLASSES = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    429: openai.RateLimitError,
}


def names(provider: str, prefix: str, suffix: str) -> list[str]:
    return sorted(p.name for p in (FIXTURES / provider).glob(f"{prefix}*{suffix}"))


class CannedServer(ThreadingHTTPServer):
    canned: tuple[int, bytes, str] = (200, b"{}", "application/json")


class Canned(BaseHTTPRequestHandler):
    """Answers every POST with the server's canned status, body and content type."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body, content_type = cast(CannedServer, self.server).canned
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def provider() -> Iterator[CannedServer]:
    """A loopback HTTP server the OpenAI SDK calls; each test sets what it answers."""
    server = CannedServer(("127.0.0.1", 0), Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)


def sdk_answering(
    server: CannedServer, status: int, body: bytes, content_type: str
) -> openai.OpenAI:
    """The OpenAI SDK, its requests answered with `body`: the SDK parses exactly these bytes."""
    server.canned = (status, body, content_type)
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return openai.OpenAI(api_key="k", base_url=base, max_retries=0, timeout=10)


def read_completion(server: CannedServer, completion: dict[str, Any]) -> Any:
    sdk = sdk_answering(server, 200, orjson.dumps(completion), "application/json")
    return sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


def read_stream(server: CannedServer, sse: bytes) -> list[Any]:
    sdk = sdk_answering(server, 200, sse, "text/event-stream")
    stream = sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "x"}], stream=True
    )
    return list(stream)


def assembled(chunks: list[Any]) -> tuple[str, dict[int, str], str | None]:
    """A streamed answer put back together as a client does: text, arguments per tool call,
    the finish reason."""
    text, arguments, finish = "", dict[int, str](), None
    for chunk in chunks:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or ():
                arguments[call.index] = arguments.get(call.index, "") + (
                    call.function.arguments or "" if call.function else ""
                )
            finish = choice.finish_reason or finish
    return text, arguments, finish


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# ---- Anthropic ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", names("anthropic", "response_", ".json"))
def test_anthropic_answers_reach_the_openai_sdk(provider: CannedServer, name: str) -> None:
    recorded = orjson.loads((FIXTURES / "anthropic" / name).read_bytes())
    message = anthropic.types.Message.model_validate(recorded)  # a real Anthropic answer
    completion = read_completion(
        provider, to_anthropic.messages_to_chat(recorded, "claude", "c1", 1)
    )
    choice = completion.choices[0]
    texts = [block.text for block in message.content if block.type == "text"]
    if texts and choice.message.content is not None:
        assert choice.message.content == "".join(texts)
    uses = [block for block in message.content if block.type == "tool_use"]
    if uses and choice.finish_reason == "tool_calls":
        assert [call.function.name for call in choice.message.tool_calls or ()] == [
            use.name for use in uses
        ]
        assert [
            orjson.loads(call.function.arguments) for call in choice.message.tool_calls or ()
        ] == [use.input for use in uses]
    assert completion.usage is not None
    assert completion.usage.completion_tokens == message.usage.output_tokens


@pytest.mark.parametrize("name", names("anthropic", "stream_", ".sse"))
@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_anthropic_streams_reach_the_openai_sdk(
    provider: CannedServer, name: str, size: int
) -> None:
    recorded = (FIXTURES / "anthropic" / name).read_bytes()
    events = [orjson.loads(data) for _, data in iter_events(recorded)]
    for event in events:
        if event["type"] not in ("error", "ping"):  # the SDK reads those two apart
            ANTHROPIC_EVENT.validate_python(event)  # each one a real Anthropic stream event
    stream = to_anthropic.MessagesStream("claude", "c1", 1, include_usage=True)
    translated = b"".join(stream.feed(piece) for piece in pieces(recorded, size)) + stream.close()
    if any(event["type"] == "error" for event in events):
        with pytest.raises(openai.APIError):  # the SDK raises the error event it reads
            read_stream(provider, translated)
        return
    chunks = read_stream(provider, translated)
    text, arguments, finish = assembled(chunks)
    sent = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert text == "".join(d.get("text", "") for d in sent if d["type"] == "text_delta") or (
        name == "stream_json_tool.sse"  # JSON mode's tool input arrives as the content
    )
    partial = "".join(d.get("partial_json", "") for d in sent if d["type"] == "input_json_delta")
    if name == "stream_tool_use.sse":
        assert "".join(arguments.values()) == partial
        assert finish == "tool_calls"
    assert chunks[-1].usage is not None, "include_usage: the last chunk carries usage"


@pytest.mark.parametrize("name", names("anthropic", "error_", ".json"))
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 529])
def test_anthropic_errors_raise_the_openai_sdks_exception(
    provider: CannedServer, name: str, status: int
) -> None:
    recorded = (FIXTURES / "anthropic" / name).read_bytes()
    translated = to_anthropic.error_to_openai(status, recorded)
    check_error(provider, status, translated, orjson.loads(recorded)["error"]["message"])


# ---- Gemini ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", names("gemini", "response_", ".json"))
def test_gemini_answers_reach_the_openai_sdk(provider: CannedServer, name: str) -> None:
    recorded = orjson.loads((FIXTURES / "gemini" / name).read_bytes())
    answer = genai.GenerateContentResponse.model_validate(recorded)  # a real Gemini answer
    completion = read_completion(provider, to_gemini.gemini_to_chat(recorded, "gemini", "c1", 1))
    for candidate, choice in zip(answer.candidates or (), completion.choices, strict=False):
        parts = (candidate.content.parts or []) if candidate.content else []
        texts = [part.text for part in parts if part.text and not part.thought]
        calls = [part.function_call for part in parts if part.function_call]
        if texts:
            assert choice.message.content == "".join(texts)
        assert [call.function.name for call in choice.message.tool_calls or ()] == [
            call.name for call in calls
        ]
    if answer.usage_metadata is not None:
        assert completion.usage is not None
        assert completion.usage.prompt_tokens == answer.usage_metadata.prompt_token_count


@pytest.mark.parametrize("name", names("gemini", "stream_", ".sse"))
@pytest.mark.parametrize("size", [1, 7, 1 << 20])
def test_gemini_streams_reach_the_openai_sdk(provider: CannedServer, name: str, size: int) -> None:
    recorded = (FIXTURES / "gemini" / name).read_bytes()
    events = [orjson.loads(data) for _, data in iter_events(recorded)]
    failed = any("error" in event for event in events)
    for event in events:
        if "error" not in event:
            genai.GenerateContentResponse.model_validate(event)  # each a real Gemini event
    stream = to_gemini.GeminiStream("gemini", "c1", 1, include_usage=True)
    translated = b"".join(stream.feed(piece) for piece in pieces(recorded, size)) + stream.close()
    if failed:
        with pytest.raises(openai.APIError):
            read_stream(provider, translated)
        return
    text, _, _ = assembled(read_stream(provider, translated))
    parts = itertools.chain.from_iterable(
        candidate.get("content", {}).get("parts", [])
        for event in events
        for candidate in event.get("candidates", [])
    )
    assert text == "".join(part.get("text", "") for part in parts if not part.get("thought"))


@pytest.mark.parametrize("name", names("gemini", "error_", ".json"))
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503])
def test_gemini_errors_raise_the_openai_sdks_exception(
    provider: CannedServer, name: str, status: int
) -> None:
    recorded = orjson.loads((FIXTURES / "gemini" / name).read_bytes())
    first = recorded[0] if isinstance(recorded, list) else recorded
    translated = to_gemini.error_to_openai(status, (FIXTURES / "gemini" / name).read_bytes())
    check_error(provider, status, translated, first["error"]["message"])


def check_error(
    server: CannedServer, status: int, translated: dict[str, Any], message: str
) -> None:
    sdk = sdk_answering(server, status, orjson.dumps(translated), "application/json")
    expected = ERROR_CLASSES.get(status, openai.InternalServerError)
    with pytest.raises(expected) as raised:
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert raised.value.status_code == status
    assert message in raised.value.message
