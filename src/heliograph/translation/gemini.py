"""OpenAI chat completions ⇄ Gemini generateContent: the request path and body, the answer, the
`alt=sse` stream event by event, and errors. Whatever Gemini cannot express is refused with
`Untranslatable` naming the field; only what changes no answer (caller labels, a message's
`name`, an image's `detail`, a tool's `strict`) is left out."""

from __future__ import annotations

import re
from typing import Any

import orjson

from heliograph.providers.sse import as_int
from heliograph.translation.chat_shape import completion
from heliograph.translation.errors import Untranslatable

# Gemini model ids are plain names; anything else could steer the upstream path elsewhere.
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# OpenAI numbers copied unchanged into generationConfig, and the type each must have.
_NUMERIC_CONFIG: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "max_tokens": ("maxOutputTokens", int),
    "max_completion_tokens": ("maxOutputTokens", int),
    "temperature": ("temperature", (int, float)),
    "top_p": ("topP", (int, float)),
    "n": ("candidateCount", int),
    "seed": ("seed", int),
    "presence_penalty": ("presencePenalty", (int, float)),
    "frequency_penalty": ("frequencyPenalty", (int, float)),
}

# Accepted as long as they ask for nothing Gemini lacks (checked in `_check_inert`).
# `model`, `stream` and `stream_options` are the caller's (path and `GeminiStream`).
_OTHER_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "stop",
        "response_format",
        "reasoning_effort",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "logprobs",
        "modalities",
        "store",
    }
)

# Strings that only label the caller or its cache; they change no answer, so need no equivalent.
_LABELS = frozenset({"user", "safety_identifier", "prompt_cache_key"})

# A Gemini thought signature rides in the tool call id it belongs to (Gemini 3 refuses a
# function call sent back without it); base64 is re-spelt URL-safe so the id stays [A-Za-z0-9_-].
_SIGNATURE_MARK = "__sig_"
_TO_ID = str.maketrans("+/", "-_", "=")
_FROM_ID = str.maketrans("-_", "+/")

# Gemini 2.5's budgets in tokens; 0 turns thinking off where the model allows it.
_THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}

# The image types Gemini takes, by a URL path's extension (the `mimetypes` module would read
# system files, and a translation does no I/O).
_IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "heic": "image/heic",
    "heif": "image/heif",
    "gif": "image/gif",
}

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
    }
)

_ERROR_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "ALREADY_EXISTS": "invalid_request_error",
    "UNIMPLEMENTED": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "CANCELLED": "server_error",
    "DEADLINE_EXCEEDED": "timeout_error",
    "ABORTED": "server_error",
    "INTERNAL": "server_error",
    "UNAVAILABLE": "server_error",
    "DATA_LOSS": "server_error",
    "UNKNOWN": "server_error",
}


def gemini_path(model: str, stream: bool) -> str:
    """The upstream path for `model`; a name that is not a plain Gemini model id is refused."""
    if not _MODEL_NAME.fullmatch(model) or ".." in model:
        raise Untranslatable(f"model: {model[:80]!r} is not a Gemini model name")
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{model}:{method}"


# ---------------------------------------------------------------------------------------------
# Request: OpenAI chat → generateContent


def chat_to_gemini(chat: dict[str, Any]) -> dict[str, Any]:
    """The generateContent body asking what `chat` asks; `Untranslatable` names any field,
    part or value Gemini has no equivalent for."""
    fields = {key: value for key, value in chat.items() if value is not None}
    _check_fields(fields)
    system, contents = _contents(fields.get("messages"))
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if "tools" in fields:
        body["tools"] = _tools(fields["tools"])
    if "tool_choice" in fields:
        body["toolConfig"] = {"functionCallingConfig": _tool_choice(fields["tool_choice"])}
    config = _generation_config(fields)
    if config:
        body["generationConfig"] = config
    return body


def _check_fields(fields: dict[str, Any]) -> None:
    for key in fields:
        if key in _LABELS:
            if not isinstance(fields[key], str):
                raise Untranslatable(f"{key}: must be a string")
        elif key not in _NUMERIC_CONFIG and key not in _OTHER_FIELDS:
            raise Untranslatable(f"{key}: Gemini has no equivalent")
    _check_inert(fields)


def _check_inert(fields: dict[str, Any]) -> None:
    """Refuse the accepted fields' values that ask for something Gemini cannot do."""
    if fields.get("parallel_tool_calls") is False:
        raise Untranslatable("parallel_tool_calls: Gemini cannot be limited to one call a turn")
    if fields.get("logprobs"):
        raise Untranslatable("logprobs: not translated for Gemini")
    if fields.get("store"):
        raise Untranslatable("store: Gemini does not store completions")
    if fields.get("modalities", ["text"]) != ["text"]:
        raise Untranslatable("modalities: only ['text'] is translated for Gemini")


def _generation_config(fields: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, (name, kind) in _NUMERIC_CONFIG.items():
        if key in fields:
            value = fields[key]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise Untranslatable(f"{key}: must be a number")
            config[name] = value
    if "stop" in fields:
        config["stopSequences"] = _stop(fields["stop"])
    if "response_format" in fields:
        config.update(_response_format(fields["response_format"]))
    if "reasoning_effort" in fields:
        config["thinkingConfig"] = _thinking(fields["reasoning_effort"])
    return config


def _stop(stop: Any) -> list[str]:
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, list) or not all(isinstance(s, str) for s in sequences):
        raise Untranslatable("stop: must be a string or a list of strings")
    return sequences


def _response_format(response_format: Any) -> dict[str, Any]:
    """JSON mode as a MIME type; a json_schema as `responseJsonSchema`, which takes JSON Schema
    as written (the older `responseSchema` takes only an OpenAPI subset)."""
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise Untranslatable("response_format.json_schema.schema: must be an object")
        return {"responseMimeType": "application/json", "responseJsonSchema": schema}
    raise Untranslatable(f"response_format.type: {kind!r} is not translated for Gemini")


def _thinking(effort: Any) -> dict[str, Any]:
    """A token budget per effort; thought summaries are asked for (as `reasoning_content`)
    whenever thinking is on, since a caller setting an effort reads reasoning."""
    if not isinstance(effort, str) or effort not in _THINKING_BUDGETS:
        raise Untranslatable(f"reasoning_effort: {effort!r} is not translated for Gemini")
    budget = _THINKING_BUDGETS[effort]
    return {"thinkingBudget": budget, "includeThoughts": budget > 0}


# Messages ------------------------------------------------------------------------------------


def _contents(messages: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """System parts (every system or developer message, in order) and the turns, with
    consecutive turns of one role merged as Gemini expects alternation."""
    if not isinstance(messages, list) or not messages:
        raise Untranslatable("messages: must be a non-empty list")
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, dict):
            raise Untranslatable(f"{where}: must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), where))
            continue
        gemini_role, parts = _turn(message, role, where, call_names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents:
        raise Untranslatable("messages: Gemini needs at least one user or assistant message")
    return system, contents


def _turn(
    message: dict[str, Any], role: Any, where: str, call_names: dict[str, str]
) -> tuple[str, list[dict[str, Any]]]:
    unknown = set(message) - {"role", "content", "name", "tool_calls", "tool_call_id", "refusal"}
    if unknown:
        raise Untranslatable(f"{where}.{min(unknown)}: Gemini has no equivalent")
    if role == "user":
        return "user", _user_parts(message.get("content"), where)
    if role == "assistant":
        return "model", _assistant_parts(message, where, call_names)
    if role == "tool":
        return "user", [_function_response(message, where, call_names)]
    raise Untranslatable(f"{where}.role: {role!r} is not translated for Gemini")


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise Untranslatable(f"{where}.content: must be a string or a list of parts")
    return [_text_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]


def _text_part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    text = part.get(kind) if kind in ("text", "refusal") else None
    if not isinstance(text, str):
        raise Untranslatable(f"{where}: only text parts are translated here")
    return {"text": text}


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return _text_parts(content or "", where)
    if not isinstance(content, list):
        raise Untranslatable(f"{where}.content: must be a string or a list of parts")
    return [_user_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]


def _user_part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "image_url":
        url = part["image_url"].get("url") if isinstance(part.get("image_url"), dict) else None
        return _media_part(url, f"{where}.image_url.url")
    if kind == "input_audio":
        return _audio_part(part.get("input_audio"), f"{where}.input_audio")
    if kind == "file":
        return _file_part(part.get("file"), f"{where}.file")
    return _text_part(part, where)


def _media_part(url: Any, where: str) -> dict[str, Any]:
    """A data URL inline; an http(s) URL as `fileData` for Gemini to fetch itself (Gemini 2.5
    and later fetch public URLs), with a MIME type guessed from its path when it has one."""
    if not isinstance(url, str):
        raise Untranslatable(f"{where}: must be a string")
    if url.startswith("data:"):
        return {"inlineData": _data_url(url, where)}
    if url.startswith(("https://", "http://")):
        file_data = {"fileUri": url}
        path = url.split("?", 1)[0].split("#", 1)[0]
        mime = _IMAGE_TYPES.get(path.rpartition(".")[2].lower())
        if mime:
            file_data["mimeType"] = mime
        return {"fileData": file_data}
    raise Untranslatable(f"{where}: only data: and http(s) URLs are translated for Gemini")


def _data_url(url: str, where: str) -> dict[str, str]:
    header, comma, data = url[5:].partition(",")
    mime, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not mime:
        raise Untranslatable(f"{where}: a data URL must be data:<type>;base64,<data>")
    return {"mimeType": mime, "data": data}


def _audio_part(audio: Any, where: str) -> dict[str, Any]:
    audio_format = audio.get("format") if isinstance(audio, dict) else None
    if audio_format not in ("wav", "mp3") or not isinstance(audio.get("data"), str):
        raise Untranslatable(f"{where}: needs base64 data and a format of wav or mp3")
    return {"inlineData": {"mimeType": f"audio/{audio_format}", "data": audio["data"]}}


def _file_part(file: Any, where: str) -> dict[str, Any]:
    data = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data, str):
        raise Untranslatable(f"{where}: only file_data (a data URL) is translated for Gemini")
    return {"inlineData": _data_url(data, f"{where}.file_data")}


def _assistant_parts(
    message: dict[str, Any], where: str, call_names: dict[str, str]
) -> list[dict[str, Any]]:
    content = message.get("content")
    parts = _text_parts(content, where) if content is not None else []
    if not parts and isinstance(message.get("refusal"), str):
        parts = _text_parts(message["refusal"], where)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise Untranslatable(f"{where}.tool_calls: must be a list")
    for i, call in enumerate(calls):
        parts.append(_function_call(call, f"{where}.tool_calls[{i}]", call_names))
    return parts


def _function_call(call: Any, where: str, call_names: dict[str, str]) -> dict[str, Any]:
    if not isinstance(call, dict) or call.get("type", "function") != "function":
        raise Untranslatable(f"{where}: only function tool calls are translated for Gemini")
    function = call.get("function")
    if not isinstance(function, dict):
        raise Untranslatable(f"{where}.function: must be an object")
    name, arguments = function.get("name"), function.get("arguments") or "{}"
    if not isinstance(name, str) or not isinstance(arguments, str):
        raise Untranslatable(f"{where}.function: needs a name and arguments as a string")
    args = _json_object(arguments)
    if args is None:
        raise Untranslatable(f"{where}.function.arguments: must be a JSON object")
    part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
    call_id = call.get("id")
    if isinstance(call_id, str):
        call_names[call_id] = name
        _, marked, signature = call_id.partition(_SIGNATURE_MARK)
        if marked and signature:
            part["thoughtSignature"] = _signature_from_id(signature)
    return part


def _signature_from_id(signature: str) -> str:
    standard = signature.translate(_FROM_ID)
    return standard + "=" * (-len(standard) % 4)


def _function_response(
    message: dict[str, Any], where: str, call_names: dict[str, str]
) -> dict[str, Any]:
    """Gemini names the function a result answers, not a call id: the name comes from the
    assistant call with that id; a result that is not a JSON object becomes {"result": ...}."""
    call_id = message.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise Untranslatable(f"{where}.tool_call_id: no earlier assistant tool call has id")
    content = message.get("content")
    text = content if isinstance(content, str) else _joined_text(content, where)
    response = _json_object(text)
    if response is None:
        response = {"result": _json_value(text)}
    return {"functionResponse": {"name": name, "response": response}}


def _joined_text(content: Any, where: str) -> str:
    return "".join(part["text"] for part in _text_parts(content, where))


def _json_object(text: str) -> dict[str, Any] | None:
    value = _json_value(text)
    return value if isinstance(value, dict) else None


def _json_value(text: str) -> Any:
    """The JSON `text` holds, or the text itself when it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


# Tools ---------------------------------------------------------------------------------------


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise Untranslatable("tools: must be a list")
    declarations = [_declaration(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    return [{"functionDeclarations": declarations}] if declarations else []


def _declaration(tool: Any, where: str) -> dict[str, Any]:
    """Parameters go as `parametersJsonSchema`, which takes JSON Schema as written, so no
    conversion to the OpenAPI subset of `parameters` (and nothing lost in one)."""
    if not isinstance(tool, dict) or tool.get("type") != "function":
        raise Untranslatable(f"{where}: only function tools are translated for Gemini")
    function = tool.get("function")
    if not isinstance(function, dict):
        raise Untranslatable(f"{where}.function: must be an object")
    unknown = set(function) - {"name", "description", "parameters", "strict"}
    if unknown:
        raise Untranslatable(f"{where}.function.{min(unknown)}: Gemini has no equivalent")
    if not isinstance(function.get("name"), str):
        raise Untranslatable(f"{where}.function.name: must be a string")
    declaration: dict[str, Any] = {"name": function["name"]}
    if isinstance(function.get("description"), str):
        declaration["description"] = function["description"]
    if function.get("parameters") is not None:
        if not isinstance(function["parameters"], dict):
            raise Untranslatable(f"{where}.function.parameters: must be a JSON Schema object")
        declaration["parametersJsonSchema"] = function["parameters"]
    return declaration


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if isinstance(name, str) and choice.get("type") == "function":
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    raise Untranslatable("tool_choice: only auto, none, required or one function translate")


# ---------------------------------------------------------------------------------------------
# Response: generateContent → OpenAI chat.completion


def gemini_to_chat(
    response: dict[str, Any], model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """The `chat.completion` for a generateContent answer; a prompt Gemini blocked (no
    candidates) is one empty choice finished by `content_filter`."""
    candidates = response.get("candidates")
    if isinstance(candidates, list) and candidates:
        choices = [
            _choice(candidate, position, completion_id)
            for position, candidate in enumerate(candidates)
        ]
    else:
        message = {"role": "assistant", "content": None}
        choices = [{"index": 0, "message": message, "finish_reason": _blocked_reason(response)}]
    return completion(completion_id, created, model, choices, _usage(response.get("usageMetadata")))


def _choice(candidate: Any, position: int, completion_id: str) -> dict[str, Any]:
    index = _choice_index(candidate, position)
    text, thought, calls = _read_parts(candidate)
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if thought:
        message["reasoning_content"] = thought
    if calls:
        message["tool_calls"] = [
            _tool_call(completion_id, index, n, call) for n, call in enumerate(calls)
        ]
    reason = candidate.get("finishReason") if isinstance(candidate, dict) else None
    return {
        "index": index,
        "message": message,
        "finish_reason": _finish_reason(reason, bool(calls)),
    }


def _choice_index(candidate: Any, position: int) -> int:
    index = candidate.get("index") if isinstance(candidate, dict) else None
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def _read_parts(candidate: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """A candidate's answer text, thought text and function calls."""
    content = candidate.get("content") if isinstance(candidate, dict) else None
    parts = content.get("parts") if isinstance(content, dict) else None
    text: list[str] = []
    thought: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            calls.append(_with_signature(part))
        elif isinstance(part.get("text"), str):
            (thought if part.get("thought") is True else text).append(part["text"])
    return "".join(text), "".join(thought), calls


def _with_signature(part: dict[str, Any]) -> dict[str, Any]:
    call: dict[str, Any] = part["functionCall"]
    signature = part.get("thoughtSignature")
    return {**call, "thoughtSignature": signature} if isinstance(signature, str) else call


def _tool_call(completion_id: str, choice: int, n: int, call: dict[str, Any]) -> dict[str, Any]:
    """Gemini's calls carry no id; one is made from the completion, choice and position (plus
    the call's thought signature), so it is the same wherever the call appears in one response
    and unique across responses."""
    args = call.get("args")
    call_id = f"call_{completion_id}_{choice}_{n}"
    signature = call.get("thoughtSignature")
    if isinstance(signature, str) and signature:
        call_id += _SIGNATURE_MARK + signature.translate(_TO_ID)
    return {
        "id": call_id,
        "type": "function",
        "function": {
            "name": call.get("name") if isinstance(call.get("name"), str) else "",
            "arguments": orjson.dumps(args if isinstance(args, dict) else {}).decode(),
        },
    }


def _finish_reason(reason: Any, has_calls: bool) -> str | None:
    """OpenAI's reason for Gemini's; the ones with no OpenAI match (OTHER,
    MALFORMED_FUNCTION_CALL, …) read as `stop`."""
    if reason is None:
        return None
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if has_calls else "stop"


def _blocked_reason(response: dict[str, Any]) -> str:
    feedback = response.get("promptFeedback")
    blocked = isinstance(feedback, dict) and feedback.get("blockReason")
    return "content_filter" if blocked else "stop"


def _usage(metadata: Any) -> dict[str, Any] | None:
    """OpenAI usage: prompt tokens include the cached ones (as in OpenAI's), completion tokens
    include the thinking ones, each split out in its details."""
    if not isinstance(metadata, dict):
        return None
    prompt = _count(metadata, "promptTokenCount")
    thoughts = _count(metadata, "thoughtsTokenCount")
    completion = _count(metadata, "candidatesTokenCount") + thoughts
    total = metadata.get("totalTokenCount")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total if isinstance(total, int) else prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _count(metadata, "cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def _count(metadata: dict[str, Any], key: str) -> int:
    return as_int(metadata.get(key)) or 0


# ---------------------------------------------------------------------------------------------
# Stream: streamGenerateContent?alt=sse → OpenAI chat.completion.chunk events


class GeminiStream:
    """Turns Gemini's SSE bytes, split anywhere, into OpenAI chunk events as they arrive: each
    Gemini event (a partial GenerateContentResponse) becomes a chunk per candidate, plus a
    finishing chunk; usage (cumulative in Gemini's events) comes last, when asked for."""

    def __init__(self, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        self._head: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._completion_id = completion_id
        self._include_usage = include_usage
        self._buffer = bytearray()
        self._scanned = 0
        self._data: list[bytes] = []
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}
        self._finished: set[int] = set()
        self._usage: dict[str, Any] | None = None
        self._ended = False

    def feed(self, data: bytes) -> bytes:
        """OpenAI SSE bytes for every Gemini event `data` completes."""
        if self._ended:
            return b""
        self._buffer += data
        out: list[bytes] = []
        while not self._ended:
            end = self._buffer.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(self._buffer)
                break
            line = bytes(self._buffer[:end]).rstrip(b"\r")
            del self._buffer[: end + 1]
            self._scanned = 0
            self._line(line, out)
        return b"".join(out)

    def close(self) -> bytes:
        """The last event (if upstream left it unterminated), usage, then `[DONE]`."""
        if self._ended:
            return b""
        out: list[bytes] = []
        if self._buffer:
            self._line(bytes(self._buffer).rstrip(b"\r"), out)
            self._buffer.clear()
        self._line(b"", out)
        if not self._ended:
            if self._include_usage and self._usage is not None:
                out.append(_sse({**self._head, "choices": [], "usage": self._usage}))
            out.append(b"data: [DONE]\n\n")
            self._ended = True
        return b"".join(out)

    def _line(self, line: bytes, out: list[bytes]) -> None:
        if line.startswith(b"data:"):
            self._data.append(line[5:].lstrip(b" "))
        elif not line and self._data:
            data = b"\n".join(self._data)
            self._data.clear()
            self._event(data, out)

    def _event(self, data: bytes, out: list[bytes]) -> None:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            event = None
        if not isinstance(event, dict):
            self._fail({"message": "Gemini sent a stream event that is not a JSON object"}, out)
        elif "error" in event:
            error = event["error"]
            self._fail(error if isinstance(error, dict) else {"message": str(error)}, out)
        else:
            self._response(event, out)

    def _response(self, event: dict[str, Any], out: list[bytes]) -> None:
        usage = _usage(event.get("usageMetadata"))
        if usage is not None:
            self._usage = usage
        candidates = event.get("candidates")
        if isinstance(candidates, list) and candidates:
            for position, candidate in enumerate(candidates):
                self._candidate(candidate, position, out)
        elif _blocked_reason(event) == "content_filter":
            self._finish(0, "content_filter", out)

    def _candidate(self, candidate: Any, position: int, out: list[bytes]) -> None:
        index = _choice_index(candidate, position)
        text, thought, calls = _read_parts(candidate)
        delta: dict[str, Any] = {}
        if text:
            delta["content"] = text
        if thought:
            delta["reasoning_content"] = thought
        if calls:
            delta["tool_calls"] = self._tool_call_deltas(index, calls)
        if delta:
            out.append(self._chunk(index, delta, None))
        reason = candidate.get("finishReason") if isinstance(candidate, dict) else None
        if reason is not None:
            self._finish(index, _finish_reason(reason, index in self._calls), out)

    def _tool_call_deltas(self, index: int, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        first = self._calls.get(index, 0)
        self._calls[index] = first + len(calls)
        return [
            {"index": n, **_tool_call(self._completion_id, index, n, call)}
            for n, call in enumerate(calls, start=first)
        ]

    def _finish(self, index: int, reason: str | None, out: list[bytes]) -> None:
        if index not in self._finished:
            self._finished.add(index)
            out.append(self._chunk(index, {}, reason))

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None) -> bytes:
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
        choice = {"index": index, "delta": delta, "finish_reason": finish}
        return _sse({**self._head, "choices": [choice]})

    def _fail(self, error: dict[str, Any], out: list[bytes]) -> None:
        """An error ends the stream: OpenAI's error event, then `[DONE]`; the rest is ignored."""
        out.append(_sse(_openai_error(error, 500)))
        out.append(b"data: [DONE]\n\n")
        self._ended = True


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


# ---------------------------------------------------------------------------------------------
# Errors


def error_to_openai(status: int, body: bytes) -> dict[str, Any]:
    """OpenAI's error object for a Gemini error answer of HTTP `status`; a body that is not
    Gemini's error JSON is quoted (its first 500 bytes) as the message."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, list) and document:
        document = document[0]  # streamGenerateContent without alt=sse answers in an array
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict):
        return _openai_error(error, status)
    text = body[:500].decode("utf-8", "replace").strip()
    return _openai_error({"message": text or f"Gemini answered HTTP {status}"}, status)


def _openai_error(error: dict[str, Any], status: int) -> dict[str, Any]:
    grpc_status = error.get("status") if isinstance(error.get("status"), str) else None
    code = error.get("code")
    code = code if isinstance(code, int) else status
    message = error.get("message")
    kind = _ERROR_TYPES.get(grpc_status or "") or _type_for_http(code)
    if _invalid_key(error):
        kind = "authentication_error"  # Gemini says INVALID_ARGUMENT for a bad API key
    return {
        "error": {
            "message": message if isinstance(message, str) else f"Gemini answered HTTP {code}",
            "type": kind,
            "param": None,
            "code": grpc_status.lower() if grpc_status else None,
        }
    }


def _invalid_key(error: dict[str, Any]) -> bool:
    details = error.get("details")
    return isinstance(details, list) and any(
        isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details
    )


_HTTP_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def _type_for_http(status: int) -> str:
    if status >= 500:
        return "server_error"
    return _HTTP_TYPES.get(status, "invalid_request_error")
