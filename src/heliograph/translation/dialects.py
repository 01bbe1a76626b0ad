"""The API each provider speaks, as the unified gateway needs it: the upstream path and body for
an OpenAI chat request, and how the answer (whole, streamed or an error) is turned back into
OpenAI's shape. One `Dialect` per wire format; the gateway picks one per route and never looks
inside a translation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import orjson

from heliograph.translation import anthropic, bedrock, gemini, vertex
from heliograph.translation.aws_event_stream import ConverseStreamTranslator
from heliograph.translation.errors import Untranslatable

ANTHROPIC_VERSION = "2023-06-01"
AZURE_STREAM_USAGE_SINCE = "2024-09-01"  # the first API version that takes `stream_options`


class StreamTranslator(Protocol):
    """Turns a provider's stream into OpenAI SSE bytes as chunks arrive."""

    def feed(self, data: bytes) -> bytes: ...

    def close(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The upstream call for one route: path (with any query) and body; `ask_usage` when the
    gateway added `stream_options.include_usage` and must hide the usage chunk it asked for."""

    path: str
    body: bytes
    ask_usage: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """Where an answer came from, for the translations that need to name it."""

    model: str
    completion_id: str
    created: int
    include_usage: bool  # the client asked for the usage chunk


class Dialect(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def translates(self) -> bool: ...  # False: the provider speaks OpenAI's chat already

    def request(self, chat: dict[str, Any], model: str, stream: bool) -> Outgoing: ...

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        """The whole OpenAI response body for a non-streamed answer or an error of `status`."""

    def stream(self, answer: Answer) -> StreamTranslator: ...


@dataclass(frozen=True, slots=True)
class OpenAIChat:
    """OpenAI and every OpenAI-compatible provider: the body passes with its model replaced."""

    prefix: str = "/v1"  # the path before `/chat/completions`
    injects_usage: bool = True  # the provider takes `stream_options` (Mistral refuses it)
    name: str = "openai"
    translates: bool = False

    def request(self, chat: dict[str, Any], model: str, stream: bool) -> Outgoing:
        body, asked = _with_usage({**chat, "model": model}, stream and self.injects_usage)
        return Outgoing(f"{self.prefix}/chat/completions", orjson.dumps(body), asked)

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        return body

    def stream(self, answer: Answer) -> StreamTranslator:
        raise NotImplementedError("OpenAI streams pass through")


@dataclass(frozen=True, slots=True)
class AzureChat:
    """Azure OpenAI: OpenAI's body under a deployment's path, at the resource's API version."""

    api_version: str
    name: str = "azure"
    translates: bool = False

    def request(self, chat: dict[str, Any], model: str, stream: bool) -> Outgoing:
        takes_usage = stream and self.api_version >= AZURE_STREAM_USAGE_SINCE
        body, asked = _with_usage(dict(chat), takes_usage)
        body.pop("model", None)  # the deployment in the path names it
        deployment = quote(model, safe="")
        version = quote(self.api_version, safe="")
        path = f"/openai/deployments/{deployment}/chat/completions?api-version={version}"
        return Outgoing(path, orjson.dumps(body), asked)

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        return body

    def stream(self, answer: Answer) -> StreamTranslator:
        raise NotImplementedError("Azure streams pass through")


class AnthropicMessages:
    name = "anthropic"
    translates = True

    def __init__(self, path: str = "/v1/messages") -> None:
        self._path = path

    def request(self, chat: dict[str, Any], model: str, stream: bool) -> Outgoing:
        return Outgoing(self._path, orjson.dumps(anthropic.chat_to_messages(chat, model)))

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        if status != 200:
            return orjson.dumps(anthropic.error_to_openai(status, body))
        return orjson.dumps(
            anthropic.messages_to_chat(
                _object(body, _LISTS_ANTHROPIC), answer.model, answer.completion_id, answer.created
            )
        )

    def stream(self, answer: Answer) -> StreamTranslator:
        return anthropic.MessagesStream(
            answer.model, answer.completion_id, answer.created, answer.include_usage
        )


class GeminiGenerate:
    name = "gemini"
    translates = True

    def request(self, chat: dict[str, Any], model: str, stream: bool) -> Outgoing:
        return Outgoing(
            gemini.gemini_path(model, stream), orjson.dumps(gemini.chat_to_gemini(chat))
        )

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        if status != 200:
            return orjson.dumps(gemini.error_to_openai(status, body))
        return orjson.dumps(
            gemini.gemini_to_chat(
                _gemini_object(body), answer.model, answer.completion_id, answer.created
            )
        )

    def stream(self, answer: Answer) -> StreamTranslator:
        return gemini.GeminiStream(
            answer.model, answer.completion_id, answer.created, answer.include_usage
        )


class BedrockConverse:
    name = "bedrock"
    translates = True

    def request(self, chat: dict[str, Any], model: str, stream: bool) -> Outgoing:
        body = bedrock.chat_to_converse(chat, model)
        return Outgoing(bedrock.converse_path(model, stream), orjson.dumps(body))

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        if status != 200:
            return orjson.dumps(bedrock.error_to_openai(status, body, error_type))
        return orjson.dumps(
            bedrock.converse_to_chat(
                _object(body, _LISTS_BEDROCK), answer.model, answer.completion_id, answer.created
            )
        )

    def stream(self, answer: Answer) -> StreamTranslator:
        return ConverseStreamTranslator(
            answer.model, answer.completion_id, answer.created, answer.include_usage
        )


class VertexChat:
    """Vertex AI in one project and location: Claude models through Anthropic's Messages
    (`rawPredict`), every other model through Gemini's generateContent."""

    name = "vertex"
    translates = True

    def __init__(self, project: str, location: str) -> None:
        self._project = project
        self._location = location

    def request(self, chat: dict[str, Any], model: str, stream: bool) -> Outgoing:
        if _is_claude(model):
            path = vertex.vertex_anthropic_path(self._project, self._location, model, stream)
            return Outgoing(path, orjson.dumps(vertex.chat_to_vertex_anthropic(chat, model)))
        path = vertex.vertex_gemini_path(self._project, self._location, model, stream)
        return Outgoing(path, orjson.dumps(gemini.chat_to_gemini(chat)))

    def answer(self, status: int, body: bytes, error_type: str | None, answer: Answer) -> bytes:
        if not _is_claude(answer.model):
            return GeminiGenerate().answer(status, body, error_type, answer)
        if status != 200:
            return orjson.dumps(vertex.anthropic_error_to_openai(status, body))
        return AnthropicMessages().answer(status, body, error_type, answer)

    def stream(self, answer: Answer) -> StreamTranslator:
        if _is_claude(answer.model):
            return AnthropicMessages().stream(answer)
        return GeminiGenerate().stream(answer)


def _is_claude(model: str) -> bool:
    return model.lower().startswith("claude")


def _with_usage(body: dict[str, Any], ask: bool) -> tuple[dict[str, Any], bool]:
    """`body` asking for the usage chunk when `ask` and the client did not ask itself."""
    if not ask:
        return body, False
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        return body, False
    merged = dict(options) if isinstance(options, dict) else {}
    merged["include_usage"] = True
    return {**body, "stream_options": merged}, True


# Where each API's answer holds its content, as a path to a list of objects: an answer without
# it is another API's, or none at all, and would otherwise be translated into an empty reply.
_LISTS_ANTHROPIC = ("content",)
_LISTS_BEDROCK = ("output", "message", "content")


def _object(body: bytes, content: tuple[str, ...] = ()) -> dict[str, Any]:
    """The answer's JSON object, its content at the path `content` a list of objects."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict):
        raise Untranslatable("the provider answered 200 with a body that is not a JSON object")
    if content:
        _require_objects(_at(document, content), ".".join(content))
    return document


def _gemini_object(body: bytes) -> dict[str, Any]:
    """A generateContent answer: candidates (none when the prompt was blocked) whose content
    holds a list of parts."""
    document = _object(body)
    candidates = document.get("candidates")
    if candidates is None and "promptFeedback" in document:
        return document
    for candidate in _require_objects(candidates, "candidates"):
        content = candidate.get("content")
        if content is not None:  # a candidate stopped for safety may have none
            parts = content.get("parts") if isinstance(content, dict) else None
            _require_objects(parts, "candidates.content.parts")
    return document


def _at(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = document
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _require_objects(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Untranslatable(f"the provider answered 200 without a list of objects in `{where}`")
    return value
