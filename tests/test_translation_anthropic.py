"""OpenAI chat ⇄ Anthropic Messages translation, against recorded shapes of both APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from heliograph.domain.errors import InvalidInput
from heliograph.translation.anthropic import (
    JSON_TOOL,
    MessagesStream,
    chat_to_messages,
    error_to_openai,
    messages_to_chat,
)
from heliograph.translation.errors import Untranslatable

FIXTURES = Path(__file__).parent / "translation_fixtures" / "anthropic"
MODEL = "claude-sonnet-4-5"


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **fields}


def translate(name: str) -> dict[str, Any]:
    return messages_to_chat(fixture(name), "claude-x", "chatcmpl-1", 1700000000)


def events(output: bytes) -> list[Any]:
    """The SSE `data:` payloads of OpenAI's stream, `[DONE]` kept as the string."""
    assert output.endswith(b"\n\n")
    found = []
    for event in output.split(b"\n\n")[:-1]:
        assert event.startswith(b"data: "), event
        data = event[6:]
        found.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return found


def stream(name: str, include_usage: bool = True, step: int | None = None) -> bytes:
    data = (FIXTURES / name).read_bytes()
    translator = MessagesStream("claude-x", "chatcmpl-1", 1700000000, include_usage)
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    return b"".join(translator.feed(piece) for piece in pieces) + translator.close()


def deltas(output: bytes) -> list[Any]:
    return [e["choices"][0]["delta"] for e in events(output) if e != "[DONE]" and e["choices"]]


# ---- requests ----


def test_multi_turn_hoists_system_and_merges_consecutive_turns() -> None:
    assert chat_to_messages(fixture("chat_multi_turn.json"), MODEL) == {
        "model": MODEL,
        "max_tokens": 300,
        "system": [
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Answer in French."},
        ],
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Bonjour"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "How are you?"},
                    {"type": "text", "text": "And the weather?"},
                ],
            },
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
        "stream": True,
    }


def test_one_system_message_becomes_a_string_and_developer_parts_text() -> None:
    request = chat_to_messages(
        chat(messages=[{"role": "developer", "content": [{"type": "text", "text": "Be kind."}]}]),
        MODEL,
    )
    assert request["system"] == "Be kind."
    assert request["messages"] == []
    assert "system" not in chat_to_messages(chat(), MODEL)


def test_tools_tool_calls_and_tool_results() -> None:
    request = chat_to_messages(fixture("chat_tools.json"), MODEL)
    assert request["tools"] == [
        {
            "name": "get_weather",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
            "description": "Current weather for a city.",
        }
    ]
    assert request["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert request["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_02",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "content": [{"type": "text", "text": "24°C"}],
                },
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


def test_assistant_text_with_tool_calls_and_no_arguments() -> None:
    call = {"id": "t1", "type": "function", "function": {"name": "now", "arguments": ""}}
    message = {"role": "assistant", "content": "Let me look.", "tool_calls": [call]}
    request = chat_to_messages(chat(messages=[message]), MODEL)
    assert request["messages"][0]["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "t1", "name": "now", "input": {}},
    ]


def test_earlier_reasoning_content_is_dropped() -> None:
    message = {"role": "assistant", "content": "Hi", "reasoning_content": "thinking..."}
    request = chat_to_messages(chat(messages=[message]), MODEL)
    assert request["messages"] == [{"role": "assistant", "content": "Hi"}]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", False, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    request = chat_to_messages(
        chat(tools=tools, tool_choice=choice, parallel_tool_calls=parallel), MODEL
    )
    assert request["tool_choice"] == expected
    assert request["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]


def test_no_tool_choice_without_tools_or_parallel_flag() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert "tool_choice" not in chat_to_messages(chat(tools=tools), MODEL)
    with pytest.raises(InvalidInput, match="`tool_choice` needs `tools`"):
        chat_to_messages(chat(tool_choice="required"), MODEL)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("{not json", "arguments must be a JSON object"),
        ("[1, 2]", "arguments must be a JSON object"),
    ],
)
def test_invalid_tool_arguments_are_untranslatable(arguments: str, message: str) -> None:
    call = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    body = chat(messages=[{"role": "assistant", "content": None, "tool_calls": [call]}])
    with pytest.raises(
        Untranslatable, match=r"messages\[0\]\.tool_calls\[0\]\.function\." + message
    ):
        chat_to_messages(body, MODEL)


def test_images_become_base64_and_url_sources() -> None:
    content = chat_to_messages(fixture("chat_images.json"), MODEL)["messages"][0]["content"]
    data = fixture("chat_images.json")["messages"][0]["content"][1]["image_url"]["url"]
    assert content == [
        {"type": "text", "text": "What is in these images?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": data.split(",")[1]},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_pdf_file_part_becomes_a_document() -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
    }
    request = chat_to_messages(chat(messages=[{"role": "user", "content": [part]}]), MODEL)
    assert request["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
        }
    ]


@pytest.mark.parametrize(
    ("part", "message"),
    [
        (
            {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}},
            "not image/bmp",
        ),
        ({"type": "image_url", "image_url": {"url": "data:image/png,raw"}}, "base64 data URLs"),
        ({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}, "base64 data URLs"),
        ({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}, "'input_audio'"),
        ({"type": "file", "file": {"file_id": "file-1"}}, "inline as `file_data`"),
        ({"type": "file", "file": {"file_data": "data:text/csv;base64,YQ=="}}, "not text/csv"),
    ],
)
def test_untranslatable_content_parts(part: dict[str, Any], message: str) -> None:
    body = chat(messages=[{"role": "user", "content": [part]}])
    with pytest.raises(Untranslatable, match=message) as raised:
        chat_to_messages(body, MODEL)
    assert r"messages[0].content[0]" in str(raised.value)


def test_max_tokens_default_and_precedence() -> None:
    assert chat_to_messages(chat(), MODEL)["max_tokens"] == 4096
    assert chat_to_messages(chat(max_tokens=50), MODEL)["max_tokens"] == 50
    both = chat(max_tokens=50, max_completion_tokens=70)
    assert chat_to_messages(both, MODEL)["max_tokens"] == 70
    with pytest.raises(InvalidInput, match="`max_tokens` must be a positive integer"):
        chat_to_messages(chat(max_tokens=0), MODEL)
    with pytest.raises(InvalidInput, match="`max_completion_tokens` must be"):
        chat_to_messages(chat(max_completion_tokens="many"), MODEL)


def test_stop_list_and_no_stream() -> None:
    request = chat_to_messages(chat(stop=["a", "b"], stream=False), MODEL)
    assert request["stop_sequences"] == ["a", "b"]
    assert "stream" not in request


def test_json_schema_becomes_a_forced_tool() -> None:
    request = chat_to_messages(fixture("chat_json_schema.json"), MODEL)
    schema = fixture("chat_json_schema.json")["response_format"]["json_schema"]["schema"]
    assert request["tools"] == [
        {
            "name": JSON_TOOL,
            "description": "Respond with JSON matching the schema city.",
            "input_schema": schema,
        }
    ]
    assert request["tool_choice"] == {"type": "tool", "name": JSON_TOOL}


def test_json_object_and_text_formats() -> None:
    request = chat_to_messages(chat(response_format={"type": "json_object"}), MODEL)
    assert request["tools"][0]["input_schema"] == {"type": "object"}
    assert request["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    assert "tools" not in chat_to_messages(chat(response_format={"type": "text"}), MODEL)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {
                "response_format": {"type": "json_object"},
                "tools": [{"type": "function", "function": {"name": "f"}}],
            },
            "with `tools`",
        ),
        ({"response_format": {"type": "json_object"}, "reasoning_effort": "low"}, "thinking"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "n", "schema": {"type": "array"}},
                }
            },
            "must describe an object",
        ),
        ({"response_format": {"type": "xml"}}, "'xml'"),
        ({"tools": [{"type": "function", "function": {"name": JSON_TOOL}}]}, "reserved"),
        ({"tools": [{"type": "custom", "custom": {"name": "g"}}]}, r"tools\[0\]: only function"),
    ],
)
def test_untranslatable_formats_and_tools(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(Untranslatable, match=message):
        chat_to_messages(chat(**fields), MODEL)


def test_reasoning_effort_becomes_thinking() -> None:
    request = chat_to_messages(chat(reasoning_effort="medium"), MODEL)
    assert request["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    assert request["max_tokens"] == 8192 + 4096
    capped = chat_to_messages(chat(reasoning_effort="high", max_completion_tokens=5000), MODEL)
    assert capped["thinking"] == {"type": "enabled", "budget_tokens": 4999}
    assert capped["max_tokens"] == 5000
    assert "thinking" not in chat_to_messages(chat(reasoning_effort="none"), MODEL)


def test_reasoning_refusals() -> None:
    with pytest.raises(Untranslatable, match="more than 1024 max tokens"):
        chat_to_messages(chat(reasoning_effort="low", max_tokens=1000), MODEL)
    with pytest.raises(Untranslatable, match="`reasoning_effort` 'extreme'"):
        chat_to_messages(chat(reasoning_effort="extreme"), MODEL)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("presence_penalty", 0.5),
        ("frequency_penalty", 1),
        ("logit_bias", {"50256": -100}),
        ("seed", 7),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("modalities", ["text", "audio"]),
        ("store", True),
        ("metadata", {"k": "v"}),
        ("functions", [{"name": "f"}]),
        ("service_tier", "flex"),
        ("made_up_field", 1),
    ],
)
def test_fields_anthropic_lacks_are_untranslatable(field: str, value: Any) -> None:
    with pytest.raises(Untranslatable, match=f"`{field}` has no equivalent") as raised:
        chat_to_messages(chat(**{field: value}), MODEL)
    assert raised.value.status == 400
    assert raised.value.code == "untranslatable"


def test_no_op_fields_are_accepted() -> None:
    fields = {
        "n": 1,
        "logprobs": False,
        "presence_penalty": 0,
        "frequency_penalty": 0.0,
        "store": False,
        "modalities": ["text"],
        "seed": None,
        "stream_options": {"include_usage": True},
    }
    assert chat_to_messages(chat(**fields), MODEL) == chat_to_messages(chat(), MODEL)


@pytest.mark.parametrize(
    ("message", "error", "text"),
    [
        ({"role": "user", "content": "Hi", "name": "bob"}, Untranslatable, r"messages\[0\]\.name"),
        ({"role": "function", "name": "f", "content": "1"}, Untranslatable, "role 'function'"),
        ({"role": "tool", "content": "1"}, InvalidInput, "tool_call_id must be a string"),
        ({"role": "user", "content": 3}, InvalidInput, "string or a list of content parts"),
        ("hello", InvalidInput, r"messages\[0\] must be an object"),
    ],
)
def test_bad_messages(message: Any, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        chat_to_messages(chat(messages=[message]), MODEL)


def test_empty_text_is_not_sent_as_an_empty_block() -> None:
    body = chat(messages=[{"role": "user", "content": ""}, {"role": "user", "content": "Hi"}])
    request = chat_to_messages(body, MODEL)
    assert request["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]


def test_temperature_above_one_and_empty_messages() -> None:
    with pytest.raises(InvalidInput, match="`temperature` must be a number"):
        chat_to_messages(chat(temperature="hot"), MODEL)
    with pytest.raises(Untranslatable, match="`temperature` above 1"):
        chat_to_messages(chat(temperature=1.5), MODEL)
    with pytest.raises(InvalidInput, match="`messages` must be a non-empty list"):
        chat_to_messages(chat(messages=[]), MODEL)


# ---- responses ----


def test_text_response() -> None:
    assert translate("response_text.json") == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "claude-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello, wörld! 👋", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 17,
            "completion_tokens": 7,
            "total_tokens": 24,
            "prompt_tokens_details": {"cached_tokens": 3, "cache_creation_tokens": 2},
        },
    }


def test_tool_use_response() -> None:
    choice = translate("response_tool_use.json")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_01",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {
            "id": "toolu_02",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
        },
    ]


def test_thinking_response() -> None:
    message = translate("response_thinking.json")["choices"][0]["message"]
    assert message["reasoning_content"] == "The user greets me."
    assert message["content"] == "Hi!"


def test_json_tool_response_becomes_content() -> None:
    choice = translate("response_json_tool.json")["choices"][0]
    assert orjson.loads(choice["message"]["content"]) == {"name": "Paris", "population": 2100000}
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("name", "finish"),
    [("response_refusal.json", "content_filter"), ("response_max_tokens.json", "length")],
)
def test_finish_reasons(name: str, finish: str) -> None:
    assert translate(name)["choices"][0]["finish_reason"] == finish


def test_tool_only_response_has_null_content() -> None:
    response = fixture("response_tool_use.json")
    response["content"] = response["content"][1:]
    message = messages_to_chat(response, "m", "c", 1)["choices"][0]["message"]
    assert message["content"] is None
    assert len(message["tool_calls"]) == 2


# ---- streams ----


def test_text_stream() -> None:
    found = events(stream("stream_text.sse"))
    head = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "claude-x",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice], "usage": None}

    usage = {
        "prompt_tokens": 17,
        "completion_tokens": 7,
        "total_tokens": 24,
        "prompt_tokens_details": {"cached_tokens": 3, "cache_creation_tokens": 2},
    }
    assert found == [
        chunk({"role": "assistant", "content": "", "refusal": None}),
        chunk({"content": "Hello, wörld! "}),
        chunk({"content": "👋"}),
        chunk({}, "stop"),
        {**head, "choices": [], "usage": usage},
        "[DONE]",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "stream_text.sse",
        "stream_tool_use.sse",
        "stream_thinking.sse",
        "stream_json_tool.sse",
        "stream_error.sse",
    ],
)
def test_byte_by_byte_and_crlf_give_the_same_output(name: str) -> None:
    whole = stream(name)
    assert stream(name, step=1) == whole
    assert stream(name, step=7) == whole
    crlf = (FIXTURES / name).read_bytes().replace(b"\n", b"\r\n")
    translator = MessagesStream("claude-x", "chatcmpl-1", 1700000000, True)
    split = [crlf[i : i + 1] for i in range(len(crlf))]
    assert b"".join(translator.feed(piece) for piece in split) + translator.close() == whole


def test_tool_use_stream() -> None:
    found = deltas(stream("stream_tool_use.sse", include_usage=False))
    assert found[1:] == [
        {"content": "Checking."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_01",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "toolu_02",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": '{"city": "Rome"}'}}]},
        {},
    ]
    assert events(stream("stream_tool_use.sse"))[-3]["choices"][0]["finish_reason"] == "tool_calls"


def test_without_include_usage_there_is_no_usage_chunk() -> None:
    found = events(stream("stream_text.sse", include_usage=False))
    assert found[-1] == "[DONE]"
    assert all("usage" not in e for e in found[:-1])
    assert found[-2]["choices"][0]["finish_reason"] == "stop"


def test_thinking_stream() -> None:
    found = deltas(stream("stream_thinking.sse"))
    assert found[1:] == [{"reasoning_content": "The user greets me."}, {"content": "Hi!"}, {}]


def test_json_tool_stream_becomes_content() -> None:
    found = events(stream("stream_json_tool.sse"))
    assert deltas(stream("stream_json_tool.sse"))[1:] == [
        {"content": '{"name": "Pa'},
        {"content": 'ris"}'},
        {},
    ]
    assert found[-3]["choices"][0]["finish_reason"] == "stop"


def test_error_mid_stream_ends_it() -> None:
    found = events(stream("stream_error.sse"))
    assert [e["choices"][0]["delta"] for e in found[:2]] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hel"},
    ]
    assert found[2:] == [
        {
            "error": {
                "message": "Overloaded",
                "type": "server_error",
                "param": None,
                "code": "overloaded_error",
            }
        },
        "[DONE]",
    ]


def test_close_is_final_and_pings_say_nothing() -> None:
    translator = MessagesStream("m", "c", 1, True)
    assert translator.feed(b'event: ping\ndata: {"type": "ping"}\n\nevent: message_st') == b""
    assert translator.close() == b"data: [DONE]\n\n"
    assert translator.close() == b""


def test_a_last_event_without_its_blank_line_is_still_translated() -> None:
    translator = MessagesStream("m", "c", 1, False)
    delta = {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {}}
    assert translator.feed(b"data: " + orjson.dumps(delta)) == b""
    found = events(translator.close())
    assert found[0]["choices"][0]["finish_reason"] == "length"
    assert found[1] == "[DONE]"


# ---- errors ----


@pytest.mark.parametrize(
    ("status", "name", "expected"),
    [
        (
            529,
            "error_overloaded.json",
            {"message": "Overloaded", "type": "server_error", "code": "overloaded_error"},
        ),
        (
            400,
            "error_invalid_request.json",
            {
                "message": "max_tokens: Field required",
                "type": "invalid_request_error",
                "code": "invalid_request_error",
            },
        ),
        (
            429,
            "error_rate_limit.json",
            {
                "message": "Number of request tokens has exceeded your per-minute rate limit",
                "type": "rate_limit_error",
                "code": "rate_limit_exceeded",
            },
        ),
        (
            401,
            "error_authentication.json",
            {
                "message": "invalid x-api-key",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            },
        ),
    ],
)
def test_anthropic_errors(status: int, name: str, expected: dict[str, Any]) -> None:
    body = (FIXTURES / name).read_bytes()
    assert error_to_openai(status, body) == {"error": {**expected, "param": None}}


def test_unparseable_errors_fall_back_on_the_status() -> None:
    assert error_to_openai(429, b"<html>slow down</html>") == {
        "error": {
            "message": "Anthropic answered 429: <html>slow down</html>",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert error_to_openai(502, b"") == {
        "error": {
            "message": "Anthropic answered 502",
            "type": "server_error",
            "param": None,
            "code": "api_error",
        }
    }
