"""A span's bodies: what it says was sent and answered, rebuilt from its attributes (indexed
messages, GenAI JSON messages, OpenInference's raw values) as the OpenAI-shaped JSON the
dashboard shows, and the model its invocation parameters name."""

from __future__ import annotations

from typing import Any

import orjson

from heliograph.domain.json_values import clean_json
from heliograph.ingest.otlp_dialects import (
    MAX_KEY_CHARS,
    Attributes,
    as_text,
    cap,
    objects,
    secret,
    small_number,
)

MAX_MESSAGES = 1_000  # prompt or completion messages rebuilt from attributes


def request_body(attributes: Attributes, model: str) -> bytes:
    sent = attributes.get("input.value")
    if isinstance(_json(sent), dict):  # OpenInference keeps the request itself, as sent
        return str(sent).encode()
    body: dict[str, Any] = {"model": model} if model else {}
    parameters = _json_object(attributes.get("llm.invocation_parameters")) or {}
    # A client's parameters may include its key (`api_key`): never stored with the request.
    body.update({key: value for key, value in parameters.items() if not secret(key, value)})
    messages = (
        _indexed_messages(attributes, "gen_ai.prompt", "")
        or _indexed_messages(attributes, "llm.input_messages", "message.")
        or _semconv_messages(attributes.get("gen_ai.input.messages"))
        or _text_message("user", attributes.get("input.value"))
    )
    if messages:
        body["messages"] = messages
    return orjson.dumps(body) if messages else b""


def response_body(attributes: Attributes, model: str) -> bytes:
    answered = attributes.get("output.value")
    if isinstance(_json(answered), dict):
        return str(answered).encode()
    messages = (
        _indexed_messages(attributes, "gen_ai.completion", "")
        or _indexed_messages(attributes, "llm.output_messages", "message.")
        or _semconv_messages(attributes.get("gen_ai.output.messages"))
        or _text_message("assistant", attributes.get("output.value"))
    )
    if not messages:
        return b""
    choices = [
        {"index": index, "message": message, "finish_reason": message.pop("finish_reason", None)}
        for index, message in enumerate(messages)
    ]
    return orjson.dumps({"object": "chat.completion", "model": model, "choices": choices})


def _indexed_messages(attributes: Attributes, prefix: str, inner: str) -> list[dict[str, Any]]:
    """Messages from `prefix.N.{inner}role`, `.content` (or content parts) and `.tool_calls.M.*`."""
    indexed = _indexed(attributes, prefix + ".")
    return [
        _message({key.removeprefix(inner): value for key, value in fields.items()})
        for _, fields in sorted(indexed.items())
    ]


def _indexed(attributes: Attributes, start: str) -> dict[int, Attributes]:
    """`start.N.rest` keys grouped by N (below `MAX_MESSAGES`), each as {rest: value}."""
    indexed: dict[int, Attributes] = {}
    for key, value in attributes.items():
        if key.startswith(start):
            index, _, rest = key[len(start) :].partition(".")
            if small_number(index) and int(index) < MAX_MESSAGES and rest:
                indexed.setdefault(int(index), {})[rest] = value
    return indexed


def _message(fields: Attributes) -> dict[str, Any]:
    content = fields.get("content")
    if content is None:  # OpenInference's parts: contents.N.message_content.text
        parts = sorted(_indexed(fields, "contents.").items())
        content = "\n".join(
            as_text(part["message_content.text"])
            for _, part in parts
            if "message_content.text" in part
        )
    message: dict[str, Any] = {
        "role": as_text(fields.get("role") or "user"),
        "content": as_text(content),
    }
    calls = sorted(_indexed(fields, "tool_calls.").items())
    if calls:  # OpenLLMetry: tool_calls.N.name; OpenInference: tool_calls.N.tool_call.function.name
        message["tool_calls"] = [_tool_call(call) for _, call in calls]
    if fields.get("finish_reason"):
        message["finish_reason"] = as_text(fields["finish_reason"])
    return message


def _tool_call(call: Attributes) -> dict[str, Any]:
    def get(name: str) -> str:
        return as_text(call.get(name) or call.get(f"tool_call.{name}") or "")

    return {
        "id": get("id"),
        "type": "function",
        "function": {
            "name": get("name") or get("function.name"),
            "arguments": get("arguments") or get("function.arguments"),
        },
    }


def _semconv_messages(value: Any) -> list[dict[str, Any]]:
    """The GenAI convention's `[{role, parts: [{type: text, content}]}]` JSON."""
    listed = _json(value)
    if not isinstance(listed, list):
        return []
    messages = []
    for item in listed[:MAX_MESSAGES]:
        if isinstance(item, dict):
            texts = [
                as_text(part.get("content"))
                for part in objects(item.get("parts"))
                if part.get("type") == "text"
            ]
            message = {"role": as_text(item.get("role") or "user"), "content": "\n".join(texts)}
            if item.get("finish_reason"):
                message["finish_reason"] = as_text(item["finish_reason"])
            messages.append(message)
    return messages


def _text_message(role: str, value: Any) -> list[dict[str, Any]]:
    return [{"role": role, "content": as_text(value)}] if isinstance(value, str) and value else []


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return None


def _json_object(value: Any) -> dict[str, Any] | None:
    parsed = _json(value)
    try:
        return clean_json(parsed) if isinstance(parsed, dict) else None
    except RecursionError:  # orjson takes 1,024 levels, more than Python recurses
        return None


def invocation_model(attributes: Attributes) -> str:
    parameters = _json_object(attributes.get("llm.invocation_parameters")) or {}
    model = parameters.get("model")
    return cap(model, MAX_KEY_CHARS) if isinstance(model, str) else ""
