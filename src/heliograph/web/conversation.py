"""Turns a stored request body and response body into the list of messages the request page
shows: OpenAI chat and Responses, Anthropic Messages and Gemini generateContent, with streamed
(server-sent events) responses assembled into one message. Anything else falls back to none, and
the page shows the raw JSON instead."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from heliograph.providers.sse import iter_json_events

MAX_MESSAGES = 200
MAX_TEXT_CHARS = 100_000
MAX_TOTAL_CHARS = 1_000_000  # what one page may carry, whatever the number of messages
MAX_IMAGE_CHARS = 200_000  # a data: URL this long is about 150 KB of image
# Only raster images inline: a data: URL is the one kind of image the page may load.
DATA_IMAGE = re.compile(r"data:image/(png|jpeg|jpg|gif|webp);base64,[A-Za-z0-9+/=\s]*\Z")
ROLE_STYLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
    "error": "error",
}


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of a message. `kind` is text, thinking, image, link, tool_call, tool_result,
    note or json; `text` is the text, the pretty arguments or result, or the image's URL."""

    kind: str
    text: str = ""
    name: str = ""  # the tool's name, or the id a tool result answers
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    parts: tuple[Part, ...]
    in_response: bool = False

    @property
    def style(self) -> str:
        return ROLE_STYLES.get(self.role, "other")


@dataclass(frozen=True, slots=True)
class Conversation:
    messages: tuple[Message, ...] = ()
    notes: tuple[str, ...] = field(default=())


def conversation(request_body: Any, response_body: Any) -> Conversation:
    """The request's messages, then the response's. The response is always shown; the request's
    messages fill what is left of `MAX_MESSAGES` and `MAX_TOTAL_CHARS`."""
    notes: list[str] = []
    asked = _guarded(request_messages, request_body)
    answered = _guarded(response_messages, response_body)
    if asked is None:
        asked = []
        if request_body is not None:
            notes.append("The request body is not a chat format this page knows: see the raw JSON.")
    if answered is None:
        answered = []
        if response_body is not None:
            notes.append("The response body is not a format this page knows: see the raw JSON.")
    answered = [Message(m.role, m.parts, True) for m in answered[:MAX_MESSAGES]]
    kept = _first_within(asked, MAX_MESSAGES - len(answered), MAX_TOTAL_CHARS - _size(answered))
    if len(kept) < len(asked):
        notes.append(f"Showing the first {len(kept)} of the request's {len(asked)} messages.")
    return Conversation((*kept, *answered), tuple(notes))


def _first_within(messages: list[Message], most: int, chars: int) -> list[Message]:
    kept: list[Message] = []
    for message in messages[: max(most, 0)]:
        chars -= _size([message])
        if chars < 0:
            break
        kept.append(message)
    return kept


def _size(messages: list[Message]) -> int:
    return sum(len(part.text) for message in messages for part in message.parts)


def _guarded(parse: Any, body: Any) -> list[Message] | None:
    """`parse(body)`, or None when the body has an unexpected shape deep inside: a page must
    render whatever a client sent."""
    if body is None:
        return None
    try:
        found: list[Message] | None = parse(body)
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        return None
    return found


# Requests


def request_messages(body: Any) -> list[Message] | None:
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("messages"), list):  # OpenAI chat, Anthropic Messages
        system = _system_message(body.get("system"))
        return [*system, *(_chat_message(m) for m in body["messages"])]
    if isinstance(body.get("contents"), list) or "systemInstruction" in body:  # Gemini
        instruction = body.get("systemInstruction") or body.get("system_instruction")
        found = _gemini_content(instruction)
        head = [Message("system", found.parts)] if found else []
        return [*head, *_gemini_contents(body.get("contents") or [])]
    if "input" in body:  # OpenAI Responses
        instructions = body.get("instructions")
        head = [Message("system", (_text(instructions),))] if isinstance(instructions, str) else []
        return [*head, *_responses_items(body["input"])]
    if isinstance(body.get("prompt"), str):  # legacy completions
        return [Message("user", (_text(body["prompt"]),))]
    return None


def _system_message(system: Any) -> list[Message]:
    """Anthropic's top-level `system`: a string or a list of text blocks."""
    if isinstance(system, str) and system:
        return [Message("system", (_text(system),))]
    if isinstance(system, list) and system:
        return [Message("system", tuple(_blocks(system)))]
    return []


def _chat_message(message: Any) -> Message:
    if not isinstance(message, dict):
        return Message("other", (_json(message),))
    role = str(message.get("role") or "other")
    parts = list(_content(message.get("content")))
    if message.get("reasoning_content"):
        parts.insert(0, _text(str(message["reasoning_content"]), "thinking"))
    for call in message.get("tool_calls") or []:
        parts.append(_openai_tool_call(call))
    if isinstance(message.get("function_call"), dict):
        parts.append(_openai_tool_call({"function": message["function_call"]}))
    if role in ("tool", "function"):
        answered = str(message.get("tool_call_id") or message.get("name") or "")
        text = "\n".join(part.text for part in parts if part.kind == "text")
        parts = [_text(text, "tool_result", answered), *(p for p in parts if p.kind != "text")]
    if message.get("refusal"):
        parts.append(_text(str(message["refusal"]), "note"))
    return Message(role, tuple(parts))


def _openai_tool_call(call: Any) -> Part:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict):
        return _json(call)
    return _text(
        _pretty_arguments(function.get("arguments")), "tool_call", str(function.get("name"))
    )


def _content(content: Any) -> Iterator[Part]:
    if content is None:
        return
    if isinstance(content, str):
        if content:
            yield _text(content)
    elif isinstance(content, list):
        yield from _blocks(content)
    else:
        yield _json(content)


def _blocks(blocks: Iterable[Any]) -> Iterator[Part]:
    """Content blocks of OpenAI (text, image_url, input_text, input_image) and Anthropic (text,
    image, tool_use, tool_result, thinking) alike; unknown blocks as JSON."""
    for block in blocks:
        if isinstance(block, str):
            yield _text(block)
            continue
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in ("text", "input_text", "output_text") and isinstance(block.get("text"), str):
            yield _text(block["text"])
        elif kind == "image_url":
            image = block.get("image_url")
            yield _image(image.get("url") if isinstance(image, dict) else image)
        elif kind == "input_image":
            yield _image(block.get("image_url"))
        elif kind in ("image", "document"):
            yield _anthropic_source(block.get("source"))
        elif kind in ("tool_use", "server_tool_use"):
            yield _text(_pretty(block.get("input")), "tool_call", str(block.get("name")))
        elif kind == "tool_result":
            yield _tool_result(block)
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            yield _text(block["thinking"], "thinking")
        elif kind == "redacted_thinking":
            yield Part("note", "(redacted thinking)")
        elif kind == "refusal" and isinstance(block.get("refusal"), str):
            yield _text(block["refusal"], "note")
        else:
            yield _json(block)


def _tool_result(block: dict[str, Any]) -> Part:
    content = block.get("content")
    if isinstance(content, list):
        texts = [p.text if p.kind == "text" else f"[{p.kind}]" for p in _blocks(content)]
        text = "\n".join(texts)
    elif isinstance(content, str):
        text = content
    else:
        text = _pretty(content)
    if block.get("is_error"):
        text = f"(error) {text}"
    return _text(text, "tool_result", str(block.get("tool_use_id") or ""))


def _anthropic_source(source: Any) -> Part:
    if not isinstance(source, dict):
        return _json(source)
    if source.get("type") == "base64":
        return _image(f"data:{source.get('media_type')};base64,{source.get('data')}")
    if source.get("type") == "url":
        return _image(source.get("url"))
    return _json(source)


def _gemini_contents(contents: Iterable[Any]) -> list[Message]:
    messages = []
    for content in contents:
        message = _gemini_content(content)
        if message is not None:
            messages.append(message)
    return messages


def _gemini_content(content: Any) -> Message | None:
    if isinstance(content, str):
        return Message("user", (_text(content),))
    if not isinstance(content, dict):
        return None
    parts = tuple(_gemini_parts(content.get("parts") or []))
    return Message(str(content.get("role") or "user"), parts)


def _gemini_parts(parts: Iterable[Any]) -> Iterator[Part]:
    for part in parts:
        if not isinstance(part, dict):
            yield _json(part)
        elif isinstance(part.get("text"), str):
            yield _text(part["text"], "thinking" if part.get("thought") else "text")
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            yield _text(_pretty(call.get("args")), "tool_call", str(call.get("name")))
        elif isinstance(part.get("functionResponse"), dict):
            answer = part["functionResponse"]
            yield _text(_pretty(answer.get("response")), "tool_result", str(answer.get("name")))
        elif isinstance(part.get("inlineData"), dict):
            data = part["inlineData"]
            yield _image(f"data:{data.get('mimeType')};base64,{data.get('data')}")
        elif isinstance(part.get("fileData"), dict):
            yield _image(part["fileData"].get("fileUri"))
        else:
            yield _json(part)


def _responses_items(items: Any) -> list[Message]:
    """OpenAI Responses `input` or `output`: a string, or messages and typed items."""
    if isinstance(items, str):
        return [Message("user", (_text(items),))]
    messages = []
    for item in items if isinstance(items, list) else [items]:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "function_call":
            call = {"function": {"name": item.get("name"), "arguments": item.get("arguments")}}
            messages.append(Message("assistant", (_openai_tool_call(call),)))
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _pretty(output)
            messages.append(
                Message("tool", (_text(text, "tool_result", str(item.get("call_id"))),))
            )
        elif kind == "reasoning":
            summary = [s.get("text", "") for s in item.get("summary") or [] if isinstance(s, dict)]
            if summary:
                messages.append(Message("assistant", (_text("\n".join(summary), "thinking"),)))
        elif isinstance(item, dict) and "role" in item:
            messages.append(Message(str(item["role"]), tuple(_content(item.get("content")))))
        else:
            messages.append(Message("other", (_json(item),)))
    return messages


# Responses


def response_messages(body: Any) -> list[Message] | None:
    if isinstance(body, str):
        return _stream_messages(body)
    if isinstance(body, list):  # Gemini streamGenerateContent without alt=sse: an array
        return _assembled(body)
    if not isinstance(body, dict):
        return None
    if isinstance(body.get("error"), dict | str):
        error = body["error"]
        message = error.get("message") if isinstance(error, dict) else error
        return [Message("error", (_text(str(message or _pretty(error))),))]
    if isinstance(body.get("choices"), list):  # OpenAI chat and completions
        return [_openai_choice(choice) for choice in body["choices"]]
    if body.get("type") == "message" or (body.get("role") and "content" in body):  # Anthropic
        return [_chat_message({"role": body.get("role") or "assistant", **body})]
    if isinstance(body.get("candidates"), list):  # Gemini
        return _gemini_contents(c.get("content") for c in body["candidates"])
    if isinstance(body.get("output"), list):  # OpenAI Responses
        return _responses_items(body["output"])
    return None


def _openai_choice(choice: Any) -> Message:
    if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
        return _chat_message(choice["message"])
    if isinstance(choice, dict) and isinstance(choice.get("text"), str):
        return Message("assistant", (_text(choice["text"]),))
    return Message("assistant", (_json(choice),))


def _stream_messages(text: str) -> list[Message] | None:
    """A streamed response is stored as the server-sent events as they came."""
    if "data:" not in text[:2000]:
        return None
    events = list(iter_json_events(text.encode("utf-8", "replace")))
    if not events:
        return None
    return _assembled(events)


def _assembled(events: list[Any]) -> list[Message] | None:
    chunks = [event for event in events if isinstance(event, dict)]
    if not chunks:
        return None
    first = chunks[0]
    if any(isinstance(chunk.get("choices"), list) for chunk in chunks):
        return OpenAIStream().feed(chunks)
    if any(isinstance(chunk.get("candidates"), list) for chunk in chunks):
        return _gemini_stream(chunks)
    if any(str(chunk.get("type", "")).startswith("response.") for chunk in chunks):
        return _responses_stream(chunks)
    if first.get("type") == "message_start" or any("delta" in chunk for chunk in chunks):
        return AnthropicStream().feed(chunks)
    return response_messages(first) if len(chunks) == 1 else None


class OpenAIStream:
    """Chat completion chunks: content and tool-call argument deltas, by choice and call index."""

    def __init__(self) -> None:
        self.roles: dict[int, str] = {}
        self.texts: dict[int, list[str]] = {}
        self.thinking: dict[int, list[str]] = {}
        self.calls: dict[int, dict[int, dict[str, Any]]] = {}

    def feed(self, chunks: list[dict[str, Any]]) -> list[Message]:
        for chunk in chunks:
            for choice in chunk.get("choices") or []:
                self._choice(choice)
        return [self._message(index) for index in sorted({*self.texts, *self.calls, *self.roles})]

    def _choice(self, choice: dict[str, Any]) -> None:
        index = int(choice.get("index") or 0)
        delta = choice.get("delta") or {}
        if isinstance(choice.get("text"), str):  # legacy completions
            delta = {"content": choice["text"]}
        if delta.get("role"):
            self.roles[index] = str(delta["role"])
        if isinstance(delta.get("content"), str):
            self.texts.setdefault(index, []).append(delta["content"])
        if isinstance(delta.get("reasoning_content"), str):
            self.thinking.setdefault(index, []).append(delta["reasoning_content"])
        for call in delta.get("tool_calls") or []:
            slot = self.calls.setdefault(index, {}).setdefault(
                int(call.get("index") or 0), {"name": "", "arguments": []}
            )
            function = call.get("function") or {}
            if function.get("name"):
                slot["name"] = str(function["name"])
            if isinstance(function.get("arguments"), str):
                slot["arguments"].append(function["arguments"])

    def _message(self, index: int) -> Message:
        parts = []
        if self.thinking.get(index):
            parts.append(_text("".join(self.thinking[index]), "thinking"))
        if self.texts.get(index):
            parts.append(_text("".join(self.texts[index])))
        for _, call in sorted(self.calls.get(index, {}).items()):
            arguments = _pretty_arguments("".join(call["arguments"]))
            parts.append(_text(arguments, "tool_call", call["name"]))
        return Message(self.roles.get(index, "assistant"), tuple(parts))


class AnthropicStream:
    """Messages stream events: blocks opened by `content_block_start`, grown by deltas."""

    def __init__(self) -> None:
        self.role = "assistant"
        self.blocks: dict[int, dict[str, Any]] = {}
        self.pieces: dict[int, list[str]] = {}

    def feed(self, events: list[dict[str, Any]]) -> list[Message]:
        for event in events:
            kind = event.get("type")
            if kind == "message_start" and isinstance(event.get("message"), dict):
                self.role = str(event["message"].get("role") or "assistant")
            elif kind == "content_block_start":
                index = int(event.get("index") or 0)
                self.blocks[index] = dict(event.get("content_block") or {})
            elif kind == "content_block_delta":
                self._delta(int(event.get("index") or 0), event.get("delta") or {})
            elif kind == "error":
                return response_messages(event) or []
        return [Message(self.role, tuple(self._parts()))]

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        self.blocks.setdefault(index, {"type": "text"})
        for key in ("text", "partial_json", "thinking"):
            if isinstance(delta.get(key), str):
                self.pieces.setdefault(index, []).append(delta[key])

    def _parts(self) -> Iterator[Part]:
        for index, block in sorted(self.blocks.items()):
            grown = "".join(self.pieces.get(index, []))
            kind = block.get("type")
            if kind in ("tool_use", "server_tool_use"):
                arguments = _pretty_arguments(grown) if grown else _pretty(block.get("input"))
                yield _text(arguments, "tool_call", str(block.get("name")))
            elif kind == "thinking":
                yield _text(str(block.get("thinking") or "") + grown, "thinking")
            elif kind == "text":
                yield _text(str(block.get("text") or "") + grown)
            else:
                yield from _blocks([block])


def _gemini_stream(chunks: list[dict[str, Any]]) -> list[Message]:
    """Each chunk carries the next parts of the first candidate: adjacent texts are joined."""
    parts: list[Part] = []
    role = "model"
    for chunk in chunks:
        if isinstance(chunk.get("error"), dict):
            return response_messages(chunk) or []
        for candidate in chunk.get("candidates") or []:
            content = candidate.get("content") if isinstance(candidate, dict) else None
            if not isinstance(content, dict):
                continue
            role = str(content.get("role") or role)
            for part in _gemini_parts(content.get("parts") or []):
                if parts and part.kind in ("text", "thinking") and part.kind == parts[-1].kind:
                    parts[-1] = _text(parts[-1].text + part.text, part.kind)
                else:
                    parts.append(part)
    return [Message(role, tuple(parts))]


def _responses_stream(events: list[dict[str, Any]]) -> list[Message] | None:
    """Responses API events: the final `response.completed` holds the whole output."""
    for event in reversed(events):
        response = event.get("response")
        if event.get("type") == "response.completed" and isinstance(response, dict):
            return response_messages(response)
    deltas = [str(e.get("delta")) for e in events if e.get("type") == "response.output_text.delta"]
    return [Message("assistant", (_text("".join(deltas)),))]


# Parts


def _text(text: str, kind: str = "text", name: str = "") -> Part:
    if len(text) > MAX_TEXT_CHARS:
        return Part(kind, text[:MAX_TEXT_CHARS], name, truncated=True)
    return Part(kind, text, name)


def _image(url: Any) -> Part:
    """A data: image inline; any other URL only as text to follow (never loaded by the page)."""
    if not isinstance(url, str):
        return _json(url)
    if len(url) > MAX_IMAGE_CHARS and url.startswith("data:"):
        size = len(url) * 3 // 4 // 1024
        return Part("note", f"(an attachment of about {size:,} KB, too large to show here)")
    if DATA_IMAGE.match(url):
        return Part("image", url)
    if url.startswith("data:"):
        return Part("note", f"(an attachment of type {url[5:].split(';')[0][:60] or 'unknown'})")
    return Part("link", url[:2000])


def _json(value: Any) -> Part:
    return _text(_pretty(value), "json")


def _pretty(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def _pretty_arguments(arguments: Any) -> str:
    """Tool arguments arrive as a JSON string (OpenAI): pretty when they parse, else as sent."""
    if not isinstance(arguments, str):
        return _pretty(arguments)
    try:
        return _pretty(orjson.loads(arguments))
    except orjson.JSONDecodeError:
        return arguments
