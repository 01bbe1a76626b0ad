"""OpenAI chat ⇄ AWS Bedrock Converse translation, against recorded shapes of both APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from heliograph.domain.errors import InvalidInput
from heliograph.translation.bedrock import (
    DEFAULT_MAX_TOKENS,
    ConverseStream,
    chat_to_converse,
    converse_path,
    converse_to_chat,
    error_to_openai,
)
from heliograph.translation.errors import Untranslatable

FIXTURES = Path(__file__).parent / "translation_fixtures" / "bedrock"
CLAUDE = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object"}},
}


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **fields}


def translate(name: str) -> dict[str, Any]:
    return converse_to_chat(fixture(name), "bedrock-x", "chatcmpl-1", 1700000000)


def events(output: bytes) -> list[Any]:
    """The SSE `data:` payloads of OpenAI's stream, `[DONE]` kept as the string."""
    assert output.endswith(b"\n\n")
    found = []
    for event in output.split(b"\n\n")[:-1]:
        assert event.startswith(b"data: "), event
        data = event[6:]
        found.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return found


def stream(name: str, include_usage: bool = True) -> list[Any]:
    translator = ConverseStream("bedrock-x", "chatcmpl-1", 1700000000, include_usage)
    output = b"".join(translator.event(kind, payload) for kind, payload in fixture(name))
    return events(output + translator.close())


def deltas(found: list[Any]) -> list[Any]:
    return [e["choices"][0]["delta"] for e in found if e != "[DONE]" and e.get("choices")]


def finishes(found: list[Any]) -> list[Any]:
    return [
        e["choices"][0]["finish_reason"]
        for e in found
        if e != "[DONE]" and e.get("choices") and e["choices"][0]["finish_reason"]
    ]


# ---- the path ----


@pytest.mark.parametrize(
    ("model_id", "stream_", "path"),
    [
        (
            "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
            False,
            "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse",
        ),
        ("amazon.nova-pro-v1:0", True, "/model/amazon.nova-pro-v1%3A0/converse-stream"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-v1:0",
            False,
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile"
            "%2Fus.meta.llama3-2-1b-v1%3A0/converse",
        ),
        (
            "arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/anthropic.claude-v2",
            True,
            "/model/arn%3Aaws-us-gov%3Abedrock%3Aus-gov-west-1%3A%3Afoundation-model"
            "%2Fanthropic.claude-v2/converse-stream",
        ),
    ],
)
def test_path_quotes_the_model_id_as_one_segment(model_id: str, stream_: bool, path: str) -> None:
    assert converse_path(model_id, stream_) == path


@pytest.mark.parametrize(
    "model_id",
    [
        "",
        "..",
        "../../guardrail/x",
        "anthropic..claude",
        "a/b",
        "model?x=1",
        "model#frag",
        "a%2Fb",
        "claude v2",
        "-leading-dash",
        "arn:aws:s3:::bucket/key",
        "arn:aws:bedrock:us-east-1:1:foundation-model/../x",
        "x" * 300,
    ],
)
def test_path_refuses_anything_but_a_model_id(model_id: str) -> None:
    with pytest.raises(Untranslatable, match="not a Bedrock model id or ARN"):
        converse_path(model_id, False)


# ---- requests ----


def test_multi_turn_hoists_system_merges_turns_and_fills_inference_config() -> None:
    assert chat_to_converse(fixture("chat_multi_turn.json")) == {
        "system": [{"text": "You are terse."}, {"text": "Answer in French."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hello"}]},
            {"role": "assistant", "content": [{"text": "Bonjour"}]},
            {"role": "user", "content": [{"text": "How are you?"}, {"text": "And the weather?"}]},
        ],
        "inferenceConfig": {
            "maxTokens": 300,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
    }


def test_tool_calls_and_results_become_tool_use_and_tool_result_blocks() -> None:
    body = chat_to_converse(fixture("chat_tools.json"))
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "toolUse": {
                        "toolUseId": "tooluse_01",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    }
                },
                {
                    "toolUse": {
                        "toolUseId": "tooluse_02",
                        "name": "get_weather",
                        "input": {"city": "Rome"},
                    }
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "tooluse_01", "content": [{"text": "18°C"}]}},
                {"toolResult": {"toolUseId": "tooluse_02", "content": [{"text": "24°C"}]}},
                {"text": "Which is warmer?"},
            ],
        },
    ]
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "inputSchema": {"json": schema},
                    "description": "Current weather for a city.",
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    assert "inferenceConfig" not in body


def test_images_and_documents_travel_as_base64_bytes() -> None:
    body = chat_to_converse(fixture("chat_media.json"))
    assert body["messages"][0]["content"] == [
        {"text": "What is in these?"},
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
        {"document": {"format": "pdf", "name": "document-3", "source": {"bytes": "JVBERi0xLjQ="}}},
    ]
    assert body["inferenceConfig"] == {"maxTokens": 512}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"tool": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = chat_to_converse(chat(tools=[TOOL], tool_choice=choice))
    assert body["toolConfig"]["toolChoice"] == expected
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}


def test_tools_without_choice_send_no_tool_choice_and_a_default_schema() -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    config = chat_to_converse(chat(tools=[bare]))["toolConfig"]
    assert config == {
        "tools": [
            {
                "toolSpec": {
                    "name": "now",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ]
    }


def test_tool_choice_none_sends_no_tools() -> None:
    assert "toolConfig" not in chat_to_converse(chat(tools=[TOOL], tool_choice="none"))


def test_tool_choice_none_with_tool_history_is_refused() -> None:
    history = fixture("chat_tools.json")
    history["tool_choice"] = "none"
    with pytest.raises(Untranslatable, match="tool_choice: none"):
        chat_to_converse(history)


def test_max_completion_tokens_wins_and_nulls_count_as_absent() -> None:
    body = chat_to_converse(
        chat(max_tokens=10, max_completion_tokens=20, temperature=None, seed=None, n=1)
    )
    assert body["inferenceConfig"] == {"maxTokens": 20}


def test_empty_messages_are_skipped_and_blank_text_dropped() -> None:
    body = chat_to_converse(
        {
            "messages": [
                {"role": "system", "content": ""},
                {"role": "user", "content": [{"type": "text", "text": ""}]},
                {"role": "user", "content": "Hi"},
                {"role": "tool", "tool_call_id": "t1", "content": ""},
            ]
        }
    )
    assert "system" not in body
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"text": "Hi"}, {"toolResult": {"toolUseId": "t1", "content": []}}],
        }
    ]


def test_assistant_refusal_becomes_text_and_earlier_reasoning_is_dropped() -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "No.", "refusal": "I can't.", "reasoning_content": "x"},
    ]
    body = chat_to_converse({"messages": messages})
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"text": "No."}, {"text": "I can't."}],
    }


def test_reasoning_effort_becomes_claude_thinking_with_room_in_max_tokens() -> None:
    body = chat_to_converse(chat(model=CLAUDE, reasoning_effort="low"))
    assert body["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 2048}
    }
    assert body["inferenceConfig"] == {"maxTokens": 2048 + DEFAULT_MAX_TOKENS}


def test_reasoning_budget_stays_below_the_callers_max_tokens() -> None:
    body = chat_to_converse(chat(reasoning_effort="high", max_tokens=3000), model_id=CLAUDE)
    assert body["additionalModelRequestFields"]["thinking"]["budget_tokens"] == 2999
    assert body["inferenceConfig"]["maxTokens"] == 3000


def test_reasoning_effort_none_sends_no_thinking() -> None:
    body = chat_to_converse(chat(model="amazon.nova-pro-v1:0", reasoning_effort="none"))
    assert "additionalModelRequestFields" not in body
    assert "inferenceConfig" not in body


@pytest.mark.parametrize(
    ("fields", "model_id", "named"),
    [
        ({"reasoning_effort": "low"}, "amazon.nova-pro-v1:0", "Anthropic Claude models"),
        ({"reasoning_effort": "extreme"}, CLAUDE, "'extreme'"),
        ({"reasoning_effort": "low", "max_tokens": 1000}, CLAUDE, "more than 1024"),
        (
            {"reasoning_effort": "low", "tools": [TOOL], "tool_choice": "required"},
            CLAUDE,
            "forced `tool_choice`",
        ),
    ],
)
def test_reasoning_refusals(fields: dict[str, Any], model_id: str, named: str) -> None:
    with pytest.raises(Untranslatable, match=named):
        chat_to_converse(chat(**fields), model_id=model_id)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"seed": 7}, "`seed`"),
        ({"n": 2}, "`n`"),
        ({"logprobs": True}, "`logprobs`"),
        ({"presence_penalty": 0.5}, "`presence_penalty`"),
        ({"audio": {"voice": "alloy"}}, "`audio`"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"response_format": {"type": "json_object"}}, "'json_object'"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "'json_schema'"),
        ({"temperature": 1.5}, "`temperature` 1.5"),
        ({"top_p": -0.1}, "`top_p` -0.1"),
        ({"tools": [{"type": "web_search"}]}, r"tools\[0\]: only function tools"),
        ({"tools": [TOOL], "tool_choice": {"type": "allowed_tools"}}, "`tool_choice`"),
    ],
)
def test_fields_converse_cannot_honour_are_refused_by_name(
    fields: dict[str, Any], named: str
) -> None:
    with pytest.raises(Untranslatable, match=named):
        chat_to_converse(chat(**fields))


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ({"role": "function", "content": "x"}, "role 'function'"),
        ({"role": "user", "content": "x", "audio": {"id": "a"}}, r"messages\[0\]\.audio"),
        (
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
            },
            "image bytes only",
        ),
        (
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}
                ],
            },
            "not image/bmp",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}],
            },
            "base64 data URLs",
        ),
        (
            {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]},
            "`file_data`",
        ),
        (
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_data": "data:application/zip;base64,UEs="}}
                ],
            },
            "application/zip",
        ),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
            "'input_audio'",
        ),
        (
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                ],
            },
            "must be a JSON object",
        ),
        (
            {"role": "assistant", "tool_calls": [{"id": "t", "type": "custom", "custom": {}}]},
            "only function tool calls",
        ),
    ],
)
def test_messages_converse_cannot_express_are_refused_by_name(
    message: dict[str, Any], named: str
) -> None:
    with pytest.raises(Untranslatable, match=named):
        chat_to_converse({"messages": [message]})


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"messages": []}, "`messages` must be a non-empty list"),
        ({"messages": "Hi"}, "`messages` must be a non-empty list"),
        ({"messages": ["Hi"]}, r"messages\[0\] must be an object"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id must be a string"),
        ({"messages": [{"role": "user", "content": 5}]}, "must be a string or a list"),
        (chat(max_tokens=0), "`max_tokens` must be a positive integer"),
        (chat(max_tokens=True), "`max_tokens` must be a positive integer"),
        (chat(temperature="hot"), "`temperature` must be a number"),
        (chat(stop=[1]), "`stop` must be a string or a list of strings"),
        (chat(tool_choice="required"), "`tool_choice` needs `tools`"),
        (chat(tools={"x": 1}), "`tools` must be a list"),
    ],
)
def test_malformed_requests_are_invalid_input(body: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        chat_to_converse(body)


def test_a_conversation_of_only_system_messages_is_refused() -> None:
    with pytest.raises(Untranslatable, match="needs a user or assistant message"):
        chat_to_converse({"messages": [{"role": "system", "content": "Be nice."}]})


def test_string_stop_becomes_a_list_and_labels_are_not_sent() -> None:
    body = chat_to_converse(chat(stop="END", user="u-1", stream=True, stream_options={}))
    assert body == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"stopSequences": ["END"]},
    }


# ---- responses ----


def test_text_response() -> None:
    assert translate("response_text.json") == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "bedrock-x",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Bonjour ! Ça va bien.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 25,
            "completion_tokens": 9,
            "total_tokens": 34,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0},
        },
    }


def test_tool_use_response() -> None:
    choice = translate("response_tool_use.json")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check both."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        },
        {
            "id": "tooluse_pLmN2",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
        },
    ]


def test_reasoning_response_and_cache_usage() -> None:
    completion = translate("response_reasoning.json")
    message = completion["choices"][0]["message"]
    assert message["content"] == "4"
    assert message["reasoning_content"] == "The user wants 2+2. That is 4."
    assert completion["usage"] == {
        "prompt_tokens": 1540,
        "completion_tokens": 120,
        "total_tokens": 1660,
        "prompt_tokens_details": {"cached_tokens": 1200, "cache_creation_tokens": 300},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("tool_use", "stop"),  # no toolUse block came back
        ("malformed_model_output", "stop"),
        (None, None),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish: str | None) -> None:
    response = fixture("response_max_tokens.json")
    response["stopReason"] = stop_reason
    assert converse_to_chat(response, "m", "c", 1)["choices"][0]["finish_reason"] == finish


def test_recorded_guardrail_and_max_tokens_answers() -> None:
    assert translate("response_guardrail.json")["choices"][0]["finish_reason"] == "content_filter"
    assert translate("response_max_tokens.json")["choices"][0]["finish_reason"] == "length"


def test_a_response_without_output_or_usage_is_an_empty_answer() -> None:
    completion = converse_to_chat({"stopReason": "end_turn"}, "m", "c", 1)
    assert completion["choices"][0]["message"]["content"] == ""
    assert completion["usage"]["total_tokens"] == 0


# ---- streams ----


def test_text_stream_with_usage() -> None:
    found = stream("stream_text.json")
    assert deltas(found) == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Bon"},
        {"content": "jour"},
        {},
    ]
    assert finishes(found) == ["stop"]
    chunk = found[1]
    assert chunk["id"] == "chatcmpl-1"
    assert chunk["object"] == "chat.completion.chunk"
    assert chunk["model"] == "bedrock-x"
    assert chunk["usage"] is None
    assert found[-2]["choices"] == []
    assert found[-2]["usage"] == {
        "prompt_tokens": 125,
        "completion_tokens": 2,
        "total_tokens": 127,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 0},
    }
    assert found[-1] == "[DONE]"


def test_stream_without_usage_asked_has_no_usage_anywhere() -> None:
    found = stream("stream_text.json", include_usage=False)
    assert all("usage" not in e for e in found if e != "[DONE]")
    assert found[-1] == "[DONE]"


def test_tool_use_stream_sends_arguments_as_fragments() -> None:
    found = stream("stream_tool_use.json")
    assert deltas(found)[1:] == [
        {"content": "Checking."},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "tooluse_A",
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
                    "id": "tooluse_B",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": '{"city": "Rome"}'}}]},
        {},
    ]
    assert finishes(found) == ["tool_calls"]


def test_reasoning_stream() -> None:
    found = stream("stream_reasoning.json")
    assert deltas(found)[1:] == [
        {"reasoning_content": "2+2 "},
        {"reasoning_content": "is 4."},
        {"content": "4"},
        {},
    ]


def test_exception_mid_stream_ends_it_with_an_openai_error() -> None:
    found = stream("stream_exception.json")
    assert deltas(found) == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hel"},
    ]
    assert found[2] == {
        "error": {
            "message": "Too many tokens, please wait before trying again.",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert found[3:] == ["[DONE]"]  # no usage after a failure, nothing after the error


def test_model_stream_error_without_a_message_names_itself() -> None:
    translator = ConverseStream("m", "c", 1, False)
    error = events(translator.event("modelStreamErrorException", {"originalStatusCode": 500}))
    assert error[0]["error"]["type"] == "server_error"
    assert "ModelStreamErrorException" in error[0]["error"]["message"]


def test_payload_wrapped_in_its_event_type_is_unwrapped() -> None:
    translator = ConverseStream("m", "c", 1, False)
    wrapped = {"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}}
    assert deltas(events(translator.event("contentBlockDelta", wrapped))) == [{"content": "Hi"}]


def test_unknown_events_and_stray_fragments_add_nothing() -> None:
    translator = ConverseStream("m", "c", 1, True)
    assert translator.event("contentBlockStop", {"contentBlockIndex": 0}) == b""
    assert translator.event("somethingNew", {"x": 1}) == b""
    stray = {"delta": {"toolUse": {"input": "{}"}}, "contentBlockIndex": 9}
    assert translator.event("contentBlockDelta", stray) == b""
    signature = {"delta": {"reasoningContent": {"signature": "abc"}}, "contentBlockIndex": 0}
    assert translator.event("contentBlockDelta", signature) == b""


def test_close_is_idempotent_and_events_after_it_are_ignored() -> None:
    translator = ConverseStream("m", "c", 1, True)
    assert translator.close() == b"data: [DONE]\n\n"  # no metadata came: no usage chunk
    assert translator.close() == b""
    assert translator.event("contentBlockDelta", {"delta": {"text": "late"}}) == b""


# ---- errors ----


@pytest.mark.parametrize(
    ("name", "kind", "code"),
    [
        ("error_validation.json", "invalid_request_error", "ValidationException"),
        ("error_throttling.json", "rate_limit_error", "rate_limit_exceeded"),
        ("error_access_denied.json", "permission_error", "access_denied"),
        ("error_not_found.json", "not_found_error", "model_not_found"),
        ("error_unrecognized_client.json", "authentication_error", "invalid_api_key"),
    ],
)
def test_recorded_errors(name: str, kind: str, code: str) -> None:
    recorded = fixture(name)
    translated = error_to_openai(
        recorded["status"], orjson.dumps(recorded["body"]), recorded["error_type"]
    )
    message = recorded["body"].get("message") or recorded["body"]["Message"]
    assert translated == {"error": {"message": message, "type": kind, "param": None, "code": code}}


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, "invalid_request_error"), (429, "rate_limit_error"), (502, "server_error")],
)
def test_errors_without_a_type_fall_back_on_the_status(status: int, kind: str) -> None:
    translated = error_to_openai(status, b"<html>Bad Gateway</html>")
    assert translated["error"]["type"] == kind
    assert translated["error"]["message"] == f"Bedrock answered {status}: <html>Bad Gateway</html>"
    assert translated["error"]["code"] is None


def test_unknown_error_type_is_kept_as_the_code() -> None:
    translated = error_to_openai(424, b'{"message": "odd"}', "BrandNewException")
    assert translated["error"] == {
        "message": "odd",
        "type": "invalid_request_error",
        "param": None,
        "code": "BrandNewException",
    }


def test_empty_error_body() -> None:
    assert error_to_openai(503, b"")["error"]["message"] == "Bedrock answered 503"


# ---- what the OpenAI SDK reads ----


@pytest.mark.parametrize(
    "name",
    ["response_text.json", "response_tool_use.json", "response_reasoning.json"],
)
def test_answers_parse_as_the_openai_sdks_chat_completion(name: str) -> None:
    completion = ChatCompletion.model_validate(translate(name))
    assert completion.choices[0].finish_reason in ("stop", "tool_calls")
    assert completion.usage is not None


@pytest.mark.parametrize(
    "name",
    ["stream_text.json", "stream_tool_use.json", "stream_reasoning.json"],
)
def test_stream_chunks_parse_as_the_openai_sdks_chunks(name: str) -> None:
    chunks = [ChatCompletionChunk.model_validate(e) for e in stream(name)[:-1]]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
