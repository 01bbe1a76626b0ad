"""OpenAI Responses API ⇄ OpenAI chat completions: the request, the answer and the stream event
by event, so `POST /v1/responses` can reach any provider the chat translations reach. Whatever
the Responses request asks that a chat request cannot say is refused with `Untranslatable`.

Decisions the caller should know:

- Top-level fields are an allow-list. Refused: server-side state (`previous_response_id`,
  `conversation`, `prompt`, `input` items of type `item_reference`), built-in tools
  (web_search, file_search, computer_use, …), `include` entries other than
  `reasoning.encrypted_content`, and anything unknown.
- Accepted as no-ops: `store` (nothing is kept server-side; the answer says `store: false`),
  `metadata` (echoed in the answer, not sent upstream), `prompt_cache_key`,
  `safety_identifier`, `reasoning.summary`, `stream_options`, and `include:
  ["reasoning.encrypted_content"]` (no provider behind chat has it; the reasoning item goes
  without). `background: false`, `truncation: "disabled"`, `top_logprobs: 0` and
  `service_tier: "auto"`/`"default"` are accepted at those values only.
- `max_output_tokens` becomes `max_tokens`, the field every OpenAI-compatible server knows.
- `instructions` becomes the first message, role `system`. An assistant turn's text and the
  `function_call` items after it become one assistant message with `tool_calls`;
  `function_call_output` items become `tool` messages and must answer an earlier call.
- `reasoning` input items are dropped: the chat shape has no field providers take back
  (Anthropic ignores earlier thinking; Gemini refuses `reasoning_content` in a turn).
- Chat's `reasoning_content` comes back as a `reasoning` item whose `summary` holds the text
  (what Anthropic and Gemini give are summaries). Finish reason `length` is status
  `incomplete` (`max_output_tokens`), `content_filter` is `incomplete` (`content_filter`).
- A stream that ends without a finish reason, or with an error chunk, ends in
  `response.failed`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.translation.errors import Untranslatable
from heliograph.translation.sse_events import SseEvents

_TRANSLATED = frozenset(
    {"model", "input", "instructions", "tools", "tool_choice", "max_output_tokens"}
    | {"temperature", "top_p", "text", "reasoning", "stream", "parallel_tool_calls", "user"}
    | {"include"}
)
_IGNORED = frozenset(
    {"metadata", "store", "prompt_cache_key", "safety_identifier", "stream_options"}
)
# Fields accepted only at the values that make them no-ops.
_NO_OP_VALUES: dict[str, tuple[Any, ...]] = {
    "background": (False,),
    "truncation": ("disabled",),
    "top_logprobs": (0,),
    "service_tier": ("auto", "default"),
}
_STATEFUL = frozenset({"previous_response_id", "conversation", "prompt"})
_INCLUDABLE = frozenset({"reasoning.encrypted_content"})
_MESSAGE_KEYS = frozenset({"type", "role", "content", "id", "status"})
_ROLES = frozenset({"user", "system", "developer", "assistant"})
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}

Item = dict[str, Any]


# ---- request: Responses → chat ----


def responses_to_chat(request: dict[str, Any]) -> dict[str, Any]:
    """The chat completions request for Responses API request `request`."""
    _refuse_unknown_fields(request)
    chat: dict[str, Any] = {"messages": _messages(request)}
    for field in ("model", "temperature", "top_p", "parallel_tool_calls", "user"):
        if request.get(field) is not None:
            chat[field] = request[field]
    if request.get("max_output_tokens") is not None:
        chat["max_tokens"] = request["max_output_tokens"]
    _add_tools(request, chat)
    _add_text(request.get("text"), chat)
    _add_reasoning(request.get("reasoning"), chat)
    if request.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}  # usage ends `response.completed`
    return chat


def _refuse_unknown_fields(request: dict[str, Any]) -> None:
    for field, value in request.items():
        if value is None or field in _TRANSLATED or field in _IGNORED:
            continue
        if field in _NO_OP_VALUES and value in _NO_OP_VALUES[field]:
            continue
        if field in _STATEFUL:
            raise Untranslatable(
                f"`{field}` needs state kept by OpenAI's server; send the whole conversation "
                "in `input` instead"
            )
        raise Untranslatable(f"`{field}` has no equivalent in Chat Completions")
    include = request.get("include") or []
    if not isinstance(include, list):
        raise InvalidInput("`include` must be a list")
    for entry in include:
        if not isinstance(entry, str) or entry not in _INCLUDABLE:
            raise Untranslatable(f"`include` entry {entry!r} has no equivalent in Chat Completions")


def _messages(request: dict[str, Any]) -> list[Item]:
    messages: list[Item] = []
    instructions = request.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidInput("`instructions` must be a string")
        messages.append({"role": "system", "content": instructions})
    items = request.get("input")
    if isinstance(items, str):
        messages.append({"role": "user", "content": items})
        return messages
    if not isinstance(items, list) or not items:
        raise InvalidInput("`input` must be a string or a non-empty list of items")
    calls: set[str] = set()
    for index, item in enumerate(items):
        _add_item(messages, item, f"input[{index}]", calls)
    return messages


def _add_item(messages: list[Item], item: Any, where: str, calls: set[str]) -> None:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} must be an object")
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        messages.append(_message(item, where))
    elif kind == "function_call":
        _add_call(messages, item, where, calls)
    elif kind == "function_call_output":
        messages.append(_call_output(item, where, calls))
    elif kind == "item_reference":
        raise Untranslatable(f"{where}: `item_reference` needs state kept by OpenAI's server")
    elif kind != "reasoning":  # earlier reasoning is dropped: see the module docstring
        raise Untranslatable(f"{where}: {kind!r} items have no equivalent in Chat Completions")


def _message(item: Item, where: str) -> Item:
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidInput(f"{where}.role must be one of {', '.join(sorted(_ROLES))}")
    for key, value in item.items():
        if value is not None and key not in _MESSAGE_KEYS:
            raise Untranslatable(f"{where}.{key} has no equivalent in Chat Completions")
    content = item.get("content")
    if role == "assistant":
        return _assistant_message(content, where)
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts = _parts(content, f"{where}.content")
    return {
        "role": role,
        "content": [_input_part(part, f"{where}.content[{i}]") for i, part in parts],
    }


def _parts(content: Any, where: str) -> enumerate[Any]:
    if not isinstance(content, list):
        raise InvalidInput(f"{where} must be a string or a list of content parts")
    return enumerate(content)


def _input_part(part: Any, where: str) -> Item:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "input_image":
        return _image(part, where)
    if kind == "input_file":
        return _file(part, where)
    raise Untranslatable(f"{where}: content part {kind!r} has no equivalent in Chat Completions")


def _image(part: Item, where: str) -> Item:
    url = part.get("image_url")
    if not isinstance(url, str):
        raise Untranslatable(f"{where}: only images sent as `image_url` translate, not file ids")
    image: Item = {"url": url}
    if part.get("detail") is not None:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file(part: Item, where: str) -> Item:
    data = part.get("file_data")
    if not isinstance(data, str):
        raise Untranslatable(f"{where}: only files sent inline as `file_data` translate")
    file: Item = {"file_data": data}
    if isinstance(part.get("filename"), str):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _assistant_message(content: Any, where: str) -> Item:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts, refusals = [], []
    for index, part in _parts(content, f"{where}.content"):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("output_text", "input_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            refusals.append(part["refusal"])
        else:
            raise Untranslatable(f"{where}.content[{index}]: {kind!r} has no chat equivalent")
    message: Item = {"role": "assistant", "content": "".join(texts) if texts else None}
    if refusals:
        message["refusal"] = "".join(refusals)
    return message


def _add_call(messages: list[Item], item: Item, where: str, calls: set[str]) -> None:
    """Calls after an assistant turn belong to it: chat keeps text and calls in one message."""
    call_id, name, arguments = item.get("call_id"), item.get("name"), item.get("arguments")
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(arguments, str):
        raise InvalidInput(f"{where} needs string `call_id`, `name` and `arguments`")
    calls.add(call_id)
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _call_output(item: Item, where: str, calls: set[str]) -> Item:
    call_id, output = item.get("call_id"), item.get("output")
    if not isinstance(call_id, str):
        raise InvalidInput(f"{where}.call_id must be a string")
    if call_id not in calls:
        raise InvalidInput(f"{where}.call_id {call_id!r} answers no earlier function_call")
    if not isinstance(output, str):
        parts = _parts(output, f"{where}.output")
        output = [_tool_text(part, f"{where}.output[{i}]") for i, part in parts]
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _tool_text(part: Any, where: str) -> Item:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind != "input_text" or not isinstance(part.get("text"), str):
        raise Untranslatable(f"{where}: a chat tool result holds text only, not {kind!r}")
    return {"type": "text", "text": part["text"]}


def _add_tools(request: dict[str, Any], chat: dict[str, Any]) -> None:
    tools, choice = request.get("tools"), request.get("tool_choice")
    if tools:
        if not isinstance(tools, list):
            raise InvalidInput("`tools` must be a list")
        chat["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    if choice is not None:
        chat["tool_choice"] = _tool_choice(choice)


def _tool(tool: Any, where: str) -> Item:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind != "function":
        raise Untranslatable(f"{where}: the built-in tool {kind!r} has no chat equivalent")
    if not isinstance(tool.get("name"), str):
        raise InvalidInput(f"{where}.name must be a string")
    function = {
        key: tool[key]
        for key in ("name", "description", "parameters", "strict")
        if tool.get(key) is not None
    }
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise Untranslatable(f"`tool_choice` {choice!r} has no equivalent in Chat Completions")


def _add_text(text: Any, chat: dict[str, Any]) -> None:
    if text is None:
        return
    if not isinstance(text, dict) or set(text) - {"format", "verbosity"}:
        raise Untranslatable("`text` translates only `format` and `verbosity`")
    if text.get("verbosity") not in (None, "medium"):
        chat["verbosity"] = text["verbosity"]
    response_format = _response_format(text.get("format"))
    if response_format is not None:
        chat["response_format"] = response_format


def _response_format(spec: Any) -> Item | None:
    kind = spec.get("type") if isinstance(spec, dict) else None
    if spec is None or kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise Untranslatable(f"`text.format` {kind!r} has no equivalent in Chat Completions")
    if not isinstance(spec.get("name"), str) or not isinstance(spec.get("schema"), dict):
        raise InvalidInput("`text.format` json_schema needs a string `name` and an object `schema`")
    schema = {
        key: spec[key]
        for key in ("name", "schema", "description", "strict")
        if spec.get(key) is not None
    }
    return {"type": "json_schema", "json_schema": schema}


def _add_reasoning(reasoning: Any, chat: dict[str, Any]) -> None:
    if reasoning is None:
        return
    if not isinstance(reasoning, dict) or set(reasoning) - {
        "effort",
        "summary",
        "generate_summary",
    }:
        raise Untranslatable("`reasoning` translates only `effort` and `summary`")
    if reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]


# ---- answer: chat.completion → Responses `response` ----


def chat_to_response(
    completion: dict[str, Any], request: dict[str, Any], response_id: str, created: int
) -> dict[str, Any]:
    """The Responses API `response` object for `completion`, the answer to chat request made
    from Responses request `request`."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") or {}
    status, details = _status(choice.get("finish_reason"))
    ids = _ItemIds(response_id)
    output: list[Item] = []
    if message.get("reasoning_content"):
        output.append(_reasoning_item(ids.next("rs"), [message["reasoning_content"]]))
    parts = _message_parts(message)
    if parts:
        output.append(_message_item(ids.next("msg"), parts, _item_status(status)))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(
            _call_item(
                ids.next("fc"),
                call.get("id") or ids.call_id(),
                function.get("name"),
                function.get("arguments") or "",
                _item_status(status),
            )
        )
    model = completion.get("model") if isinstance(completion.get("model"), str) else None
    response = _response(request, response_id, created, model)
    response.update(status=status, incomplete_details=details, output=output)
    response["usage"] = response_usage(completion.get("usage"))
    return response


def _message_parts(message: Item) -> list[Item]:
    parts = []
    if message.get("content"):
        parts.append(_text_part(str(message["content"])))
    if message.get("refusal"):
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    return parts


def _status(finish_reason: Any) -> tuple[str, Item | None]:
    reason = _INCOMPLETE.get(finish_reason)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def _item_status(status: str) -> str:
    return "incomplete" if status == "incomplete" else "completed"


class _ItemIds:
    """Item ids derived from the response id, so an answer translates the same every time."""

    def __init__(self, response_id: str) -> None:
        self._base = response_id.removeprefix("resp_")
        self._count = 0

    def next(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._base}_{self._count}"

    def call_id(self) -> str:
        return f"call_{self._base}_{self._count}"


def _text_part(text: str) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, content: list[Item], status: str) -> Item:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _reasoning_item(item_id: str, summaries: list[str]) -> Item:
    summary = [{"type": "summary_text", "text": text} for text in summaries]
    return {"type": "reasoning", "id": item_id, "summary": summary}


def _call_item(item_id: str, call_id: str, name: Any, arguments: str, status: str) -> Item:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _response(
    request: dict[str, Any], response_id: str, created: int, model: str | None
) -> dict[str, Any]:
    """The `response` object's fields that echo the request, before any output."""
    text = _object(request.get("text"))
    reasoning = _object(request.get("reasoning"))
    parallel = request.get("parallel_tool_calls")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model or request.get("model"),
        "output": [],
        "parallel_tool_calls": True if parallel is None else parallel,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False,
        "temperature": request.get("temperature"),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": "disabled",
        "usage": None,
        "user": request.get("user"),
        "metadata": request.get("metadata") or {},
    }


def _object(value: Any) -> Item:
    return value if isinstance(value, dict) else {}


def response_usage(usage: Any) -> Item | None:
    """The Responses usage object for chat usage `usage`; None when upstream gave none."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": prompt_details.get("cached_tokens") or 0,
            **_cache_writes(prompt_details),
        },
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": completion_details.get("reasoning_tokens") or 0
        },
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }


def _cache_writes(prompt_details: dict[str, Any]) -> Item:
    """Cache writes, where the chat usage counted them (Anthropic's, Bedrock's)."""
    written = prompt_details.get("cache_creation_tokens")
    return {"cache_creation_tokens": written} if written else {}


# ---- stream: chat SSE → Responses SSE ----


class _DeltaEvent:
    """One delta event's bytes around its sequence number and fragment, built once per part:
    deltas are most of a stream, so each costs one `orjson.dumps` of its fragment."""

    def __init__(self, kind: str, address: Item, extra: Item) -> None:
        name = kind.encode()
        self._head = b"event: " + name + b'\ndata: {"type":"' + name + b'","sequence_number":'
        self._middle = b"," + orjson.dumps(address)[1:-1] + b',"delta":'
        self._tail = (b"," + orjson.dumps(extra)[1:-1] if extra else b"") + b"}\n\n"

    def render(self, sequence: int, fragment: str) -> bytes:
        return (
            self._head + str(sequence).encode() + self._middle + orjson.dumps(fragment) + self._tail
        )


class _OpenText:
    """A message or reasoning item being streamed, and its current content (or summary) part."""

    def __init__(self, item: Item, output_index: int) -> None:
        self.item = item
        self.output_index = output_index
        self.parts: list[Item] = []
        self.kind: str | None = None  # "output_text", "refusal" or "summary_text"
        self.fragments: list[str] = []
        self.delta: _DeltaEvent | None = None


class _OpenCall:
    """A function call being streamed; its arguments arrive in fragments."""

    def __init__(self, item: Item, output_index: int) -> None:
        self.item = item
        self.output_index = output_index
        self.fragments: list[str] = []
        address = {"item_id": item["id"], "output_index": output_index}
        self.delta = _DeltaEvent("response.function_call_arguments.delta", address, {})


class ResponsesStream:
    """Turns a chat completion stream into Responses API events as bytes arrive: each chat
    chunk's deltas become the item, part and delta events OpenAI's Responses stream sends."""

    def __init__(self, request: dict[str, Any], response_id: str, created: int) -> None:
        self._response = _response(request, response_id, created, None)
        self._ids = _ItemIds(response_id)
        self._chat_events = SseEvents()
        self._sequence = 0
        self._started = self._ended = False
        self._output: list[Item] = []
        self._text: _OpenText | None = None
        self._calls: dict[int, _OpenCall] = {}  # chat tool call index → its item
        self._finish_reason: str | None = None
        self._events: list[bytes] = []
        self._deltas: tuple[tuple[str, Callable[[Any], None]], ...] = (
            ("reasoning_content", self._on_reasoning),
            ("content", self._on_content),
            ("refusal", self._on_refusal),
            ("tool_calls", self._on_tool_calls),
        )

    def feed(self, data: bytes) -> bytes:
        """Responses SSE bytes for every chat event `data` completes; b"" when none is."""
        for event in self._chat_events.feed(data):
            if self._ended:
                break
            self._on_event(event)
        return self._flush()

    def close(self) -> bytes:
        """The last event (if upstream left it unterminated) and the final response event."""
        if not self._ended:
            rest = self._chat_events.rest()
            if rest:
                self._on_event(rest)
            if not self._ended:
                self._finish()
        return self._flush()

    def _flush(self) -> bytes:
        out = b"".join(self._events)
        self._events.clear()
        return out

    def _emit(self, kind: str, fields: Item) -> None:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        self._events.append(
            b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
        )

    def _emit_delta(self, delta: _DeltaEvent | None, fragment: str) -> None:
        assert delta is not None  # set when the part or call opened
        self._events.append(delta.render(self._sequence, fragment))
        self._sequence += 1

    def _start(self) -> None:
        self._started = True
        self._emit("response.created", {"response": self._response})
        self._emit("response.in_progress", {"response": self._response})

    def _on_event(self, raw: bytes) -> None:
        data = _event_data(raw)
        if data is None:
            return
        if data == b"[DONE]":
            self._finish()
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            self._fail({"code": "server_error", "message": "upstream sent an unreadable chunk"})
        elif "error" in chunk:
            self._fail(_error(chunk["error"]))
        else:
            self._on_chunk(chunk)

    def _on_chunk(self, chunk: Item) -> None:
        if not self._started:
            self._start()
        if isinstance(chunk.get("model"), str):
            self._response["model"] = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self._response["usage"] = response_usage(chunk["usage"])
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            for field, handler in self._deltas:
                if delta.get(field):
                    handler(delta[field])
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]

    # -- text and reasoning --

    def _on_reasoning(self, fragment: Any) -> None:
        self._text_delta("reasoning", "summary_text", str(fragment))

    def _on_content(self, fragment: Any) -> None:
        self._text_delta("message", "output_text", str(fragment))

    def _on_refusal(self, fragment: Any) -> None:
        self._text_delta("message", "refusal", str(fragment))

    def _text_delta(self, item_type: str, kind: str, fragment: str) -> None:
        text = self._text
        if text is None or text.item["type"] != item_type:
            text = self._open_text(item_type)
        if text.kind != kind:
            self._close_part(text)
            self._open_part(text, kind)
        text.fragments.append(fragment)
        self._emit_delta(text.delta, fragment)

    def _open_text(self, item_type: str) -> _OpenText:
        self._close_open_items()
        if item_type == "reasoning":
            item = _reasoning_item(self._ids.next("rs"), [])
        else:
            item = _message_item(self._ids.next("msg"), [], "in_progress")
        text = self._text = _OpenText(item, len(self._output))
        self._emit("response.output_item.added", {"output_index": text.output_index, "item": item})
        return text

    def _open_part(self, text: _OpenText, kind: str) -> None:
        text.kind = kind
        text.fragments = []
        text.delta = _DeltaEvent(_DELTA_EVENTS[kind], _part_address(text), _extra(kind))
        event = "response.reasoning_summary_part.added" if kind == "summary_text" else None
        self._emit(
            event or "response.content_part.added",
            {**_part_address(text), "part": _part(kind, "")},
        )

    def _close_part(self, text: _OpenText) -> None:
        if text.kind is None:
            return
        kind, whole, address = text.kind, "".join(text.fragments), _part_address(text)
        part = _part(kind, whole)
        self._emit(_DONE_EVENTS[kind], {**address, _WHOLE[kind]: whole, **_extra(kind)})
        event = "response.reasoning_summary_part.done" if kind == "summary_text" else None
        self._emit(event or "response.content_part.done", {**address, "part": part})
        text.parts.append(part)
        text.kind = None

    def _close_text(self, status: str) -> None:
        text, self._text = self._text, None
        if text is None:
            return
        self._close_part(text)
        item = text.item
        if item["type"] == "reasoning":
            item = {**item, "summary": text.parts}
        else:
            item = {**item, "content": text.parts, "status": status}
        self._output.append(item)
        self._emit("response.output_item.done", {"output_index": text.output_index, "item": item})

    # -- function calls --

    def _on_tool_calls(self, deltas: Any) -> None:
        for delta in deltas if isinstance(deltas, list) else ():
            if not isinstance(delta, dict):
                continue
            index = delta.get("index", len(self._calls))
            function = delta.get("function") or {}
            call = self._calls.get(index) or self._open_call(index, delta, function)
            fragment = function.get("arguments")
            if fragment:
                call.fragments.append(fragment)
                self._emit_delta(call.delta, fragment)

    def _open_call(self, index: int, delta: Item, function: Item) -> _OpenCall:
        if self._text is not None:
            self._close_text("completed")
        item_id = self._ids.next("fc")
        call_id = delta.get("id") or self._ids.call_id()
        item = _call_item(item_id, call_id, function.get("name"), "", "in_progress")
        call = self._calls[index] = _OpenCall(item, len(self._output) + len(self._calls))
        self._emit("response.output_item.added", {"output_index": call.output_index, "item": item})
        return call

    def _close_calls(self, status: str) -> None:
        for call in self._calls.values():
            arguments = "".join(call.fragments)
            address = {"item_id": call.item["id"], "output_index": call.output_index}
            self._emit(
                "response.function_call_arguments.done",
                {**address, "name": call.item["name"], "arguments": arguments},
            )
            item = {**call.item, "arguments": arguments, "status": status}
            self._output.append(item)
            self._emit(
                "response.output_item.done", {"output_index": call.output_index, "item": item}
            )
        self._calls.clear()

    def _close_open_items(self, status: str = "completed") -> None:
        self._close_text(status)
        self._close_calls(status)

    # -- the end --

    def _finish(self) -> None:
        if not self._started:
            self._start()
        if self._finish_reason is None:
            self._fail({"code": "server_error", "message": "upstream ended before it finished"})
            return
        status, details = _status(self._finish_reason)
        self._close_open_items(_item_status(status))
        self._ended = True
        response = {
            **self._response,
            "status": status,
            "incomplete_details": details,
            "output": self._output,
        }
        self._emit(f"response.{status}", {"response": response})

    def _fail(self, error: Item) -> None:
        if not self._started:
            self._start()
        self._ended = True
        response = {**self._response, "status": "failed", "error": error, "output": self._output}
        self._emit("response.failed", {"response": response})


_DELTA_EVENTS = {
    "output_text": "response.output_text.delta",
    "refusal": "response.refusal.delta",
    "summary_text": "response.reasoning_summary_text.delta",
}
_DONE_EVENTS = {
    "output_text": "response.output_text.done",
    "refusal": "response.refusal.done",
    "summary_text": "response.reasoning_summary_text.done",
}
_WHOLE = {"output_text": "text", "refusal": "refusal", "summary_text": "text"}


def _event_data(raw: bytes) -> bytes | None:
    """An SSE event's data; None for an event without (a comment, a keep-alive)."""
    if raw.startswith(b"data: ") and b"\n" not in raw:
        return raw[6:]  # what chat streams send: one data line per event
    lines = [line[5:].lstrip(b" ") for line in raw.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _part(kind: str, whole: str) -> Item:
    if kind == "output_text":
        return _text_part(whole)
    return {"type": kind, _WHOLE[kind]: whole}


def _part_address(text: _OpenText) -> Item:
    index_key = "summary_index" if text.kind == "summary_text" else "content_index"
    return {
        "item_id": text.item["id"],
        "output_index": text.output_index,
        index_key: len(text.parts),
    }


def _extra(kind: str) -> Item:
    return {"logprobs": []} if kind == "output_text" else {}


def _error(error: Any) -> Item:
    """Responses' `{code, message}` for a chat stream's error object."""
    if not isinstance(error, dict):
        return {"code": "server_error", "message": str(error)}
    code = error.get("code") or error.get("type") or "server_error"
    return {"code": str(code), "message": str(error.get("message") or code)}
