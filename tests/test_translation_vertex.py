"""Vertex AI's request shapes (host, paths, Claude's body), and the claim that its answers need
no translation of their own: Vertex-shaped Gemini and Claude answers and streams go through
the existing generateContent and Messages translations unchanged."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from heliograph.domain.errors import InvalidInput
from heliograph.translation.anthropic import MessagesStream, chat_to_messages, messages_to_chat
from heliograph.translation.errors import Untranslatable
from heliograph.translation.gemini import GeminiStream, gemini_to_chat
from heliograph.translation.vertex import (
    ANTHROPIC_VERSION,
    anthropic_error_to_openai,
    chat_to_vertex_anthropic,
    vertex_anthropic_path,
    vertex_gemini_path,
    vertex_host,
)

CHAT = {"model": "anything", "messages": [{"role": "user", "content": "Hi"}]}


def test_hosts() -> None:
    assert vertex_host("us-central1") == "https://us-central1-aiplatform.googleapis.com"
    assert vertex_host("europe-west4") == "https://europe-west4-aiplatform.googleapis.com"
    assert vertex_host("global") == "https://aiplatform.googleapis.com"
    assert vertex_host("us") == "https://aiplatform.us.rep.googleapis.com"


@pytest.mark.parametrize(
    "location",
    [
        *("", "US-central1", "us_central1", "-us", "us-", "us..x", "evil.com/", "a" * 64),
        *("us central1", "us-central1.attacker.example", "us-central1#", "us?x=1", "us%2Fx"),
        "us\ncentral1",
    ],
)
def test_bad_locations_are_refused_everywhere(location: str) -> None:
    with pytest.raises(Untranslatable, match="location") as refused:
        vertex_host(location)
    assert refused.value.status == 400
    assert isinstance(refused.value, InvalidInput)
    with pytest.raises(Untranslatable, match="location"):
        vertex_gemini_path("proj", location, "gemini-2.5-pro", False)
    with pytest.raises(Untranslatable, match="location"):
        vertex_anthropic_path("proj", location, "claude-sonnet-4-5", False)


def test_gemini_paths() -> None:
    base = "/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-pro"
    assert vertex_gemini_path("my-proj", "us-central1", "gemini-2.5-pro", False) == (
        f"{base}:generateContent"
    )
    assert vertex_gemini_path("my-proj", "us-central1", "gemini-2.5-pro", True) == (
        f"{base}:streamGenerateContent?alt=sse"
    )


def test_anthropic_paths_and_odd_but_valid_segments() -> None:
    path = vertex_anthropic_path("example.com:proj", "global", "claude-sonnet-4-5@20250929", True)
    assert path == (
        "/v1/projects/example.com:proj/locations/global/publishers/anthropic"
        "/models/claude-sonnet-4-5@20250929:streamRawPredict"
    )
    assert vertex_anthropic_path("123456789", "europe-west1", "claude-3", False).endswith(
        "/locations/europe-west1/publishers/anthropic/models/claude-3:rawPredict"
    )


@pytest.mark.parametrize(
    "model",
    [
        *("", "..", "../x", "a/b", "gemini?alt=json", "gemini#x", "gemini:countTokens", "a..b"),
        *("gemini%2F..", "gemini pro", "-gemini", "g\\x", "ü", "x" * 129),
    ],
)
def test_models_that_could_leave_their_segment_are_refused(model: str) -> None:
    for stream in (False, True):
        with pytest.raises(Untranslatable, match="model"):
            vertex_gemini_path("proj", "us-central1", model, stream)
        with pytest.raises(Untranslatable, match="model"):
            vertex_anthropic_path("proj", "us-central1", model, stream)


@pytest.mark.parametrize(
    "project", ["", "..", "a/b", "p?x", "p#x", "p%2F", "a..b", "p q", ".p", "p/../../x"]
)
def test_projects_that_could_leave_their_segment_are_refused(project: str) -> None:
    with pytest.raises(Untranslatable, match="project"):
        vertex_gemini_path(project, "us-central1", "gemini-2.5-pro", False)
    with pytest.raises(Untranslatable, match="project"):
        vertex_anthropic_path(project, "us-central1", "claude-sonnet-4-5", True)


def test_claude_body_is_messages_without_model_and_with_vertex_version() -> None:
    chat = {**CHAT, "stream": True, "max_tokens": 50, "temperature": 0.5}
    body = chat_to_vertex_anthropic(chat, "claude-sonnet-4-5@20250929")
    expected = chat_to_messages(chat, "claude-sonnet-4-5@20250929")
    del expected["model"]
    assert body == {**expected, "anthropic_version": "vertex-2023-10-16"}
    assert ANTHROPIC_VERSION == "vertex-2023-10-16"
    assert "model" not in body
    assert body["stream"] is True
    assert body["max_tokens"] == 50


def test_claude_body_refuses_what_messages_refuses() -> None:
    with pytest.raises(Untranslatable, match="logit_bias"):
        chat_to_vertex_anthropic({**CHAT, "logit_bias": {"1": 2}}, "claude-sonnet-4-5")
    with pytest.raises(InvalidInput, match="messages"):
        chat_to_vertex_anthropic({"messages": []}, "claude-sonnet-4-5")


# ---- answers: Vertex's shapes through the existing translations ----

# What Vertex adds to generateContent's answer: createTime, responseId, trafficType, token
# details per modality, avgLogprobs and scored safety ratings.
VERTEX_GEMINI = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "Quatre."}]},
            "finishReason": "STOP",
            "avgLogprobs": -0.0123,
            "safetyRatings": [
                {
                    "category": "HARM_CATEGORY_HATE_SPEECH",
                    "probability": "NEGLIGIBLE",
                    "probabilityScore": 0.02,
                    "severity": "HARM_SEVERITY_NEGLIGIBLE",
                    "severityScore": 0.01,
                }
            ],
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 12,
        "candidatesTokenCount": 3,
        "totalTokenCount": 25,
        "thoughtsTokenCount": 10,
        "trafficType": "ON_DEMAND",
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
        "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 3}],
    },
    "modelVersion": "gemini-2.5-pro",
    "createTime": "2025-06-01T10:00:00.123456Z",
    "responseId": "abc123",
}


def test_vertex_gemini_answer_translates_unchanged() -> None:
    chat = gemini_to_chat(VERTEX_GEMINI, "gemini-2.5-pro", "chatcmpl-v", 1)
    assert chat["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Quatre."},
            "finish_reason": "stop",
        }
    ]
    assert chat["usage"]["prompt_tokens"] == 12
    assert chat["usage"]["completion_tokens"] == 13
    assert chat["usage"]["total_tokens"] == 25


def sse_events(output: bytes) -> list[Any]:
    return [
        "[DONE]" if event == b"data: [DONE]" else orjson.loads(event[6:])
        for event in output.rstrip(b"\n").split(b"\n\n")
    ]


def test_vertex_gemini_stream_with_crlf_framing_translates_unchanged() -> None:
    first = {
        **VERTEX_GEMINI,
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Qua"}]}}],
    }
    del first["usageMetadata"]
    last = {
        **VERTEX_GEMINI,
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "tre."}]}, "finishReason": "STOP"}
        ],
    }
    data = b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in (first, last))
    stream = GeminiStream("gemini-2.5-pro", "chatcmpl-v", 1, include_usage=True)
    out = b"".join(stream.feed(data[i : i + 7]) for i in range(0, len(data), 7)) + stream.close()
    events = sse_events(out)
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
    assert text == "Quatre."
    assert [e["choices"][0]["finish_reason"] for e in events[:-1] if e["choices"]][-1] == "stop"
    assert events[-2]["usage"]["total_tokens"] == 25
    assert events[-1] == "[DONE]"


VERTEX_CLAUDE = {
    "id": "msg_vrtx_01AbCdEf",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "Bonjour."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 4},
}


def test_vertex_claude_answer_translates_unchanged() -> None:
    chat = messages_to_chat(VERTEX_CLAUDE, "claude-sonnet-4-5", "chatcmpl-c", 1)
    assert chat["choices"][0]["message"]["content"] == "Bonjour."
    assert chat["choices"][0]["finish_reason"] == "stop"
    assert chat["usage"]["prompt_tokens"] == 10
    assert chat["usage"]["completion_tokens"] == 4


def test_vertex_claude_stream_translates_unchanged() -> None:
    start = {**VERTEX_CLAUDE, "content": [], "stop_reason": None}
    raw = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Bon"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "jour."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 4},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    data = b"".join(f"event: {n}\ndata: ".encode() + orjson.dumps(e) + b"\n\n" for n, e in raw)
    stream = MessagesStream("claude-sonnet-4-5", "chatcmpl-c", 1, include_usage=True)
    out = b"".join(stream.feed(data[i : i + 5]) for i in range(0, len(data), 5)) + stream.close()
    events = sse_events(out)
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"]
    )
    assert text == "Bonjour."
    assert events[-2]["usage"]["completion_tokens"] == 4
    assert events[-1] == "[DONE]"


def test_claude_errors_in_googles_shape_and_in_anthropics() -> None:
    quota = {
        "error": {
            "code": 429,
            "message": "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests",
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    google = anthropic_error_to_openai(429, orjson.dumps(quota))["error"]
    assert google["type"] == "rate_limit_error"
    assert google["message"].startswith("Quota exceeded")
    assert google["code"] == "resource_exhausted"
    denied = {"error": {"code": 401, "message": "Bad token", "status": "UNAUTHENTICATED"}}
    assert anthropic_error_to_openai(401, orjson.dumps(denied))["error"]["type"] == (
        "authentication_error"
    )
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    claude = anthropic_error_to_openai(529, orjson.dumps(overloaded))["error"]
    assert claude == {
        "message": "Overloaded",
        "type": "server_error",
        "param": None,
        "code": "overloaded_error",
    }
    html = anthropic_error_to_openai(502, b"<html>Bad Gateway</html>")["error"]
    assert html["type"] == "server_error"
    assert "Bad Gateway" in html["message"]
