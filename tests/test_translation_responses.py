"""OpenAI Responses API ⇄ chat completions translation, against recorded shapes of both APIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from heliograph.domain.errors import InvalidInput
from heliograph.translation.errors import Untranslatable
from heliograph.translation.responses import (
    ResponsesStream,
    chat_to_response,
    response_usage,
    responses_to_chat,
)

FIXTURES = Path(__file__).parent / "translation_fixtures" / "responses"
CREATED = 1741476542


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "input": "Hi", **fields}


def stream(name: str, step: int | None = None, req: dict[str, Any] | None = None) -> bytes:
    data = (FIXTURES / name).read_bytes()
    translator = ResponsesStream(req or request(), "resp_1", CREATED)
    pieces = [data] if step is None else [data[i : i + step] for i in range(0, len(data), step)]
    return b"".join(translator.feed(piece) for piece in pieces) + translator.close()


def events(output: bytes) -> list[dict[str, Any]]:
    """The Responses stream's events, checking each `event:` line names its payload's type."""
    assert output.endswith(b"\n\n")
    found = []
    for raw in output.split(b"\n\n")[:-1]:
        name_line, data_line = raw.split(b"\n")
        event = orjson.loads(data_line.removeprefix(b"data: "))
        assert name_line == b"event: " + event["type"].encode()
        found.append(event)
    assert [e["sequence_number"] for e in found] == list(range(len(found)))
    return found


def types(found: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in found]


# ---- requests ----


def test_text_request_with_instructions_and_no_op_fields() -> None:
    assert responses_to_chat(fixture("request_text.json")) == {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Write a one-sentence bedtime story about a unicorn."},
        ],
        "temperature": 0.7,
        "top_p": 0.9,
        "user": "user-123",
        "max_tokens": 200,
    }


def test_multi_turn_with_image_file_and_assistant_output() -> None:
    assert responses_to_chat(fixture("request_multi_turn.json"))["messages"] == [
        {"role": "developer", "content": "Answer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.png", "detail": "low"},
                },
            ],
        },
        {"role": "assistant", "content": "Un chat."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Summarise this file."},
                {
                    "type": "file",
                    "file": {
                        "file_data": "data:application/pdf;base64,JVBERi0x",
                        "filename": "a.pdf",
                    },
                },
            ],
        },
    ]


def test_tool_round_trip_merges_calls_and_answers_them_by_id() -> None:
    chat = responses_to_chat(fixture("request_tool_round_trip.json"))
    paris = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    rome = {"name": "get_weather", "arguments": '{"city":"Rome"}'}
    assert chat["messages"] == [
        {"role": "user", "content": "What is the weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "call_paris", "type": "function", "function": paris},
                {"id": "call_rome", "type": "function", "function": rome},
            ],
        },
        {"role": "tool", "tool_call_id": "call_paris", "content": '{"temp":18}'},
        {
            "role": "tool",
            "tool_call_id": "call_rome",
            "content": [{"type": "text", "text": '{"temp":24}'}],
        },
    ]
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "parameters": fixture("request_tool_round_trip.json")["tools"][0]["parameters"],
                "strict": True,
            },
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert chat["parallel_tool_calls"] is False


def test_a_call_without_a_preceding_assistant_turn_starts_one() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    chat = responses_to_chat(request(input=[{"role": "user", "content": "x"}, call]))
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }


def test_structured_output_reasoning_and_stream() -> None:
    chat = responses_to_chat(fixture("request_structured.json"))
    schema = fixture("request_structured.json")["text"]["format"]["schema"]
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": schema, "strict": True},
    }
    assert chat["reasoning_effort"] == "low"
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"format": {"type": "json_object"}}, {"response_format": {"type": "json_object"}}),
        ({"format": {"type": "text"}, "verbosity": "medium"}, {}),
        ({"verbosity": "low"}, {"verbosity": "low"}),
    ],
)
def test_text_formats(text: dict[str, Any], expected: dict[str, Any]) -> None:
    chat = responses_to_chat(request(text=text))
    assert {k: v for k, v in chat.items() if k in ("response_format", "verbosity")} == expected


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_string_tool_choices_pass_through(choice: str) -> None:
    assert responses_to_chat(request(tool_choice=choice))["tool_choice"] == choice


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"previous_response_id": "resp_0"}, "`previous_response_id` needs state"),
        ({"conversation": "conv_1"}, "`conversation` needs state"),
        ({"prompt": {"id": "pmpt_1"}}, "`prompt` needs state"),
        ({"tools": [{"type": "web_search_preview"}]}, "built-in tool 'web_search_preview'"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}, "'file_search'"),
        ({"tools": [{"type": "computer_use_preview"}]}, "'computer_use_preview'"),
        ({"tool_choice": {"type": "web_search_preview"}}, "`tool_choice`"),
        ({"include": ["message.output_text.logprobs"]}, "message.output_text.logprobs"),
        ({"background": True}, "`background`"),
        ({"truncation": "auto"}, "`truncation`"),
        ({"max_tool_calls": 3}, "`max_tool_calls`"),
        ({"text": {"format": {"type": "grammar"}}}, "`text.format` 'grammar'"),
        ({"reasoning": {"effort": "low", "budget": 5}}, "`reasoning` translates only"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]: `item_reference`"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "'web_search_call' items"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0]: only images sent as `image_url`",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]: only files sent inline",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "content part 'input_audio'",
        ),
        ({"input": [{"role": "user", "content": "x", "name": "bob"}]}, "input[0].name"),
    ],
)
def test_untranslatable_requests_name_what(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(Untranslatable, match=message.replace("[", r"\[").replace("]", r"\]")):
        responses_to_chat(request(**fields))


def test_a_tool_result_with_an_image_is_untranslatable() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    output = {
        "type": "function_call_output",
        "call_id": "c1",
        "output": [{"type": "input_image", "image_url": "https://x/y.png"}],
    }
    with pytest.raises(Untranslatable, match="tool result holds text only"):
        responses_to_chat(request(input=[call, output]))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input": []}, "`input` must be a string or a non-empty list"),
        ({"input": None}, "`input` must be"),
        ({"input": [3]}, r"input\[0\] must be an object"),
        ({"input": [{"role": "tool", "content": "x"}]}, r"input\[0\].role must be one of"),
        ({"input": [{"role": "user", "content": 5}]}, "must be a string or a list"),
        ({"instructions": ["x"]}, "`instructions` must be a string"),
        ({"include": "reasoning.encrypted_content"}, "`include` must be a list"),
        ({"tools": {"type": "function"}}, "`tools` must be a list"),
        ({"tools": [{"type": "function"}]}, r"tools\[0\].name must be a string"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "an object `schema`"),
        (
            {"input": [{"type": "function_call", "call_id": "c", "name": "f"}]},
            "needs string `call_id`, `name` and `arguments`",
        ),
        (
            {"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
            "'nope' answers no earlier function_call",
        ),
    ],
)
def test_bad_requests_are_invalid_input(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        responses_to_chat(request(**fields))
    assert not isinstance(caught.value, Untranslatable)


def test_no_op_values_are_accepted_and_reasoning_items_dropped() -> None:
    reasoning_item = {"type": "reasoning", "id": "rs_1", "summary": []}
    chat = responses_to_chat(
        request(
            input=[reasoning_item, {"role": "user", "content": "x"}],
            background=False,
            service_tier="auto",
            top_logprobs=0,
            store=False,
            prompt_cache_key="k",
            safety_identifier="s",
            reasoning={"summary": "auto"},
        )
    )
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "x"}]}


# ---- answers ----


def test_text_answer_has_openais_documented_shape() -> None:
    answer = chat_to_response(fixture("chat_text.json"), request(), "resp_1", CREATED)
    documented = fixture("response_documented.json")
    assert list(answer) == list(documented)
    assert answer["output"] == [
        {
            "type": "message",
            "id": "msg_1_1",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Under a silver moon, a unicorn dreamt of stars.",
                    "annotations": [],
                    "logprobs": [],
                }
            ],
        }
    ]
    assert list(answer["output"][0]) == list(documented["output"][0])
    assert answer["usage"] == {
        "input_tokens": 36,
        "input_tokens_details": {"cached_tokens": 20},
        "output_tokens": 12,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 48,
    }
    assert (answer["status"], answer["model"], answer["store"]) == (
        "completed",
        "claude-sonnet-4-5",
        False,
    )


def test_answer_echoes_the_request() -> None:
    req = fixture("request_text.json") | {"tools": [], "tool_choice": "none"}
    answer = chat_to_response(fixture("chat_text.json"), req, "resp_1", CREATED)
    assert answer["instructions"] == "You are a terse assistant."
    assert answer["max_output_tokens"] == 200
    assert (answer["temperature"], answer["top_p"]) == (0.7, 0.9)
    assert answer["metadata"] == {"session": "abc"}
    assert (answer["user"], answer["tool_choice"], answer["created_at"]) == (
        "user-123",
        "none",
        CREATED,
    )


def test_tool_calls_and_reasoning_answer() -> None:
    answer = chat_to_response(fixture("chat_tool_calls.json"), request(), "resp_1", CREATED)
    assert answer["output"] == [
        {
            "type": "reasoning",
            "id": "rs_1_1",
            "summary": [{"type": "summary_text", "text": "The user wants two cities."}],
        },
        {
            "type": "function_call",
            "id": "fc_1_2",
            "call_id": "call_paris",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
        {
            "type": "function_call",
            "id": "fc_1_3",
            "call_id": "call_rome",
            "name": "get_weather",
            "arguments": '{"city":"Rome"}',
            "status": "completed",
        },
    ]
    assert answer["usage"]["output_tokens_details"] == {"reasoning_tokens": 15}


def test_answered_calls_round_trip_into_the_next_request() -> None:
    answer = chat_to_response(fixture("chat_tool_calls.json"), request(), "resp_1", CREATED)
    outputs = [
        {"type": "function_call_output", "call_id": item["call_id"], "output": "ok"}
        for item in answer["output"]
        if item["type"] == "function_call"
    ]
    next_input = [{"role": "user", "content": "Weather?"}, *answer["output"], *outputs]
    messages = responses_to_chat(request(input=next_input))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["call_paris", "call_rome"]
    assert [m["tool_call_id"] for m in messages[2:]] == ["call_paris", "call_rome"]


def test_length_is_incomplete_for_max_output_tokens() -> None:
    answer = chat_to_response(fixture("chat_length.json"), request(), "resp_1", CREATED)
    assert answer["status"] == "incomplete"
    assert answer["incomplete_details"] == {"reason": "max_output_tokens"}
    assert answer["output"][0]["status"] == "incomplete"


def test_content_filter_refusal_is_incomplete_and_has_no_usage() -> None:
    answer = chat_to_response(fixture("chat_content_filter.json"), request(), "resp_1", CREATED)
    assert answer["incomplete_details"] == {"reason": "content_filter"}
    assert answer["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I can't help with that."}
    ]
    assert answer["usage"] is None


def test_tool_call_without_id_gets_one() -> None:
    completion = {
        "choices": [
            {
                "message": {"tool_calls": [{"function": {"name": "f"}}]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    answer = chat_to_response(completion, request(), "resp_9", CREATED)
    assert answer["output"][0]["call_id"] == "call_9_1"
    assert answer["output"][0]["arguments"] == ""
    assert answer["model"] == "m"


def test_usage_totals_when_upstream_omits_total() -> None:
    assert response_usage({"prompt_tokens": 3, "completion_tokens": 4})["total_tokens"] == 7  # type: ignore[index]


# ---- streams ----


def test_text_stream() -> None:
    found = events(stream("stream_text.sse"))
    assert types(found) == [
        "created",
        "in_progress",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "completed",
    ]
    assert found[0]["response"]["status"] == "in_progress"
    assert [e["delta"] for e in found if e["type"] == "response.output_text.delta"] == [
        "Hello",
        " there",
    ]
    address = {"item_id": "msg_1_1", "output_index": 0, "content_index": 0}
    assert found[6] == {
        "type": "response.output_text.done",
        "sequence_number": 6,
        **address,
        "text": "Hello there",
        "logprobs": [],
    }
    completed = found[-1]["response"]
    assert completed["status"] == "completed"
    assert completed["output"] == [found[8]["item"]]
    assert completed["output"][0]["content"][0]["text"] == "Hello there"
    assert completed["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 2,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 14,
    }


def test_reasoning_text_and_tool_call_stream() -> None:
    found = events(stream("stream_tool_calls.sse"))
    assert types(found)[2:] == [
        "output_item.added",
        "reasoning_summary_part.added",
        "reasoning_summary_text.delta",
        "reasoning_summary_text.delta",
        "reasoning_summary_text.done",
        "reasoning_summary_part.done",
        "output_item.done",
        "output_item.added",
        "content_part.added",
        "output_text.delta",
        "output_text.done",
        "content_part.done",
        "output_item.done",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.delta",
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
        "function_call_arguments.done",
        "output_item.done",
        "completed",
    ]
    done = [e for e in found if e["type"] == "response.function_call_arguments.done"]
    assert [(e["item_id"], e["output_index"], e["arguments"]) for e in done] == [
        ("fc_1_3", 2, '{"city":"Paris"}'),
        ("fc_1_4", 3, '{"city":"Rome"}'),
    ]
    output = found[-1]["response"]["output"]
    assert [item["type"] for item in output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert output[0]["summary"] == [{"type": "summary_text", "text": "Two cities."}]
    assert [item["call_id"] for item in output[2:]] == ["call_paris", "call_rome"]
    assert found[-1]["response"]["usage"]["output_tokens_details"] == {"reasoning_tokens": 15}


def test_stream_answer_matches_the_whole_answer() -> None:
    """The same reply, streamed or not, gives the same output items."""
    streamed = events(stream("stream_tool_calls.sse"))[-1]["response"]["output"]
    completion = fixture("chat_tool_calls.json")
    message = completion["choices"][0]["message"]
    message["reasoning_content"], message["content"] = "Two cities.", "Checking."
    whole = chat_to_response(completion, request(), "resp_1", CREATED)["output"]
    assert streamed == whole


@pytest.mark.parametrize(
    "name", ["stream_text.sse", "stream_tool_calls.sse", "stream_length.sse", "stream_error.sse"]
)
def test_byte_by_byte_and_crlf_give_the_same_output(name: str) -> None:
    whole = stream(name)
    assert stream(name, step=1) == whole
    crlf = (FIXTURES / name).read_bytes().replace(b"\n", b"\r\n")
    for step in (None, 1):
        translator = ResponsesStream(request(), "resp_1", CREATED)
        pieces = [crlf] if step is None else [crlf[i : i + 1] for i in range(len(crlf))]
        assert b"".join(translator.feed(p) for p in pieces) + translator.close() == whole


def test_length_stream_is_incomplete() -> None:
    found = events(stream("stream_length.sse"))
    assert found[-1]["type"] == "response.incomplete"
    response = found[-1]["response"]
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"
    assert response["usage"] is None


def test_error_mid_stream_fails_the_response() -> None:
    found = events(stream("stream_error.sse"))
    assert types(found)[-1] == "failed"
    failed = found[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "overloaded_error", "message": "Overloaded"}


def test_a_stream_cut_before_its_finish_fails() -> None:
    translator = ResponsesStream(request(), "resp_1", CREATED)
    first = (FIXTURES / "stream_text.sse").read_bytes().split(b"\n\n")[1]
    output = translator.feed(first + b"\n\n") + translator.close()
    failed = events(output)[-1]
    assert failed["type"] == "response.failed"
    assert "ended before it finished" in failed["response"]["error"]["message"]
    assert translator.close() == b""
    assert translator.feed(b"data: [DONE]\n\n") == b""


def test_unterminated_last_event_and_refusal_stream() -> None:
    translator = ResponsesStream(request(), "resp_1", CREATED)
    chunk = {"choices": [{"delta": {"refusal": "No."}, "finish_reason": "content_filter"}]}
    output = translator.feed(b"data: " + orjson.dumps(chunk)) + translator.close()
    found = events(output)
    assert types(found)[2:] == [
        "output_item.added",
        "content_part.added",
        "refusal.delta",
        "refusal.done",
        "content_part.done",
        "output_item.done",
        "incomplete",
    ]
    assert found[5]["refusal"] == "No."
    assert found[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}


def test_unreadable_chunk_fails_and_nothing_follows() -> None:
    found = events(stream_bytes(b"data: {not json\n\ndata: [DONE]\n\n"))
    assert types(found) == ["created", "in_progress", "failed"]


def test_feeding_nothing_complete_says_nothing() -> None:
    translator = ResponsesStream(request(), "resp_1", CREATED)
    assert translator.feed(b"data: {") == b""
    assert translator.feed(b": keep-alive comment") == b""


def stream_bytes(data: bytes) -> bytes:
    translator = ResponsesStream(request(), "resp_1", CREATED)
    return translator.feed(data) + translator.close()


def test_comments_and_named_events_are_read_like_plain_data() -> None:
    chunk = b'{"choices":[{"delta":{"content":"Hi"},"finish_reason":"stop"}]}'
    plain = stream_bytes(b"data: " + chunk + b"\n\ndata: [DONE]\n\n")
    named = stream_bytes(b": ping\n\nevent: chunk\ndata:" + chunk + b"\n\ndata: [DONE]\n\n")
    assert named == plain
    assert types(events(plain))[-1] == "completed"
