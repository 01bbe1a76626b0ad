"""Each provider's parser over the body shapes it really produces, and the stream filter that
hides the usage chunk the gateway asked for."""

from __future__ import annotations

import json

from heliograph.domain.usage import Usage
from heliograph.gateway.streams import UsageChunkFilter
from heliograph.providers import anthropic, gemini, openai


def sse(*events: object, crlf: bool = False) -> bytes:
    end = b"\r\n\r\n" if crlf else b"\n\n"
    return (
        b"".join(b"data: " + json.dumps(e).encode() + end for e in events) + b"data: [DONE]" + end
    )


def test_openai_chat_json() -> None:
    body = json.dumps({"model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": 3}})
    parsed = openai.parse(body.encode(), is_stream=False)
    assert parsed.model == "gpt-4o"
    assert parsed.usage == Usage(input_tokens=10, output_tokens=3)


def test_openai_stream_without_usage_is_unknown_not_zero() -> None:
    parsed = openai.parse(sse({"model": "gpt-4o", "choices": [{"delta": {"content": "x"}}]}), True)
    assert parsed.model == "gpt-4o"
    assert parsed.usage.input_tokens is None
    assert not parsed.usage.is_known


def test_openai_responses_api_stream() -> None:
    body = sse(
        {"type": "response.created", "response": {"model": "o4-mini", "usage": None}},
        {"type": "response.output_text.delta", "delta": "hi"},
        {
            "type": "response.completed",
            "response": {
                "model": "o4-mini",
                "usage": {
                    "input_tokens": 40,
                    "output_tokens": 30,
                    "input_tokens_details": {"cached_tokens": 8},
                    "output_tokens_details": {"reasoning_tokens": 20},
                },
            },
        },
    )
    parsed = openai.parse(body, is_stream=True)
    assert parsed.model == "o4-mini"
    assert parsed.usage == Usage(
        input_tokens=32, output_tokens=10, cache_read_tokens=8, reasoning_tokens=20
    )


def test_openai_non_json_body_gives_nothing() -> None:
    assert openai.parse(b"<html>502 Bad Gateway</html>", False).usage == Usage()


def test_anthropic_stream_merges_start_and_delta() -> None:
    body = (
        b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-x",'
        b'"usage":{"input_tokens":10,"output_tokens":1,"cache_read_input_tokens":4,'
        b'"cache_creation_input_tokens":6}}}\n\n'
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":25}}\n\n'
    )
    parsed = anthropic.parse(body, is_stream=True)
    assert parsed.model == "claude-x"
    assert parsed.usage == Usage(
        input_tokens=10, output_tokens=25, cache_read_tokens=4, cache_write_tokens=6
    )


def test_gemini_stream_crlf_and_json_array_forms() -> None:
    chunks = [
        {"candidates": [], "modelVersion": "gemini-2.5-pro"},
        {
            "modelVersion": "gemini-2.5-pro",
            "usageMetadata": {
                "promptTokenCount": 100,
                "cachedContentTokenCount": 40,
                "candidatesTokenCount": 20,
                "thoughtsTokenCount": 7,
            },
        },
    ]
    expected = Usage(input_tokens=60, output_tokens=20, cache_read_tokens=40, reasoning_tokens=7)
    assert gemini.parse(sse(*chunks, crlf=True), is_stream=True).usage == expected
    assert gemini.parse(json.dumps(chunks).encode(), is_stream=True).usage == expected


def test_usage_filter_drops_only_the_usage_chunk_even_when_split() -> None:
    content = {"choices": [{"delta": {"content": "hé"}}], "usage": None}
    usage = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
    stream = (
        b"data: " + json.dumps(content, ensure_ascii=False).encode() + b"\n\n"
        b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert usage["choices"] == []
    for size in (1, 2, 5, 17, len(stream)):
        chunk_filter = UsageChunkFilter()
        out = b"".join(chunk_filter.feed(stream[i : i + size]) for i in range(0, len(stream), size))
        out += chunk_filter.flush()
        assert (
            out
            == b"data: "
            + json.dumps(content, ensure_ascii=False).encode()
            + b"\n\ndata: [DONE]\n\n"
        )
