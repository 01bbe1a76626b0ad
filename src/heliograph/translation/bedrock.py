"""OpenAI chat completions ⇄ AWS Bedrock Converse: the request path and body, the answer, the
ConverseStream events (already decoded from AWS's binary framing) one at a time, and errors.
Anything OpenAI's request says that Converse cannot honour is refused with `Untranslatable`
naming it, never dropped.

Decisions the caller should know:

- Top-level fields are an allow-list. Accepted as no-ops: `model` (the path names the model),
  `stream` and `stream_options` (the caller picks the endpoint and `ConverseStream` does usage),
  `user` (a label: it changes no answer), `parallel_tool_calls` unless false, `response_format`
  of type `text`, and `n: 1`, `logprobs: false`, zero penalties, `store: false`,
  `modalities: ["text"]`. Any field set to null counts as absent.
- JSON mode and structured outputs are refused: Converse has no JSON mode every model honours,
  and a forced tool works only on some models' `toolChoice`.
- `tool_choice: "none"` sends no `toolConfig` (a model cannot call tools it is not told about),
  unless the history holds tool calls: Converse then requires `toolConfig` and cannot forbid
  calls, so it is refused.
- `reasoning_effort` becomes Anthropic's `thinking` in `additionalModelRequestFields`, for Claude
  models only (the only family whose thinking budget Converse passes on in one documented shape);
  `maxTokens` then defaults to the budget plus `DEFAULT_MAX_TOKENS`. Thinking comes back as
  `reasoning_content`; an earlier turn's `reasoning_content` is dropped (Bedrock needs its
  signature, which OpenAI's shape does not carry).
- Images must be base64 data URLs: Converse takes image bytes only, never a URL.
- Usage: `prompt_tokens` counts cache reads and writes besides `inputTokens` (which excludes
  them, as OpenAI's prompt does not); `prompt_tokens_details` holds both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.providers.sse import as_int
from heliograph.translation.chat_shape import assistant_message, completion, usage_with_cache
from heliograph.translation.errors import Untranslatable

DEFAULT_MAX_TOKENS = 4096
THINKING_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}

# Plain model ids and inference-profile ids ("us.anthropic.claude-...-v2:0"), or Bedrock ARNs.
_MODEL_ID = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._:-]{0,255}"
    r"|arn:aws(?:-[a-z-]{1,12})?:bedrock:[a-z0-9-]{0,20}:[0-9]{0,12}:"
    r"[a-z-]{1,40}/[A-Za-z0-9._:-]{1,256}(?:/[A-Za-z0-9._:-]{1,256})?"
)
_CLAUDE = re.compile(r"(?:^|[.:/])anthropic\.claude")

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
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset(
        {"role", "content", "name", "tool_calls", "refusal", "reasoning_content"}
    ),
    "tool": frozenset({"role", "content", "tool_call_id", "name"}),
}
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# AWS error type (x-amzn-ErrorType, or an exception event's type) → OpenAI's `type`, `code`.
_ERRORS = {
    "ValidationException": ("invalid_request_error", None),
    "AccessDeniedException": ("permission_error", "access_denied"),
    "UnrecognizedClientException": ("authentication_error", "invalid_api_key"),
    "InvalidSignatureException": ("authentication_error", "invalid_api_key"),
    "IncompleteSignatureException": ("authentication_error", "invalid_api_key"),
    "MissingAuthenticationTokenException": ("authentication_error", "invalid_api_key"),
    "ExpiredTokenException": ("authentication_error", "invalid_api_key"),
    "ResourceNotFoundException": ("not_found_error", "model_not_found"),
    "ThrottlingException": ("rate_limit_error", "rate_limit_exceeded"),
    "ServiceQuotaExceededException": ("rate_limit_error", "rate_limit_exceeded"),
    "ModelNotReadyException": ("server_error", "model_not_ready"),
    "ModelTimeoutException": ("timeout_error", "timeout"),
    "ModelErrorException": ("server_error", "model_error"),
    "ModelStreamErrorException": ("server_error", "model_error"),
    "InternalServerException": ("server_error", None),
    "ServiceUnavailableException": ("server_error", "service_unavailable"),
}
_STATUS_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    429: "rate_limit_error",
}

Block = dict[str, Any]


def converse_path(model_id: str, stream: bool) -> str:
    """The upstream path for `model_id`, percent-encoded as one path segment (AWS's SDKs send
    `:` as `%3A` and an ARN's `/` as `%2F`); anything but a model id or a Bedrock ARN is refused
    so no id can steer the path elsewhere."""
    if not _MODEL_ID.fullmatch(model_id) or ".." in model_id:
        raise Untranslatable(f"model: {model_id[:80]!r} is not a Bedrock model id or ARN")
    operation = "converse-stream" if stream else "converse"
    return f"/model/{quote(model_id, safe='')}/{operation}"


# ---- request: OpenAI chat → Converse ----


def chat_to_converse(chat: dict[str, Any], model_id: str | None = None) -> dict[str, Any]:
    """The Converse body asking what OpenAI chat request `chat` asks. `model_id` (default: the
    body's `model`) only decides whether `reasoning_effort` can be honoured."""
    fields = {key: value for key, value in chat.items() if value is not None}
    _refuse_unknown_fields(fields)
    system, messages = _messages(fields.get("messages"))
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    tool_config = _tool_config(fields, _has_tool_blocks(messages))
    if tool_config:
        body["toolConfig"] = tool_config
    inference = _inference_config(fields)
    thinking = _thinking(fields, model_id or fields.get("model"), inference)
    if thinking:
        body["additionalModelRequestFields"] = {"thinking": thinking}
    if inference:
        body["inferenceConfig"] = inference
    return body


def _refuse_unknown_fields(fields: dict[str, Any]) -> None:
    for field, value in fields.items():
        if field in _TRANSLATED:
            continue
        if field in _NO_OP_VALUES and value == _NO_OP_VALUES[field]:
            continue
        raise Untranslatable(f"`{field}` has no equivalent in Bedrock's Converse API")
    if fields.get("parallel_tool_calls") is False:
        raise Untranslatable("`parallel_tool_calls: false`: Converse cannot limit calls per turn")
    response_format = fields.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else response_format
    if response_format is not None and kind != "text":
        raise Untranslatable(f"`response_format` {kind!r}: Converse has no JSON mode")


def _messages(messages: Any) -> tuple[list[Block], list[Block]]:
    """System blocks (every system or developer message, in order) and the turns, consecutive
    turns of one role merged since Converse wants user and assistant to alternate."""
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("`messages` must be a non-empty list")
    system: list[Block] = []
    turns: list[Block] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = _checked_role(message, where)
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{where}.content"))
            continue
        converse_role, content = _turn(role, message, where)
        if not content:
            continue  # Converse refuses blank turns; an empty message says nothing
        if turns and turns[-1]["role"] == converse_role:
            turns[-1]["content"].extend(content)
        else:
            turns.append({"role": converse_role, "content": content})
    if not turns:
        raise Untranslatable("messages: Converse needs a user or assistant message with content")
    return system, turns


def _checked_role(message: Any, where: str) -> str:
    if not isinstance(message, dict):
        raise InvalidInput(f"{where} must be an object")
    role = message.get("role")
    allowed = _MESSAGE_KEYS.get(role) if isinstance(role, str) else None
    if allowed is None:
        raise Untranslatable(f"{where}: role {role!r} has no equivalent in Bedrock's Converse API")
    for key, value in message.items():
        if value is not None and key not in allowed:
            raise Untranslatable(f"{where}.{key} has no equivalent in Bedrock's Converse API")
    return str(role)


def _turn(role: str, message: dict[str, Any], where: str) -> tuple[str, list[Block]]:
    if role == "user":
        return "user", _user_blocks(message.get("content"), f"{where}.content")
    if role == "assistant":
        return "assistant", _assistant_blocks(message, where)
    return "user", [_tool_result(message, where)]


def _text_blocks(content: Any, where: str) -> list[Block]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks = [_text_part(part, f"{where}[{i}]") for i, part in enumerate(_parts(content, where))]
    return [block for block in blocks if block["text"]]


def _parts(content: Any, where: str) -> list[Any]:
    if not isinstance(content, list):
        raise InvalidInput(f"{where} must be a string or a list of content parts")
    return content


def _text_part(part: Any, where: str) -> Block:
    kind = part.get("type") if isinstance(part, dict) else None
    text = part.get(kind) if kind in ("text", "refusal") else None
    if not isinstance(text, str):
        raise Untranslatable(f"{where}: only text parts can be translated here, not {kind!r}")
    return {"text": text}


def _user_blocks(content: Any, where: str) -> list[Block]:
    if isinstance(content, str) or content is None:
        return _text_blocks(content or "", where)
    blocks = []
    for i, part in enumerate(_parts(content, where)):
        block = _user_part(part, f"{where}[{i}]", i)
        if block.get("text") != "":
            blocks.append(block)
    return blocks


def _user_part(part: Any, where: str, position: int) -> Block:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "image_url":
        image = part.get("image_url")
        return _image(image.get("url") if isinstance(image, dict) else None, where)
    if kind == "file":
        return _document(part.get("file"), where, position)
    return _text_part(part, where)


def _image(url: Any, where: str) -> Block:
    if not isinstance(url, str):
        raise InvalidInput(f"{where}.image_url.url must be a string")
    if not url.startswith("data:"):
        raise Untranslatable(f"{where}: Converse takes image bytes only; send a base64 data URL")
    media_type, data = _data_url(url, where)
    image_format = _IMAGE_FORMATS.get(media_type)
    if image_format is None:
        raise Untranslatable(f"{where}: Converse takes PNG, JPEG, GIF or WebP, not {media_type}")
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _document(file: Any, where: str, position: int) -> Block:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise Untranslatable(f"{where}: only files sent inline as `file_data` can be translated")
    media_type, data = _data_url(data_url, where)
    document_format = _DOCUMENT_FORMATS.get(media_type)
    if document_format is None:
        raise Untranslatable(f"{where}: Converse has no document format for {media_type}")
    # Converse requires a name of letters, digits, single spaces, hyphens, parentheses and
    # brackets; a file's own name rarely fits, so one is made from its position.
    name = f"document-{position + 1}"
    return {"document": {"format": document_format, "name": name, "source": {"bytes": data}}}


def _data_url(url: str, where: str) -> tuple[str, str]:
    header, comma, data = url.partition(",")
    params = header.removeprefix("data:").split(";")
    if not url.startswith("data:") or not comma or "base64" not in params[1:]:
        raise Untranslatable(f"{where}: only base64 data URLs can be translated")
    return params[0], data  # Converse's JSON body carries bytes as base64 text, as given


def _assistant_blocks(message: dict[str, Any], where: str) -> list[Block]:
    content, calls = message.get("content"), message.get("tool_calls") or []
    blocks = [] if content is None else _text_blocks(content, f"{where}.content")
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        blocks.append({"text": refusal})
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
    tool_use = {"toolUseId": call_id, "name": name, "input": _arguments(function, where)}
    return {"toolUse": tool_use}


def _arguments(function: dict[str, Any], where: str) -> Any:
    arguments = function.get("arguments") or "{}"
    try:
        value = orjson.loads(arguments) if isinstance(arguments, str) else None
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise Untranslatable(f"{where}.function.arguments must be a JSON object for Converse")
    return value


def _tool_result(message: dict[str, Any], where: str) -> Block:
    call_id, content = message.get("tool_call_id"), message.get("content")
    if not isinstance(call_id, str):
        raise InvalidInput(f"{where}.tool_call_id must be a string")
    blocks = _text_blocks(content if content is not None else "", f"{where}.content")
    return {"toolResult": {"toolUseId": call_id, "content": blocks}}


def _has_tool_blocks(messages: list[Block]) -> bool:
    return any(
        "toolUse" in block or "toolResult" in block
        for message in messages
        for block in message["content"]
    )


def _tool_config(fields: dict[str, Any], history_has_tools: bool) -> Block | None:
    tools, choice = fields.get("tools"), fields.get("tool_choice")
    if not tools:
        if choice not in (None, "none", "auto"):
            raise InvalidInput("`tool_choice` needs `tools`")
        return None
    if not isinstance(tools, list):
        raise InvalidInput("`tools` must be a list")
    if choice == "none":
        if history_has_tools:
            raise Untranslatable(
                "`tool_choice: none` with tool calls in the history: Converse then needs the "
                "tools and cannot forbid calling them"
            )
        return None
    config: Block = {"tools": [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]}
    if choice is not None:
        config["toolChoice"] = _tool_choice(choice)
    return config


def _tool(tool: Any, where: str) -> Block:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type") != "function":
        raise Untranslatable(f"{where}: only function tools can be translated")
    name = function.get("name")
    if not isinstance(name, str):
        raise InvalidInput(f"{where}.function.name must be a string")
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    spec: Block = {"name": name, "inputSchema": {"json": schema}}
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}  # `strict` is dropped: Converse has no strict mode


def _tool_choice(choice: Any) -> Block:
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"tool": {"name": function["name"]}}
    raise Untranslatable(f"`tool_choice` {choice!r} has no equivalent in Bedrock's Converse API")


def _inference_config(fields: dict[str, Any]) -> Block:
    config: Block = {}
    max_tokens = _asked_max_tokens(fields)
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    for field, name in (("temperature", "temperature"), ("top_p", "topP")):
        if field in fields:
            config[name] = _unit_number(fields[field], field)
    if "stop" in fields:
        config["stopSequences"] = _stop(fields["stop"])
    return config


def _asked_max_tokens(fields: dict[str, Any]) -> int | None:
    field = "max_completion_tokens" if "max_completion_tokens" in fields else "max_tokens"
    if field not in fields:
        return None
    asked = as_int(fields[field])
    if asked is None or asked < 1:
        raise InvalidInput(f"`{field}` must be a positive integer")
    return asked


def _unit_number(value: Any, field: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"`{field}` must be a number")
    if not 0 <= value <= 1:
        raise Untranslatable(f"`{field}` {value} has no equivalent: Converse's is 0 to 1")
    return value


def _stop(stop: Any) -> list[str]:
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise InvalidInput("`stop` must be a string or a list of strings")
    return sequences


def _thinking(fields: dict[str, Any], model_id: Any, inference: Block) -> Block | None:
    """Anthropic's thinking for Claude models, with `maxTokens` made room for the budget."""
    effort = fields.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if effort not in THINKING_BUDGETS:
        raise Untranslatable(f"`reasoning_effort` {effort!r} has no equivalent on Bedrock")
    if not isinstance(model_id, str) or not _CLAUDE.search(model_id):
        raise Untranslatable(
            "`reasoning_effort` is translated for Anthropic Claude models on Bedrock only"
        )
    if fields.get("tool_choice") not in (None, "auto", "none"):
        raise Untranslatable("`reasoning_effort` with a forced `tool_choice`: Claude forbids it")
    budget = THINKING_BUDGETS[effort]
    max_tokens = inference.setdefault("maxTokens", budget + DEFAULT_MAX_TOKENS)
    if max_tokens <= THINKING_BUDGETS["minimal"]:
        raise Untranslatable(
            f"`reasoning_effort` needs more than {THINKING_BUDGETS['minimal']} max tokens"
        )
    return {"type": "enabled", "budget_tokens": min(budget, max_tokens - 1)}


# ---- response: Converse → OpenAI chat.completion ----


def converse_to_chat(
    response: dict[str, Any], model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """The OpenAI `chat.completion` object for Converse answer `response`."""
    output = response.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    texts, reasoning, calls = _read_blocks(content if isinstance(content, list) else [])
    choice = {
        "index": 0,
        "message": assistant_message(texts, reasoning, calls),
        "logprobs": None,
        "finish_reason": _finish_reason(response.get("stopReason"), bool(calls)),
    }
    return completion(completion_id, created, model, [choice], chat_usage(response.get("usage")))


def _read_blocks(content: list[Any]) -> tuple[list[str], list[str], list[Block]]:
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[Block] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            calls.append(_tool_call(block["toolUse"]))
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)  # redacted reasoning has nothing to show
    return texts, reasoning, calls


def _tool_call(tool_use: Block) -> Block:
    arguments = orjson.dumps(tool_use.get("input") or {}).decode()
    function = {"name": tool_use.get("name"), "arguments": arguments}
    return {"id": tool_use.get("toolUseId"), "type": "function", "function": function}


def _finish_reason(stop_reason: Any, called_tools: bool) -> str | None:
    """OpenAI has no word for Bedrock's malformed output; like any unknown reason it is `stop`."""
    if stop_reason is None:
        return None
    if stop_reason == "tool_use" and not called_tools:
        return "stop"
    return _FINISH_REASONS.get(stop_reason, "stop")


def chat_usage(usage: Any) -> dict[str, Any]:
    """OpenAI's usage object for Converse's, whose `inputTokens` excludes cached tokens."""
    usage = usage if isinstance(usage, dict) else {}
    return usage_with_cache(
        as_int(usage.get("inputTokens")) or 0,
        as_int(usage.get("cacheReadInputTokens")) or 0,
        as_int(usage.get("cacheWriteInputTokens")) or 0,
        as_int(usage.get("outputTokens")) or 0,
    )


# ---- errors ----


def error_to_openai(status: int, body: bytes, error_type: str | None = None) -> dict[str, Any]:
    """OpenAI's error object for a Bedrock error answer: `body` is AWS's `{"message": ...}` and
    `error_type` the `x-amzn-ErrorType` header, if any (`Type:namespace` or just `Type`)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    document = document if isinstance(document, dict) else {}
    message = document.get("message", document.get("Message"))
    declared = error_type or document.get("__type")
    kind = declared.partition(":")[0].rpartition("#")[2] if isinstance(declared, str) else ""
    if not isinstance(message, str) or not message:
        text = body[:500].decode("utf-8", "replace").strip()
        message = f"Bedrock answered {status}: {text}" if text else f"Bedrock answered {status}"
    return _openai_error(kind, message, status)


def _openai_error(kind: str, message: str, status: int) -> dict[str, Any]:
    error_type, code = _ERRORS.get(kind, (None, None))
    if error_type is None:
        error_type = "server_error" if status >= 500 else _STATUS_TYPES.get(status)
        error_type = error_type or "invalid_request_error"
    return {
        "error": {
            "message": message,
            "type": error_type,
            "param": None,
            "code": code or (kind or None),
        }
    }


# ---- streams: ConverseStream events → OpenAI SSE ----


class ConverseStream:
    """Turns ConverseStream's events, each already decoded to its type and JSON payload, into
    OpenAI chunks one event at a time. An exception event ends the stream with OpenAI's error
    event; what follows it is ignored."""

    def __init__(self, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        # Every chunk shares its head; only the delta and finish reason are encoded per event.
        self._prefix = (
            b"data: " + orjson.dumps(self._head)[:-1] + b',"choices":[{"index":0,"delta":'
        )
        self._tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        self._include_usage = include_usage
        self._tool_indexes: dict[Any, int] = {}  # contentBlockIndex → OpenAI tool call index
        self._usage: dict[str, Any] | None = None
        self._failed = self._closed = False
        self._handlers: dict[str, Callable[[dict[str, Any]], bytes]] = {
            "messageStart": self._on_message_start,
            "contentBlockStart": self._on_block_start,
            "contentBlockDelta": self._on_block_delta,
            "messageStop": self._on_message_stop,
            "metadata": self._on_metadata,
        }

    def event(self, event_type: str, payload: dict[str, Any]) -> bytes:
        """OpenAI SSE bytes for one ConverseStream event; b"" for events that add nothing."""
        if self._failed or self._closed:
            return b""
        inner = payload.get(event_type)
        if len(payload) == 1 and isinstance(inner, dict):
            payload = inner  # the payload wrapped in its type, as the SDKs show it
        handler = self._handlers.get(event_type)
        if handler is not None:
            return handler(payload)
        if event_type.endswith("Exception"):
            return self._on_exception(event_type, payload)
        return b""  # contentBlockStop, and events AWS may add later

    def close(self) -> bytes:
        """The usage chunk (when asked for and the stream did not fail) and `[DONE]`, once."""
        if self._closed:
            return b""
        self._closed = True
        out = b""
        if self._include_usage and self._usage is not None and not self._failed:
            chunk = {**self._head, "choices": [], "usage": chat_usage(self._usage)}
            out = b"data: " + orjson.dumps(chunk) + b"\n\n"
        return out + b"data: [DONE]\n\n"

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

    def _on_message_start(self, payload: dict[str, Any]) -> bytes:
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def _on_block_start(self, payload: dict[str, Any]) -> bytes:
        start = payload.get("start")
        tool_use = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool_use, dict):
            return b""
        call_index = self._tool_indexes[payload.get("contentBlockIndex")] = len(self._tool_indexes)
        call = {
            "index": call_index,
            "id": tool_use.get("toolUseId"),
            "type": "function",
            "function": {"name": tool_use.get("name"), "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _on_block_delta(self, payload: dict[str, Any]) -> bytes:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return b""
        if "text" in delta:
            return self._chunk({"content": delta["text"]})
        if isinstance(delta.get("toolUse"), dict):
            return self._tool_input(payload.get("contentBlockIndex"), delta["toolUse"])
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            return self._chunk({"reasoning_content": reasoning["text"]})
        return b""  # signatures, redacted reasoning and citations have no OpenAI counterpart

    def _tool_input(self, block_index: Any, tool_use: dict[str, Any]) -> bytes:
        fragment = tool_use.get("input")
        call_index = self._tool_indexes.get(block_index)
        if not fragment or not isinstance(fragment, str) or call_index is None:
            return b""
        call = {"index": call_index, "function": {"arguments": fragment}}
        return self._chunk({"tool_calls": [call]})

    def _on_message_stop(self, payload: dict[str, Any]) -> bytes:
        finish = _finish_reason(payload.get("stopReason"), bool(self._tool_indexes))
        return self._chunk({}, finish) if finish else b""

    def _on_metadata(self, payload: dict[str, Any]) -> bytes:
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self._usage = usage
        return b""

    def _on_exception(self, event_type: str, payload: dict[str, Any]) -> bytes:
        self._failed = True
        kind = event_type[0].upper() + event_type[1:]
        message = payload.get("message", payload.get("Message"))
        if not isinstance(message, str) or not message:
            message = f"Bedrock's stream failed: {kind}"
        return b"data: " + orjson.dumps(_openai_error(kind, message, 500)) + b"\n\n"
