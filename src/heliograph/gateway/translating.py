"""What the relay does differently for a unified-API answer in another provider's shape: a chunk
filter translating a stream event by event, the whole translation of a plain answer or an error,
the headers such an answer goes out with, and the note each attempt leaves in the log."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

import orjson

from heliograph.gateway.attempts import Hop
from heliograph.gateway.headers import HOP_BY_HOP
from heliograph.gateway.streams import UsageChunkFilter
from heliograph.translation.dialects import Answer, StreamTranslator
from heliograph.translation.errors import Untranslatable
from heliograph.translation.responses import ResponsesStream, chat_to_response

# Headers about the provider's body, which a translated body no longer is.
BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "etag"})
BAD_ANSWER_STATUS = 502


class ChunkFilter(Protocol):
    """Rewrites a response's bytes on their way to the client, as they arrive."""

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class StreamFilter:
    """A dialect's stream translator as a chunk filter. An event the translator cannot read
    (a provider sending JSON of another shape) ends the client's stream with OpenAI's error
    event instead of taking the request, and its log, down with an exception."""

    def __init__(self, translator: StreamTranslator) -> None:
        self._translator = translator
        self._failed = False

    def feed(self, chunk: bytes) -> bytes:
        if self._failed:
            return b""
        try:
            return self._translator.feed(chunk)
        except Exception as unreadable:  # any failure on the provider's bytes is theirs
            return self._fail(unreadable)

    def flush(self) -> bytes:
        if self._failed:
            return b""
        try:
            return self._translator.close()
        except Exception as unreadable:
            return self._fail(unreadable)

    def _fail(self, unreadable: Exception) -> bytes:
        self._failed = True
        message = f"the provider sent a stream event the gateway cannot read: {unreadable!r}"
        error = {"message": message, "type": "server_error", "param": None, "code": "bad_answer"}
        return b"data: " + orjson.dumps({"error": error}) + b"\n\ndata: [DONE]\n\n"


def answer_for(hop: Hop, request_id: str) -> Answer:
    """How the client's answer names itself: its completion id carries the request's id. A
    translated stream always ends with its usage chunk, so the logged (and cached) copy has
    it; `hides_usage` says when the client did not ask for it."""
    usage = hop.include_usage or hop.dialect.translates
    return Answer(hop.route.model, f"chatcmpl-{_hex(request_id)}", _now(), usage)


def hides_usage(hop: Hop) -> bool:
    """Whether the usage chunk of a translated chat stream is kept from its client."""
    return hop.dialect.translates and hop.responses is None and not hop.include_usage


def _hex(request_id: str) -> str:
    return request_id.replace("-", "")


def _now() -> int:
    return int(time.time())


class Chained:
    """Two filters, the second reading what the first gives."""

    def __init__(self, first: ChunkFilter, second: ChunkFilter) -> None:
        self._first, self._second = first, second

    def feed(self, chunk: bytes) -> bytes:
        return self._second.feed(self._first.feed(chunk))

    def flush(self) -> bytes:
        return self._second.feed(self._first.flush()) + self._second.flush()


def stream_filter(hop: Hop, status: int, request_id: str) -> ChunkFilter | None:
    """The filter a streamed 200 of `hop` goes through, or None when it passes untouched."""
    if status != 200:
        return None
    chat: ChunkFilter | None = None
    if hop.dialect.translates:
        chat = StreamFilter(hop.dialect.stream(answer_for(hop, request_id)))
    elif hop.ask_usage:
        chat = UsageChunkFilter()
    if hop.responses is None:
        return chat
    responses = StreamFilter(ResponsesStream(hop.responses, f"resp_{_hex(request_id)}", _now()))
    return responses if chat is None else Chained(chat, responses)


def whole_answer(
    hop: Hop, status: int, body: bytes, error_type: str | None, request_id: str
) -> tuple[int, bytes, str]:
    """The status, OpenAI-shaped body and logged error for a plain answer or an error; a 200 no
    translation can read becomes a 502 that says so."""
    try:
        translated = hop.dialect.answer(status, body, error_type, answer_for(hop, request_id))
        if hop.responses is not None and status == 200:
            completion = _completion(translated)
            response_id = f"resp_{_hex(request_id)}"
            translated = orjson.dumps(
                chat_to_response(completion, hop.responses, response_id, _now())
            )
    except Exception as unreadable:  # a translation reads the provider's body, whatever it is
        message = f"{hop.provider.name} answered in a shape the gateway cannot read: {unreadable}"
        error = {"message": message, "type": "server_error", "param": None, "code": "bad_answer"}
        # A provider's error keeps its status (a 429 still says "slow down"); a 200 is a 502.
        failed = status if status >= 400 else BAD_ANSWER_STATUS
        return failed, orjson.dumps({"error": error}), message
    return status, translated, ""


def _completion(body: bytes) -> dict[str, Any]:
    """A `chat.completion` the Responses API can be built from: each choice with its message
    (an OpenAI-compatible provider's answer is not checked by any translation before this)."""
    completion: Any = orjson.loads(body)
    if not isinstance(completion, dict):
        raise Untranslatable("the provider answered 200 with a body that is not a JSON object")
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        raise Untranslatable("the provider answered 200 without `choices`")
    if not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices):
        raise Untranslatable("the provider answered 200 with a choice without its `message`")
    return completion


def translated_headers(
    items: Iterable[tuple[str, str]], content_type: str
) -> list[tuple[str, str]]:
    """The provider's headers that still hold for a translated body, and its content type."""
    kept = [
        (name, value)
        for name, value in items
        if name.lower() not in HOP_BY_HOP and name.lower() not in BODY_HEADERS
    ]
    kept.append(("Content-Type", content_type))
    return kept


def attempt_note(hop: Hop, status: int | None) -> str:
    """One attempt, as the `Helicone-Attempts` property lists it: `model/provider=status`."""
    where = f"{hop.route.model}/{hop.route.provider}"
    if hop.route.deployment is not None:
        where = f"{hop.route.provider}:{deployment_name(hop)}"
    return f"{where}={status if status is not None else 'no answer'}"


def deployment_name(hop: Hop) -> str:
    """A deployment as logs name it: its upstream model at its endpoint's host."""
    deployment = hop.route.deployment
    if deployment is None:
        return ""
    host = (deployment.api_base or "").split("://", 1)[-1].split("/", 1)[0]
    return f"{deployment.upstream_model}@{host}" if host else deployment.upstream_model


def hop_properties(hop: Hop, of_several: bool) -> dict[str, str]:
    """What the log says of the route that answered: which one, when there were several to
    try (one is told by the provider and model columns), and its deployment."""
    properties = {}
    if of_several:
        properties["Helicone-Model-Route"] = f"{hop.route.model}/{hop.route.provider}"
    if hop.route.deployment is not None:
        properties["Helicone-Deployment"] = deployment_name(hop)
    return properties


def upstream_error_type(items: Iterable[tuple[str, str]]) -> str | None:
    """AWS's error type header, which Bedrock's error bodies leave out."""
    for name, value in items:
        if name.lower() == "x-amzn-errortype":
            return value
    return None


def broken_stream_event(hop: Hop, message: str) -> bytes:
    """The last event of a stream whose provider broke off: OpenAI's error event (the SDK raises
    it), or the Responses API's `error` event."""
    if hop.responses is not None:
        event = {"type": "error", "code": "upstream_stream_failed", "message": message}
        return b"event: error\ndata: " + orjson.dumps({**event, "param": None}) + b"\n\n"
    error = {"message": message, "type": "server_error", "param": None}
    return (
        b"data: " + orjson.dumps({"error": {**error, "code": "upstream_stream_failed"}}) + b"\n\n"
    )
