"""OpenAI chat ⇄ Gemini generateContent translation, against recorded shapes of Gemini's answers,
streams and errors (tests/translation_fixtures/gemini/)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from heliograph.domain.errors import InvalidInput
from heliograph.translation.errors import Untranslatable
from heliograph.translation.gemini import (
    GeminiStream,
    chat_to_gemini,
    error_to_openai,
    gemini_path,
    gemini_to_chat,
)

FIXTURES = Path(__file__).parent / "translation_fixtures" / "gemini"
STREAMS = sorted(path.name for path in FIXTURES.glob("*.sse"))
CREATED = 1_700_000_000


def load(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def answer(name: str, completion_id: str = "chatcmpl-1") -> dict[str, Any]:
    return gemini_to_chat(load(name), "gemini-x", completion_id, CREATED)


def stream_bytes(name: str, crlf: bool | None = None) -> bytes:
    """A recorded stream; `crlf` re-frames it with CRLF (True) or LF (False) line ends."""
    data = (FIXTURES / name).read_bytes()
    if crlf is None:
        return data
    data = data.replace(b"\r\n", b"\n")
    return data.replace(b"\n", b"\r\n") if crlf else data


def translate(data: bytes, step: int | None = None, include_usage: bool = True) -> bytes:
    stream = GeminiStream("gemini-x", "chatcmpl-s", CREATED, include_usage)
    step = step or len(data) or 1
    out = b"".join(stream.feed(data[i : i + step]) for i in range(0, len(data), step))
    return out + stream.close()


def events(output: bytes) -> list[Any]:
    """The OpenAI SSE events' data, parsed; `[DONE]` kept as the string."""
    assert output.endswith(b"\n\n")
    found: list[Any] = []
    for event in output[:-2].split(b"\n\n"):
        assert event.startswith(b"data: "), event
        data = event[6:]
        found.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return found


def load_stream_event(name: str) -> Any:
    """The first event of a recorded stream, parsed."""
    first = stream_bytes(name, crlf=False).split(b"\n\n")[0]
    return orjson.loads(first.removeprefix(b"data: "))


def refusal(chat: dict[str, Any]) -> str:
    with pytest.raises(Untranslatable) as caught:
        chat_to_gemini(chat)
    assert isinstance(caught.value, InvalidInput)
    assert (caught.value.status, caught.value.code) == (400, "untranslatable")
    return str(caught.value)


def simple_chat(**fields: Any) -> dict[str, Any]:
    return {"model": "gemini-x", "messages": [{"role": "user", "content": "Hi"}], **fields}


# Path ----------------------------------------------------------------------------------------


def test_path_names_the_method_and_asks_for_sse_when_streaming() -> None:
    assert gemini_path("gemini-2.5-flash", False) == (
        "/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert gemini_path("gemini-2.0-flash-001", True) == (
        "/v1beta/models/gemini-2.0-flash-001:streamGenerateContent?alt=sse"
    )


@pytest.mark.parametrize(
    "model", ["", "a/b", "../files", "gemini..x", "a?key=1", "a#b", "a b", "%2e%2e", ".hidden"]
)
def test_path_refuses_a_model_name_that_would_leave_the_path(model: str) -> None:
    with pytest.raises(Untranslatable, match=r"model: .* is not a Gemini model name"):
        gemini_path(model, False)


# Request: messages ---------------------------------------------------------------------------


def test_system_and_developer_messages_become_the_system_instruction() -> None:
    body = chat_to_gemini(load("chat_multiturn.json"))
    assert body["systemInstruction"] == {
        "parts": [{"text": "You are terse."}, {"text": "Answer in French."}]
    }


def test_turns_alternate_with_assistant_as_model_and_same_role_turns_merged() -> None:
    body = chat_to_gemini(load("chat_multiturn.json"))
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Bonjour."}]},
        {"role": "user", "parts": [{"text": "What is 2+2?"}, {"text": "And 3+3?"}]},
    ]
    assert "generationConfig" not in body
    assert "tools" not in body


def test_a_request_is_not_changed_by_translating_it() -> None:
    chat = load("chat_tools.json")
    before = copy.deepcopy(chat)
    chat_to_gemini(chat)
    assert chat == before


@pytest.mark.parametrize(
    ("messages", "named"),
    [
        ([], "messages: must be a non-empty list"),
        ([{"role": "system", "content": "only rules"}], "at least one user or assistant"),
        (["hello"], r"messages\[0\]: must be an object"),
        ([{"role": "function", "name": "f", "content": "1"}], r"messages\[0\].role"),
        ([{"role": "user", "content": "a", "audio": {"id": "x"}}], r"messages\[0\].audio"),
        ([{"role": "user", "content": 7}], r"messages\[0\].content: must be a string or"),
        (
            [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            r"messages\[0\].content\[0\]: only text parts",
        ),
    ],
)
def test_messages_gemini_cannot_take_are_refused_by_position(
    messages: list[Any], named: str
) -> None:
    with pytest.raises(Untranslatable, match=named):
        chat_to_gemini(simple_chat(messages=messages))


# Request: tools ------------------------------------------------------------------------------


def test_tools_become_function_declarations_with_the_json_schema_unchanged() -> None:
    chat = load("chat_tools.json")
    body = chat_to_gemini(chat)
    weather_schema = chat["tools"][0]["function"]["parameters"]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parametersJsonSchema": weather_schema,
                },
                {"name": "get_time"},
            ]
        }
    ]
    # anyOf/const/additionalProperties reach Gemini as written: no OpenAPI-subset conversion.
    assert (
        "anyOf"
        in body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["properties"]["unit"]
    )


def test_a_forced_function_becomes_mode_any_with_its_name_allowed() -> None:
    body = chat_to_gemini(load("chat_tools.json"))
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


@pytest.mark.parametrize(
    ("choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")]
)
def test_tool_choice_words_become_function_calling_modes(choice: str, mode: str) -> None:
    body = chat_to_gemini(simple_chat(tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_assistant_tool_calls_become_function_call_parts() -> None:
    body = chat_to_gemini(load("chat_tools.json"))
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }


def test_tool_results_become_one_turn_of_named_function_responses_wrapped_as_objects() -> None:
    body = chat_to_gemini(load("chat_tools.json"))
    assert len(body["contents"]) == 3
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": -3}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "noon"}}},
        ],
    }


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            lambda chat: chat["messages"][2].update(tool_call_id="call_zzz"),
            r"messages\[2\].tool_call_id: no earlier assistant tool call",
        ),
        (
            lambda chat: chat["messages"][1]["tool_calls"][0]["function"].update(arguments="[1]"),
            r"messages\[1\].tool_calls\[0\].function.arguments: must be a JSON object",
        ),
        (
            lambda chat: chat["messages"][1]["tool_calls"][0].update(type="custom"),
            r"messages\[1\].tool_calls\[0\]: only function tool calls",
        ),
        (
            lambda chat: chat["tools"].append({"type": "custom", "custom": {"name": "x"}}),
            r"tools\[2\]: only function tools",
        ),
        (
            lambda chat: chat["tools"][1]["function"].update(parameters="object"),
            r"tools\[1\].function.parameters: must be a JSON Schema object",
        ),
        (
            lambda chat: chat["tools"][1]["function"].update(examples=[]),
            r"tools\[1\].function.examples: Gemini has no equivalent",
        ),
        (
            lambda chat: chat.update(tool_choice={"type": "allowed_tools"}),
            "tool_choice: only auto, none, required or one function",
        ),
    ],
)
def test_tool_shapes_gemini_cannot_take_are_refused_by_name(change: Any, named: str) -> None:
    chat = load("chat_tools.json")
    change(chat)
    with pytest.raises(Untranslatable, match=named):
        chat_to_gemini(chat)


# Request: media ------------------------------------------------------------------------------


def test_data_urls_go_inline_and_http_urls_as_file_data() -> None:
    parts = chat_to_gemini(load("chat_media.json"))["contents"][0]["parts"]
    assert parts == [
        {"text": "Compare these."},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {
            "fileData": {
                "fileUri": "https://example.com/cat.jpg?size=large",
                "mimeType": "image/jpeg",
            }
        },
        {"fileData": {"fileUri": "https://example.com/render"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]


@pytest.mark.parametrize(
    ("part", "named"),
    [
        ({"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}, "only data: and http"),
        (
            {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}},
            r"image_url.url: a data URL must be data:<type>;base64",
        ),
        ({"type": "input_audio", "input_audio": {"data": "AA", "format": "flac"}}, "wav or mp3"),
        ({"type": "file", "file": {"file_id": "file-abc"}}, "only file_data"),
        ({"type": "video_url", "video_url": {"url": "x"}}, r"content\[0\]: only text parts"),
    ],
)
def test_media_gemini_cannot_take_is_refused(part: dict[str, Any], named: str) -> None:
    with pytest.raises(Untranslatable, match=named):
        chat_to_gemini(simple_chat(messages=[{"role": "user", "content": [part]}]))


# Request: generation options -----------------------------------------------------------------


def test_generation_options_map_to_generation_config() -> None:
    chat = load("chat_options.json")
    body = chat_to_gemini(chat)
    assert body["generationConfig"] == {
        "maxOutputTokens": 256,
        "temperature": 0.2,
        "topP": 0.9,
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": chat["response_format"]["json_schema"]["schema"],
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
    }


def test_max_tokens_json_mode_a_single_stop_and_thinking_off() -> None:
    chat = simple_chat(
        max_tokens=10,
        stop="\n\n",
        response_format={"type": "json_object"},
        reasoning_effort="none",
    )
    assert chat_to_gemini(chat)["generationConfig"] == {
        "maxOutputTokens": 10,
        "stopSequences": ["\n\n"],
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": False},
    }


def test_caller_labels_are_accepted_and_send_nothing() -> None:
    chat = simple_chat(user="u-1", safety_identifier="hash", prompt_cache_key="k")
    assert chat_to_gemini(chat) == chat_to_gemini(simple_chat())


def test_an_earlier_refusal_is_kept_as_the_model_turn_text() -> None:
    chat = simple_chat()
    chat["messages"] += [
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        {"role": "user", "content": "Why?"},
    ]
    assert chat_to_gemini(chat)["contents"][1] == {
        "role": "model",
        "parts": [{"text": "I can't help with that."}],
    }


def test_fields_set_to_null_are_treated_as_absent() -> None:
    chat = simple_chat(logit_bias=None, audio=None, temperature=None, tools=None)
    assert chat_to_gemini(chat) == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"logit_bias": {"50256": -100}}, "logit_bias: Gemini has no equivalent"),
        ({"top_logprobs": 2}, "top_logprobs: Gemini has no equivalent"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio: Gemini has no equivalent"),
        ({"prediction": {"type": "content"}}, "prediction: Gemini has no equivalent"),
        ({"web_search_options": {}}, "web_search_options: Gemini has no equivalent"),
        ({"frobnicate": 1}, "frobnicate: Gemini has no equivalent"),
        ({"logprobs": True}, "logprobs: not translated"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls: Gemini cannot be limited"),
        ({"store": True}, "store: Gemini does not store"),
        ({"modalities": ["text", "audio"]}, "modalities: only"),
        ({"user": 42}, "user: must be a string"),
        ({"prompt_cache_key": ["k"]}, "prompt_cache_key: must be a string"),
        ({"metadata": {"a": "b"}}, "metadata: Gemini has no equivalent"),
        ({"service_tier": "flex"}, "service_tier: Gemini has no equivalent"),
        ({"reasoning_effort": "xhigh"}, "reasoning_effort: 'xhigh' is not translated"),
        ({"response_format": {"type": "grammar"}}, "response_format.type: 'grammar'"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "json_schema.schema"),
        ({"temperature": "hot"}, "temperature: must be a number"),
        ({"max_tokens": 1.5}, "max_tokens: must be a number"),
        ({"n": True}, "n: must be a number"),
        ({"stop": ["a", 1]}, "stop: must be a string or a list of strings"),
    ],
)
def test_fields_gemini_has_no_equivalent_for_are_refused_by_name(
    fields: dict[str, Any], named: str
) -> None:
    assert named in refusal(simple_chat(**fields))


# Response ------------------------------------------------------------------------------------


def test_a_text_answer_becomes_a_chat_completion_with_usage() -> None:
    assert answer("response_text.json") == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": CREATED,
        "model": "gemini-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Quatre."},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "total_tokens": 15,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_function_calls_become_tool_calls_with_ids_stable_within_the_response() -> None:
    choice = answer("response_function_calls.json")["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Checking both."
    calls = choice["message"]["tool_calls"]
    assert [(c["type"], c["function"]["name"]) for c in calls] == [
        ("function", "get_weather"),
        ("function", "get_weather"),
    ]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Oslo"},
    ]
    ids = [c["id"] for c in calls]
    assert len(set(ids)) == 2
    again = answer("response_function_calls.json")["choices"][0]["message"]["tool_calls"]
    assert [c["id"] for c in again] == ids
    other = answer("response_function_calls.json", "chatcmpl-2")["choices"][0]["message"]
    assert not set(ids) & {c["id"] for c in other["tool_calls"]}


def test_generated_tool_call_ids_lead_the_results_back_to_their_function() -> None:
    message = answer("response_function_calls.json")["choices"][0]["message"]
    chat = simple_chat()
    chat["messages"] += [
        message,
        *(
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}
            for call in message["tool_calls"]
        ),
    ]
    last = chat_to_gemini(chat)["contents"][-1]
    assert (
        last["parts"]
        == [{"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}}] * 2
    )


def test_a_thought_signature_rides_in_the_tool_call_id_and_goes_back_unchanged() -> None:
    response = load("response_signed_calls.json")
    signature = response["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    message = gemini_to_chat(response, "gemini-3-pro-preview", "chatcmpl-9", CREATED)["choices"][0][
        "message"
    ]
    ids = [call["id"] for call in message["tool_calls"]]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", call_id) for call_id in ids)
    chat = simple_chat()
    chat["messages"] += [
        message,
        *({"role": "tool", "tool_call_id": call_id, "content": "{}"} for call_id in ids),
    ]
    model_turn = chat_to_gemini(chat)["contents"][1]
    assert model_turn["parts"] == [
        {
            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": signature,
        },
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
    ]


def test_a_thought_signature_in_a_stream_rides_in_the_tool_call_id_too() -> None:
    found = events(translate(stream_bytes("stream_signed_call.sse")))
    call = found[0]["choices"][0]["delta"]["tool_calls"][0]
    assert call["id"].startswith("call_chatcmpl-s_0_0__sig_")
    chat = simple_chat()
    chat["messages"] += [
        {"role": "assistant", "tool_calls": [{k: v for k, v in call.items() if k != "index"}]},
        {"role": "tool", "tool_call_id": call["id"], "content": "12:00"},
    ]
    part = chat_to_gemini(chat)["contents"][1]["parts"][0]
    signed = load_stream_event("stream_signed_call.sse")["candidates"][0]["content"]["parts"][0]
    assert part["thoughtSignature"] == signed["thoughtSignature"]


def test_thought_parts_become_reasoning_content_and_usage_splits_cached_and_reasoning() -> None:
    chat = answer("response_thoughts.json")
    assert chat["choices"][0]["message"] == {
        "role": "assistant",
        "content": "4",
        "reasoning_content": "**Adding numbers**\nTwo plus two is four.",
    }
    assert chat["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 26,
        "total_tokens": 126,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 25},
    }


def test_each_candidate_is_a_choice_with_its_own_finish_reason() -> None:
    choices = answer("response_two_candidates.json")["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "Red", "stop"),
        (1, "Blue, gre", "length"),
    ]


def test_a_candidate_stopped_for_safety_is_an_empty_content_filter_choice() -> None:
    chat = answer("response_safety.json")
    assert chat["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None},
            "finish_reason": "content_filter",
        }
    ]


def test_a_blocked_prompt_is_one_empty_choice_finished_by_content_filter() -> None:
    chat = answer("response_prompt_blocked.json")
    assert chat["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None},
            "finish_reason": "content_filter",
        }
    ]
    assert chat["usage"]["prompt_tokens"] == 11
    assert chat["usage"]["completion_tokens"] == 0


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
    ],
)
def test_finish_reasons_map_to_openai_ones(reason: str, expected: str) -> None:
    response = load("response_text.json")
    response["candidates"][0]["finishReason"] = reason
    chat = gemini_to_chat(response, "m", "c", CREATED)
    assert chat["choices"][0]["finish_reason"] == expected


def test_an_answer_without_usage_metadata_has_no_usage() -> None:
    response = load("response_text.json")
    del response["usageMetadata"]
    assert "usage" not in gemini_to_chat(response, "m", "c", CREATED)


# Stream --------------------------------------------------------------------------------------


def test_a_text_stream_becomes_chunks_with_the_role_first_then_finish_usage_and_done() -> None:
    found = events(translate(stream_bytes("stream_text.sse")))
    head = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": CREATED}
    head["model"] = "gemini-x"
    assert found[0] == {
        **head,
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "Hello, "},
                "finish_reason": None,
            }
        ],
    }
    deltas = [event["choices"][0]["delta"] for event in found[:3]]
    assert ["role" in delta for delta in deltas] == [True, False, False]
    assert "".join(delta["content"] for delta in deltas) == "Hello, wörld! 👋 Ünïcödé"
    assert found[3]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert found[4] == {
        **head,
        "choices": [],
        "usage": {
            "prompt_tokens": 8,
            "completion_tokens": 6,
            "total_tokens": 14,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }
    assert found[5:] == ["[DONE]"]


def test_usage_is_left_out_unless_asked_for() -> None:
    found = events(translate(stream_bytes("stream_text.sse"), include_usage=False))
    assert not any(isinstance(e, dict) and "usage" in e for e in found)
    assert found[-1] == "[DONE]"


@pytest.mark.parametrize("name", STREAMS)
def test_a_stream_split_at_every_byte_or_framed_either_way_translates_the_same(name: str) -> None:
    whole = translate(stream_bytes(name))
    assert translate(stream_bytes(name), step=1) == whole
    assert translate(stream_bytes(name), step=7) == whole
    assert translate(stream_bytes(name, crlf=True), step=1) == whole
    assert translate(stream_bytes(name, crlf=False), step=3) == whole


def test_function_calls_in_a_stream_become_indexed_tool_call_chunks() -> None:
    found = events(translate(stream_bytes("stream_function_call.sse")))
    calls = [call for event in found[:2] for call in event["choices"][0]["delta"]["tool_calls"]]
    assert [(c["index"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        (0, "get_weather", '{"city":"Paris"}'),
        (1, "get_time", "{}"),
    ]
    assert len({c["id"] for c in calls}) == 2
    assert found[0]["choices"][0]["delta"]["role"] == "assistant"
    assert found[2]["choices"][0]["finish_reason"] == "tool_calls"
    assert found[3]["usage"]["completion_tokens"] == 52
    assert found[3]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 40}


def test_thoughts_in_a_stream_become_reasoning_content_deltas() -> None:
    found = events(translate(stream_bytes("stream_thoughts.sse")))
    assert found[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "reasoning_content": "**Planning**",
    }
    assert found[1]["choices"][0]["delta"] == {"content": "4"}
    assert found[3]["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}


def test_an_error_mid_stream_becomes_an_openai_error_event_and_ends_the_stream() -> None:
    stream = GeminiStream("gemini-x", "chatcmpl-s", CREATED, True)
    found = events(stream.feed(stream_bytes("stream_error.sse")))
    assert found[0]["choices"][0]["delta"]["content"] == "Partial"
    assert found[1] == {
        "error": {
            "message": "The model is overloaded. Please try again later.",
            "type": "server_error",
            "param": None,
            "code": "unavailable",
        }
    }
    assert found[2:] == ["[DONE]"]
    assert stream.feed(b'data: {"candidates": []}\n\n') == b""
    assert stream.close() == b""


def test_an_event_that_is_not_json_ends_the_stream_with_an_error() -> None:
    found = events(translate(b'data: {"candidates": [\n\n'))
    assert found[0]["error"]["type"] == "server_error"
    assert "not a JSON object" in found[0]["error"]["message"]
    assert found[1:] == ["[DONE]"]


def test_a_blocked_prompt_in_a_stream_finishes_by_content_filter() -> None:
    found = events(translate(stream_bytes("stream_blocked.sse")))
    assert found[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant"}, "finish_reason": "content_filter"}
    ]
    assert found[1]["usage"]["prompt_tokens"] == 7
    assert found[2:] == ["[DONE]"]


def test_max_tokens_in_a_stream_finishes_by_length() -> None:
    found = events(translate(stream_bytes("stream_max_tokens.sse")))
    assert found[1]["choices"][0]["finish_reason"] == "length"


def test_a_last_event_left_unterminated_is_still_translated_on_close() -> None:
    data = stream_bytes("stream_max_tokens.sse", crlf=False).rstrip(b"\n")
    assert translate(data) == translate(stream_bytes("stream_max_tokens.sse"))


def test_an_empty_stream_still_ends_with_done() -> None:
    assert translate(b"") == b"data: [DONE]\n\n"


def test_comments_and_other_fields_in_the_stream_are_ignored() -> None:
    data = b": keep-alive\nevent: message\nid: 1\n" + stream_bytes("stream_max_tokens.sse")
    assert translate(data) == translate(stream_bytes("stream_max_tokens.sse"))


# Errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "kind", "code"),
    [
        ("error_invalid_argument.json", 400, "invalid_request_error", "invalid_argument"),
        ("error_api_key_invalid.json", 400, "authentication_error", "invalid_argument"),
        ("error_permission_denied.json", 403, "permission_error", "permission_denied"),
        ("error_not_found.json", 404, "not_found_error", "not_found"),
        ("error_resource_exhausted.json", 429, "rate_limit_error", "resource_exhausted"),
        ("error_internal.json", 500, "server_error", "internal"),
        ("error_array.json", 503, "server_error", "unavailable"),
    ],
)
def test_gemini_errors_become_openai_errors_by_status(
    name: str, status: int, kind: str, code: str
) -> None:
    body = (FIXTURES / name).read_bytes()
    document = load(name)
    gemini_error = (document[0] if isinstance(document, list) else document)["error"]
    assert error_to_openai(status, body) == {
        "error": {"message": gemini_error["message"], "type": kind, "param": None, "code": code}
    }


@pytest.mark.parametrize(
    ("status", "body", "kind", "message"),
    [
        (502, b"<html><body>Bad Gateway</body></html>", "server_error", "<html><body>Bad Gateway"),
        (503, b"", "server_error", "Gemini answered HTTP 503"),
        (429, b"Too Many Requests", "rate_limit_error", "Too Many Requests"),
        (401, b'{"message": "no"}', "authentication_error", '{"message": "no"}'),
        (400, b'{"error": "plain"}', "invalid_request_error", '{"error": "plain"}'),
    ],
)
def test_an_error_body_that_is_not_geminis_json_is_quoted_and_typed_by_http_status(
    status: int, body: bytes, kind: str, message: str
) -> None:
    error = error_to_openai(status, body)["error"]
    assert error["type"] == kind
    assert error["message"].startswith(message)
    assert error["code"] is None


def test_a_long_unparseable_error_body_is_cut() -> None:
    error = error_to_openai(500, b"x" * 10_000)["error"]
    assert error["message"] == "x" * 500
