"""OpenAI chat completions ⇄ Anthropic Messages: the request body, the response, the stream
event by event, and errors. Anything OpenAI's request says that Anthropic cannot honour is
refused with `Untranslatable` naming it, never dropped.

Decisions the caller should know:

- Top-level fields are an allow-list. Accepted as no-ops: `stream_options` (usage in streams is
  `MessagesStream`'s job), `model` (the caller picks the upstream model), and fields set to what
  OpenAI does by default anyway: `n: 1`, `logprobs: false`, zero penalties, `store: false`,
  `modalities: ["text"]`. Any field set to null counts as absent.
- Anthropic requires `max_tokens`: absent, it is `DEFAULT_MAX_TOKENS` (4096), plus the thinking
  budget when thinking is on. `max_completion_tokens` wins over `max_tokens`.
- System and developer messages are hoisted, in order, into `system` (a string for one message,
  text blocks for several), since Anthropic has no system turns. Consecutive same-role turns are
  merged; `role: tool` messages become `tool_result` blocks in a user turn.
- JSON mode and structured outputs (`response_format`) become one forced tool, `JSON_TOOL`, whose
  input schema is the requested one (any object for `json_object`); its input comes back as the
  message content with finish reason `stop`. It cannot be combined with `tools` (the forced tool
  would silence them) or with reasoning (Anthropic refuses forced tools while thinking).
- `reasoning_effort` becomes `thinking` with the budget in `THINKING_BUDGETS` (kept below
  `max_tokens`; `none` turns thinking off). Thinking comes back as `reasoning_content`. An earlier
  assistant turn's `reasoning_content` is dropped: Anthropic needs its signature, which OpenAI's
  shape does not carry, and ignores earlier turns' thinking anyway.
- A function's `strict` and an image's `detail` are accepted and dropped: Anthropic has neither.
- Usage: `prompt_tokens` counts cache reads and cache writes (OpenAI counts cached tokens in its
  prompt); `prompt_tokens_details` holds `cached_tokens` (reads) and `cache_creation_tokens`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.providers.sse import as_int
from heliograph.translation.chat_shape import assistant_message, completion, usage_with_cache
from heliograph.translation.errors import Untranslatable
from heliograph.translation.sse_events import SseEvents

JSON_TOOL = "heliograph_json_response"
DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
MIN_THINKING_BUDGET = 1024

_TRANSLATED = frozenset(
    {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop"}
    | {"user", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls"}
    | {"response_format", "reasoning_effort"}
)
# Fields accepted only at the value that makes them a no-op.
_NO_OP_VALUES: dict[str, Any] = {
    "n": 1,
    "logprobs": False,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "store": False,
    "modalities": ["text"],
}
_MESSAGE_KEYS = {
    "system": frozenset({"role", "content"}),
    "developer": frozenset({"role", "content"}),
    "user": frozenset({"role", "content"}),
    "assistant": frozenset({"role", "content", "tool_calls", "refusal", "reasoning_content"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
}
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Anthropic error type → OpenAI's `type`; `code` is OpenAI's code where it has one.
_ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "invalid_request_error",
    "permission_error": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "billing_error": "insufficient_quota",
    "rate_limit_error": "rate_limit_error",
    "timeout_error": "server_error",
    "api_error": "server_error",
    "overloaded_error": "server_error",
}
_ERROR_CODES = {
    "authentication_error": "invalid_api_key",
    "billing_error": "insufficient_quota",
    "rate_limit_error": "rate_limit_exceeded",
}
_STATUS_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}

Block = dict[str, Any]
Content = str | list[Block]


# ---- request: OpenAI chat → Anthropic Messages ----


def chat_to_messages(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """The Anthropic Messages request for OpenAI chat request `chat`, sent to `model`."""
    _refuse_unknown_fields(chat)
    messages = chat.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("`messages` must be a non-empty list")
    system, turns = _turns(messages)
    request: dict[str, Any] = {"model": model, "max_tokens": 0, "messages": turns}
    if system is not None:
        request["system"] = system
    _add_sampling(chat, request)
    _add_tools(chat, request)
    _add_response_format(chat, request)
    _add_max_tokens_and_thinking(chat, request)
    if chat.get("stream"):
        request["stream"] = True
    return request


def _refuse_unknown_fields(chat: dict[str, Any]) -> None:
    for field, value in chat.items():
        if value is None or field in _TRANSLATED:
            continue
        if field in _NO_OP_VALUES and value == _NO_OP_VALUES[field]:
            continue
        raise Untranslatable(f"`{field}` has no equivalent in Anthropic's Messages API")


def _turns(messages: list[Any]) -> tuple[Content | None, list[Block]]:
    system: list[Block] = []
    turns: list[Block] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = _checked_role(message, where)
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{where}.content"))
        elif role == "user":
            _append_turn(turns, "user", _user_content(message.get("content"), f"{where}.content"))
        elif role == "assistant":
            _append_turn(turns, "assistant", _assistant_content(message, where))
        else:
            _append_turn(turns, "user", [_tool_result(message, where)])
    if len(system) == 1:
        return system[0]["text"], turns
    return system or None, turns


def _checked_role(message: Any, where: str) -> str:
    if not isinstance(message, dict):
        raise InvalidInput(f"{where} must be an object")
    role = message.get("role")
    allowed = _MESSAGE_KEYS.get(role) if isinstance(role, str) else None
    if allowed is None:
        raise Untranslatable(f"{where}: role {role!r} has no equivalent in Anthropic's API")
    for key, value in message.items():
        if value is not None and key not in allowed:
            raise Untranslatable(f"{where}.{key} has no equivalent in Anthropic's Messages API")
    return str(role)


def _append_turn(turns: list[Block], role: str, content: Content) -> None:
    """Anthropic wants user and assistant turns to alternate, so same-role turns are merged."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"] = _as_blocks(turns[-1]["content"]) + _as_blocks(content)
    else:
        turns.append({"role": role, "content": content})


def _as_blocks(content: Content) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []  # no empty text blocks
    return content


def _text_blocks(content: Any, where: str) -> list[Block]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [_text_part(part, f"{where}[{i}]") for i, part in enumerate(_parts(content, where))]


def _parts(content: Any, where: str) -> list[Any]:
    if not isinstance(content, list):
        raise InvalidInput(f"{where} must be a string or a list of content parts")
    return content


def _text_part(part: Any, where: str) -> Block:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "text", "text": part["refusal"]}
    raise Untranslatable(f"{where}: only text parts can be translated here, not {kind!r}")


def _user_content(content: Any, where: str) -> Content:
    if isinstance(content, str):
        return content
    return [_user_part(part, f"{where}[{i}]") for i, part in enumerate(_parts(content, where))]


def _user_part(part: Any, where: str) -> Block:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "image_url":
        return _image(part.get("image_url"), where)
    if kind == "file":
        return _document(part.get("file"), where)
    return _text_part(part, where)


def _image(image: Any, where: str) -> Block:
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str):
        raise InvalidInput(f"{where}.image_url.url must be a string")
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = _data_url(url, where)
    if media_type not in _IMAGE_TYPES:
        raise Untranslatable(f"{where}: Anthropic accepts JPEG, PNG, GIF or WebP, not {media_type}")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document(file: Any, where: str) -> Block:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise Untranslatable(f"{where}: only files sent inline as `file_data` can be translated")
    media_type, data = _data_url(data_url, where)
    if media_type != "application/pdf":
        raise Untranslatable(f"{where}: Anthropic documents must be PDF, not {media_type}")
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, comma, data = url.partition(",")
    params = header.removeprefix("data:").split(";")
    if not url.startswith("data:") or not comma or "base64" not in params[1:]:
        raise Untranslatable(f"{where}: only http(s) URLs and base64 data URLs can be translated")
    return params[0], data


def _assistant_content(message: dict[str, Any], where: str) -> Content:
    content, calls = message.get("content"), message.get("tool_calls") or []
    refusal = message.get("refusal")
    if isinstance(content, str) and not calls and refusal is None:
        return content
    blocks = [] if content is None else _text_blocks(content, f"{where}.content")
    if isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    if not isinstance(calls, list):
        raise InvalidInput(f"{where}.tool_calls must be a list")
    blocks.extend(_tool_use(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(calls))
    return blocks


def _tool_use(call: Any, where: str) -> Block:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or call.get("type", "function") != "function":
        raise Untranslatable(f"{where}: only function tool calls can be translated")
    call_id, name = call.get("id"), function.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise InvalidInput(f"{where} needs a string `id` and `function.name`")
    return {"type": "tool_use", "id": call_id, "name": name, "input": _arguments(function, where)}


def _arguments(function: dict[str, Any], where: str) -> Any:
    arguments = function.get("arguments") or "{}"
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise Untranslatable(f"{where}.function.arguments must be a JSON object for Anthropic")
    return value


def _tool_result(message: dict[str, Any], where: str) -> Block:
    call_id, content = message.get("tool_call_id"), message.get("content")
    if not isinstance(call_id, str):
        raise InvalidInput(f"{where}.tool_call_id must be a string")
    result = content if isinstance(content, str) else _text_blocks(content, f"{where}.content")
    return {"type": "tool_result", "tool_use_id": call_id, "content": result}


def _add_sampling(chat: dict[str, Any], request: dict[str, Any]) -> None:
    temperature = chat.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float):
            raise InvalidInput("`temperature` must be a number")
        if temperature > 1:
            raise Untranslatable("`temperature` above 1 has no equivalent: Anthropic's is 0 to 1")
        request["temperature"] = temperature
    if chat.get("top_p") is not None:
        request["top_p"] = chat["top_p"]
    stop = chat.get("stop")
    if stop:
        request["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    if chat.get("user") is not None:
        request["metadata"] = {"user_id": chat["user"]}


def _add_tools(chat: dict[str, Any], request: dict[str, Any]) -> None:
    tools, choice = chat.get("tools"), chat.get("tool_choice")
    if not tools:
        if choice not in (None, "none", "auto"):
            raise InvalidInput("`tool_choice` needs `tools`")
        return
    if not isinstance(tools, list):
        raise InvalidInput("`tools` must be a list")
    request["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    anthropic_choice = _tool_choice(choice)
    if chat.get("parallel_tool_calls") is False and anthropic_choice["type"] != "none":
        anthropic_choice["disable_parallel_tool_use"] = True
    if choice is not None or len(anthropic_choice) > 1:
        request["tool_choice"] = anthropic_choice


def _tool(tool: Any, where: str) -> Block:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function":
        raise Untranslatable(f"{where}: only function tools can be translated")
    name = function.get("name")
    if not isinstance(name, str):
        raise InvalidInput(f"{where}.function.name must be a string")
    if name == JSON_TOOL:
        raise Untranslatable(f"{where}: the tool name {JSON_TOOL} is reserved for JSON mode")
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    translated: Block = {"name": name, "input_schema": schema}
    if function.get("description"):
        translated["description"] = function["description"]
    return translated


def _tool_choice(choice: Any) -> Block:
    named = {"auto": "auto", "none": "none", "required": "any"}
    if choice is None or (isinstance(choice, str) and choice in named):
        return {"type": named[choice or "auto"]}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise Untranslatable(f"`tool_choice` {choice!r} has no equivalent in Anthropic's API")


def _add_response_format(chat: dict[str, Any], request: dict[str, Any]) -> None:
    response_format = chat.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if response_format is None or kind == "text":
        return
    if kind not in ("json_object", "json_schema"):
        raise Untranslatable(f"`response_format` {kind!r} has no equivalent in Anthropic's API")
    if "tools" in request:
        raise Untranslatable("`response_format` with `tools`: JSON mode is a forced tool here")
    if chat.get("reasoning_effort") not in (None, "none"):
        raise Untranslatable(
            "`response_format` with `reasoning_effort`: Anthropic forbids forced tools in thinking"
        )
    request["tools"] = [_json_tool(response_format)]
    request["tool_choice"] = {"type": "tool", "name": JSON_TOOL}


def _json_tool(response_format: dict[str, Any]) -> Block:
    spec = response_format.get("json_schema")
    if response_format["type"] == "json_object":
        return {
            "name": JSON_TOOL,
            "description": "Respond with a JSON object.",
            "input_schema": {"type": "object"},
        }
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(schema, dict) or schema.get("type") != "object":
        raise Untranslatable(
            "`response_format.json_schema.schema` must describe an object for Anthropic"
        )
    description = (
        spec.get("description") or f"Respond with JSON matching the schema {spec.get('name')}."
    )
    return {"name": JSON_TOOL, "description": description, "input_schema": schema}


def _add_max_tokens_and_thinking(chat: dict[str, Any], request: dict[str, Any]) -> None:
    asked = _asked_max_tokens(chat)
    budget = _thinking_budget(chat.get("reasoning_effort"))
    if budget is None:
        request["max_tokens"] = asked or DEFAULT_MAX_TOKENS
        return
    if asked is not None and asked <= MIN_THINKING_BUDGET:
        raise Untranslatable(
            f"`reasoning_effort` needs more than {MIN_THINKING_BUDGET} max tokens on Anthropic"
        )
    max_tokens = asked or budget + DEFAULT_MAX_TOKENS
    request["max_tokens"] = max_tokens
    request["thinking"] = {"type": "enabled", "budget_tokens": min(budget, max_tokens - 1)}


def _asked_max_tokens(chat: dict[str, Any]) -> int | None:
    field = (
        "max_completion_tokens" if chat.get("max_completion_tokens") is not None else "max_tokens"
    )
    if chat.get(field) is None:
        return None
    asked = as_int(chat[field])
    if asked is None or asked < 1:
        raise InvalidInput(f"`{field}` must be a positive integer")
    return asked


def _thinking_budget(effort: Any) -> int | None:
    if effort is None or effort == "none":
        return None
    if effort not in THINKING_BUDGETS:
        raise Untranslatable(f"`reasoning_effort` {effort!r} has no equivalent in Anthropic's API")
    return THINKING_BUDGETS[effort]


# ---- response: Anthropic message → OpenAI chat.completion ----


def messages_to_chat(
    response: dict[str, Any], model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """The OpenAI `chat.completion` object for Anthropic message `response`."""
    texts, reasoning, calls = [], [], []
    for block in response.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            reasoning.append(block.get("thinking", ""))
        elif kind == "tool_use" and block.get("name") == JSON_TOOL:
            texts.append(orjson.dumps(block.get("input")).decode())
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    choice = {
        "index": 0,
        "message": assistant_message(texts, reasoning, calls),
        "logprobs": None,
        "finish_reason": _finish_reason(response.get("stop_reason"), bool(calls)),
    }
    return completion(completion_id, created, model, [choice], chat_usage(response.get("usage")))


def _tool_call(block: Block) -> Block:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    function = {"name": block.get("name"), "arguments": arguments}
    return {"id": block.get("id"), "type": "function", "function": function}


def _finish_reason(stop_reason: Any, called_tools: bool) -> str | None:
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and not called_tools:
        return "stop"  # only JSON mode's forced tool was used: its input is the content
    return _FINISH_REASONS.get(stop_reason, "stop")


def chat_usage(usage: Any) -> dict[str, Any]:
    """OpenAI's usage object for Anthropic's, whose input excludes cached tokens."""
    usage = usage if isinstance(usage, dict) else {}
    return usage_with_cache(
        as_int(usage.get("input_tokens")) or 0,
        as_int(usage.get("cache_read_input_tokens")) or 0,
        as_int(usage.get("cache_creation_input_tokens")) or 0,
        as_int(usage.get("output_tokens")) or 0,
    )


# ---- errors ----


def error_to_openai(status: int, body: bytes) -> dict[str, Any]:
    """OpenAI's error object for an Anthropic error answer (or anything unparseable)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        return _openai_error(error["type"], str(error.get("message") or error["type"]))
    kind = _STATUS_ERRORS.get(status, "invalid_request_error" if status < 500 else "api_error")
    text = body[:500].decode("utf-8", "replace").strip()
    return _openai_error(
        kind, f"Anthropic answered {status}: {text}" if text else f"Anthropic answered {status}"
    )


def _openai_error(kind: str, message: str) -> dict[str, Any]:
    error_type = _ERROR_TYPES.get(kind, "server_error")
    code = _ERROR_CODES.get(kind, kind)
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


# ---- streams: Anthropic SSE → OpenAI SSE ----


class MessagesStream:
    """Turns Anthropic's stream into OpenAI chunks as bytes arrive, one event at a time."""

    def __init__(self, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._prefix = (
            b"data: " + orjson.dumps(self._head)[:-1] + b',"choices":[{"index":0,"delta":'
        )
        self._tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        self._include_usage = include_usage
        self._events = SseEvents()
        self._tool_indexes: dict[int, int] = {}  # Anthropic block index → OpenAI tool call index
        self._json_blocks: set[int] = set()
        self._usage: dict[str, Any] = {}
        self._failed = self._closed = False
        self._handlers: dict[str, Callable[[dict[str, Any]], bytes]] = {
            "message_start": self._on_message_start,
            "content_block_start": self._on_block_start,
            "content_block_delta": self._on_block_delta,
            "message_delta": self._on_message_delta,
            "error": self._on_error,
        }

    def feed(self, data: bytes) -> bytes:
        """OpenAI SSE bytes for every event `data` completes; b"" when none is complete yet."""
        out = []
        for event in self._events.feed(data):
            if self._failed:
                break
            out.append(self._on_event(event))
        return b"".join(out)

    def close(self) -> bytes:
        """The usage chunk (when asked for and the stream did not fail) and `[DONE]`, once."""
        if self._closed:
            return b""
        out = b""
        rest = self._events.rest()
        if not self._failed and rest:
            out = self._on_event(rest)  # the last event lacked its blank line
        self._closed = True
        if self._include_usage and self._usage and not self._failed:
            chunk = {**self._head, "choices": [], "usage": chat_usage(self._usage)}
            out += b"data: " + orjson.dumps(chunk) + b"\n\n"
        return out + b"data: [DONE]\n\n"

    def _on_event(self, raw: bytes) -> bytes:
        lines = [line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
        if not lines:
            return b""
        try:
            event = orjson.loads(b"\n".join(lines))
        except orjson.JSONDecodeError:
            return b""  # not an event Anthropic documents; nothing to translate
        if not isinstance(event, dict):
            return b""
        handler = self._handlers.get(str(event.get("type")))
        return handler(event) if handler else b""

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        finish = b"null" if finish_reason is None else b'"' + finish_reason.encode() + b'"'
        return (
            self._prefix
            + orjson.dumps(delta)
            + b',"logprobs":null,"finish_reason":'
            + finish
            + b"}]"
            + self._tail
        )

    def _on_message_start(self, event: dict[str, Any]) -> bytes:
        message = event.get("message")
        self._merge_usage(message.get("usage") if isinstance(message, dict) else None)
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def _on_block_start(self, event: dict[str, Any]) -> bytes:
        block, index = event.get("content_block") or {}, event.get("index")
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return self._chunk({"content": block["text"]})
        if kind != "tool_use" or not isinstance(index, int):
            return b""
        if block.get("name") == JSON_TOOL:
            self._json_blocks.add(index)
            return b""
        call_index = self._tool_indexes[index] = len(self._tool_indexes)
        function = {"name": block.get("name"), "arguments": ""}
        call = {
            "index": call_index,
            "id": block.get("id"),
            "type": "function",
            "function": function,
        }
        return self._chunk({"tool_calls": [call]})

    def _on_block_delta(self, event: dict[str, Any]) -> bytes:
        delta, index = event.get("delta") or {}, event.get("index")
        kind = delta.get("type")
        if kind == "text_delta":
            return self._chunk({"content": delta.get("text", "")})
        if kind == "thinking_delta":
            return self._chunk({"reasoning_content": delta.get("thinking", "")})
        if kind != "input_json_delta":
            return b""  # signatures and citations have no OpenAI counterpart
        fragment = delta.get("partial_json")
        if not fragment:
            return b""  # Anthropic opens each tool input with an empty fragment
        if index in self._json_blocks:
            return self._chunk({"content": fragment})
        if index not in self._tool_indexes:
            return b""
        call = {"index": self._tool_indexes[index], "function": {"arguments": fragment}}
        return self._chunk({"tool_calls": [call]})

    def _on_message_delta(self, event: dict[str, Any]) -> bytes:
        self._merge_usage(event.get("usage"))
        delta = event.get("delta") or {}
        finish = _finish_reason(delta.get("stop_reason"), bool(self._tool_indexes))
        return self._chunk({}, finish) if finish else b""

    def _on_error(self, event: dict[str, Any]) -> bytes:
        self._failed = True
        error = event.get("error")
        error = error if isinstance(error, dict) else {}
        kind = error["type"] if isinstance(error.get("type"), str) else "api_error"
        translated = _openai_error(kind, str(error.get("message") or kind))
        return b"data: " + orjson.dumps(translated) + b"\n\n"

    def _merge_usage(self, usage: Any) -> None:
        """A stream's usage is split: input at message_start, output at message_delta."""
        if isinstance(usage, dict):
            self._usage.update((key, value) for key, value in usage.items() if value is not None)
