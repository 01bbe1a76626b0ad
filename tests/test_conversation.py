"""`conversation`: request and response bodies of OpenAI, Anthropic and Gemini turned into the
messages the request page shows, streamed responses assembled from their server-sent events as
the providers send them, and anything else falling back to the raw JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from heliograph.web.assets import Assets
from heliograph.web.conversation import (
    MAX_MESSAGES,
    MAX_TEXT_CHARS,
    MAX_TOTAL_CHARS,
    Conversation,
    Message,
    Part,
    conversation,
)
from heliograph.web.templating import Templates

PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8Dw"


def sse(*events: dict[str, Any], done: bool = False, named: bool = False) -> str:
    """Events framed as a provider sends them (Anthropic names each event)."""
    lines = []
    for event in events:
        if named:
            lines.append(f"event: {event['type']}\n")
        lines.append(f"data: {json.dumps(event)}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines)


def shape(found: Conversation) -> list[tuple[str, list[tuple[str, str, str]]]]:
    return [(m.role, [(p.kind, p.name, p.text) for p in m.parts]) for m in found.messages]


def answer(found: Conversation) -> list[Message]:
    return [message for message in found.messages if message.in_response]


# OpenAI


def test_openai_chat_with_an_image_tool_calls_and_a_tool_result() -> None:
    request = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be careful."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": PNG}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"word":"wind"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "moving air"},
        ],
    }
    response = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check.",
                    "tool_calls": [
                        {"id": "c2", "function": {"name": "search", "arguments": "not json"}}
                    ],
                },
            }
        ]
    }
    found = conversation(request, response)
    assert shape(found) == [
        ("system", [("text", "", "Be careful.")]),
        (
            "user",
            [
                ("text", "", "What is this?"),
                ("image", "", PNG),
                ("link", "", "https://example.com/cat.png"),
            ],
        ),
        ("assistant", [("tool_call", "lookup", '{\n  "word": "wind"\n}')]),
        ("tool", [("tool_result", "call_1", "moving air")]),
        ("assistant", [("text", "", "Let me check."), ("tool_call", "search", "not json")]),
    ]
    assert [m.in_response for m in found.messages] == [False] * 4 + [True]
    assert [m.style for m in found.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert found.notes == ()


def test_an_openai_error_response_is_an_error_message() -> None:
    found = conversation(
        {"messages": [{"role": "user", "content": "x"}]},
        {"error": {"message": "boom", "type": "server_error"}},
    )
    assert shape(found)[-1] == ("error", [("text", "", "boom")])


def test_openai_responses_api_input_and_output() -> None:
    request = {
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "function_call", "name": "weather", "arguments": '{"city":"Oslo"}'},
            {"type": "function_call_output", "call_id": "fc_1", "output": "cold"},
        ],
    }
    response = {
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thought"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Cold."}],
            },
        ]
    }
    assert shape(conversation(request, response)) == [
        ("system", [("text", "", "Be brief.")]),
        ("user", [("text", "", "Weather?")]),
        ("assistant", [("tool_call", "weather", '{\n  "city": "Oslo"\n}')]),
        ("tool", [("tool_result", "fc_1", "cold")]),
        ("assistant", [("thinking", "", "thought")]),
        ("assistant", [("text", "", "Cold.")]),
    ]
    assert shape(conversation({"input": "Hi"}, None)) == [("user", [("text", "", "Hi")])]


# Anthropic


def test_anthropic_system_blocks_tool_use_tool_result_image_and_thinking() -> None:
    request = {
        "system": [{"type": "text", "text": "You are terse."}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG[22:]},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Need a tool.", "signature": "x"},
                    {"type": "tool_use", "id": "tu_1", "name": "zoom", "input": {"factor": 2}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "tu_1",
                        "content": [{"type": "text", "text": "zoomed"}],
                    }
                ],
            },
        ],
    }
    response = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "A pixel."}],
    }
    assert shape(conversation(request, response)) == [
        ("system", [("text", "", "You are terse.")]),
        ("user", [("text", "", "Look"), ("image", "", PNG)]),
        (
            "assistant",
            [("thinking", "", "Need a tool."), ("tool_call", "zoom", '{\n  "factor": 2\n}')],
        ),
        ("user", [("tool_result", "tu_1", "zoomed")]),
        ("assistant", [("text", "", "A pixel.")]),
    ]


def test_anthropic_system_string_and_a_remote_image_is_only_a_link() -> None:
    request = {
        "system": "Short answers.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}
                ],
            }
        ],
    }
    assert shape(conversation(request, None)) == [
        ("system", [("text", "", "Short answers.")]),
        ("user", [("link", "", "https://x.test/a.png")]),
    ]


# Gemini


def test_gemini_system_instruction_parts_function_call_response_and_inline_data() -> None:
    request = {
        "systemInstruction": {"parts": [{"text": "Be kind."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Describe"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG[22:]}},
                ],
            },
            {"role": "model", "parts": [{"functionCall": {"name": "see", "args": {"x": 1}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "see", "response": {"ok": True}}}],
            },
        ],
    }
    response = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "A dot."}]}}],
    }
    found = conversation(request, response)
    assert shape(found) == [
        ("system", [("text", "", "Be kind.")]),
        ("user", [("text", "", "Describe"), ("image", "", PNG)]),
        ("model", [("tool_call", "see", '{\n  "x": 1\n}')]),
        ("user", [("tool_result", "see", '{\n  "ok": true\n}')]),
        ("model", [("text", "", "A dot.")]),
    ]
    assert found.messages[-1].style == "assistant"


# Streams


def test_a_streamed_openai_response_is_assembled_with_its_tool_call_arguments() -> None:
    def chunk(delta: dict[str, Any]) -> dict[str, Any]:
        return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}

    call = {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "add", "arguments": ""},
    }
    body = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hello, "}),
        chunk({"content": "wörld"}),
        chunk({"tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        {"choices": [], "usage": {"prompt_tokens": 3}},
        done=True,
    )
    found = conversation({"messages": [{"role": "user", "content": "hi"}]}, body)
    assert shape(found)[-1] == (
        "assistant",
        [("text", "", "Hello, wörld"), ("tool_call", "add", '{\n  "a": 1\n}')],
    )


def test_a_streamed_anthropic_response_is_assembled() -> None:
    body = sse(
        {"type": "message_start", "message": {"role": "assistant", "content": []}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Hm"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Bacal"},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "hau"}},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "t", "name": "cook", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"dish"'},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ': "x"}'},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 5},
        },
        {"type": "message_stop"},
        named=True,
    )
    found = conversation({"messages": [{"role": "user", "content": "dish?"}]}, body)
    assert answer(found)[0].parts == (
        Part("thinking", "Hm"),
        Part("text", "Bacalhau"),
        Part("tool_call", '{\n  "dish": "x"\n}', "cook"),
    )


def test_a_streamed_gemini_response_is_assembled_from_sse_or_a_json_array() -> None:
    chunks: list[dict[str, Any]] = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"functionCall": {"name": "f", "args": {}}}],
                    }
                }
            ],
            "usageMetadata": {"totalTokenCount": 4},
        },
    ]
    expected = [("model", [("text", "", "Hello"), ("tool_call", "f", "{}")])]
    request = {"contents": [{"parts": [{"text": "hi"}]}]}
    assert shape(conversation(request, sse(*chunks)))[1:] == expected
    assert shape(conversation(request, chunks))[1:] == expected


def test_a_streamed_responses_api_answer_uses_its_completed_event() -> None:
    body = sse(
        {"type": "response.created", "response": {"output": []}},
        {"type": "response.output_text.delta", "delta": "Hi"},
        {
            "type": "response.completed",
            "response": {
                "output": [
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": "Hi"}],
                    }
                ]
            },
        },
    )
    assert shape(conversation({"input": "x"}, body))[-1] == ("assistant", [("text", "", "Hi")])


# Fallbacks and caps


@pytest.mark.parametrize(
    "request_body",
    [
        "plain text that is not JSON",
        {"something": "else"},
        [1, 2, 3],
        {"messages": "not a list"},
        {"contents": [{"parts": "nope"}]},
        {"messages": [42, {"role": "user", "content": {"odd": True}}]},
        12.5,
    ],
)
def test_unknown_or_malformed_bodies_never_raise(request_body: Any) -> None:
    found = conversation(request_body, "data: {not json\n\n")
    assert isinstance(found, Conversation)
    for message in found.messages:
        assert all(isinstance(part.text, str) for part in message.parts)


def test_an_unknown_shape_says_so_and_shows_nothing() -> None:
    found = conversation({"something": "else"}, {"also": "unknown"})
    assert found.messages == ()
    assert len(found.notes) == 2
    assert conversation(None, None) == Conversation()


def test_odd_blocks_fall_back_to_json() -> None:
    found = conversation(
        {"messages": [{"role": "user", "content": [{"type": "audio", "x": 1}]}]}, None
    )
    assert shape(found) == [("user", [("json", "", '{\n  "type": "audio",\n  "x": 1\n}')])]


def test_unsafe_image_urls_are_not_images() -> None:
    svg = "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="
    script = "javascript:alert(1)"
    content = [{"type": "image_url", "image_url": {"url": url}} for url in (svg, script)]
    found = conversation({"messages": [{"role": "user", "content": content}]}, None)
    kinds = [(part.kind, part.text) for part in found.messages[0].parts]
    assert kinds[0][0] == "note"
    assert "image/svg+xml" in kinds[0][1]
    assert kinds[1] == ("link", script)  # the template links only http(s) URLs


def test_long_texts_and_long_conversations_are_capped() -> None:
    many = [{"role": "user", "content": "x" * (MAX_TEXT_CHARS + 10)}] + [
        {"role": "user", "content": str(n)} for n in range(MAX_MESSAGES + 5)
    ]
    found = conversation({"messages": many}, None)
    assert len(found.messages) == MAX_MESSAGES
    first = found.messages[0].parts[0]
    assert first.truncated
    assert len(first.text) == MAX_TEXT_CHARS
    assert any(
        f"first {MAX_MESSAGES} of the request's {MAX_MESSAGES + 6}" in n for n in found.notes
    )


def test_the_response_is_kept_when_the_request_is_too_big_for_one_page() -> None:
    texts = [{"role": "user", "content": "y" * MAX_TEXT_CHARS} for _ in range(15)]
    response = {"choices": [{"message": {"role": "assistant", "content": "done"}}]}
    found = conversation({"messages": texts}, response)
    fitting = MAX_TOTAL_CHARS // MAX_TEXT_CHARS - 1  # the answer's characters push out a tenth
    assert len(found.messages) == fitting + 1
    assert found.messages[-1].parts == (Part("text", "done"),)
    assert found.notes == (f"Showing the first {fitting} of the request's 15 messages.",)


def test_a_huge_inline_image_is_described_not_shown() -> None:
    huge = "data:image/png;base64," + "A" * 300_000
    found = conversation(
        {
            "messages": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": huge}}]}
            ]
        },
        None,
    )
    (part,) = found.messages[0].parts
    assert part.kind == "note"
    assert "too large" in part.text


def test_the_template_links_only_web_urls_and_escapes_every_text() -> None:
    request = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "<script>alert(1)</script>"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}},
                    {"type": "image_url", "image_url": {"url": PNG}},
                ],
            },
            {"role": "<b>odd</b>", "content": "hi"},
        ]
    }
    template = Templates(Assets()).environment.get_template("conversation.html")
    html = template.render(conversation=conversation(request, None), row={})
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<a href="https://x.test/a.png" rel="noopener noreferrer nofollow">' in html
    assert 'href="javascript:' not in html
    assert "<code>javascript:alert(1)</code>" in html
    assert f'src="{PNG}"' in html
    assert "<b>" not in html
    assert 'class="message role-other"' in html
