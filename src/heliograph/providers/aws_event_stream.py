"""AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), as Bedrock streams
answers: frames decoded by botocore's parser from bytes split anywhere (`EventStreamDecoder`),
and InvokeModel's `chunk` events read as the model's own JSON documents (`InvokeStreamDecoder`),
which is how usage is read from a logged stream."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.eventstream import (  # type: ignore[import-untyped, unused-ignore]
    EventStreamBuffer,
    ParserError,
)

# botocore's buffer copies what it holds on each frame; feeding it slices this big keeps a
# large logged stream from being copied once per frame.
_SLICE = 64 * 1024
# What botocore's parser raises on bad bytes besides its own ParserError (a CRC-valid frame can
# still hold a short header, an unknown header type or non-UTF-8 text).
_PARSE_ERRORS = (ParserError, struct.error, KeyError, IndexError, ValueError)


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """One decoded frame. `message_type` is `event`, `exception` or `error`; `event_type` the
    event's type, the exception's type (`throttlingException`) or the error's code; `payload`
    the JSON object it carries (an exception's or error's always has a `message`)."""

    message_type: str
    event_type: str
    payload: dict[str, Any]

    @property
    def failed(self) -> bool:
        return self.message_type != "event"

    @property
    def message(self) -> str:
        """An exception's or error's text, naming its type when AWS sent none."""
        text = self.payload.get("message", self.payload.get("Message"))
        return text if isinstance(text, str) and text else self.event_type


class CorruptEventStream(ValueError):
    """The bytes are not AWS event-stream frames (a CRC mismatch, a bad prelude or header, a
    payload that is not JSON) or ended inside a frame. `decoded` holds the messages the same
    `feed` completed before the bad frame."""

    def __init__(self, reason: str, decoded: list[StreamMessage] | None = None) -> None:
        super().__init__(reason)
        self.decoded = decoded or []


class EventStreamDecoder:
    """Frames as bytes arrive, split anywhere. After a corrupt frame every `feed` raises: the
    framing is lost, so nothing after it can be trusted."""

    def __init__(self) -> None:
        self._buffer = EventStreamBuffer()
        self._pending = 0  # bytes fed that no complete frame has consumed yet
        self._corrupt: str | None = None

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return self._pending

    def feed(self, chunk: bytes) -> list[StreamMessage]:
        """Every message `chunk` completes, in order; [] when it completes none."""
        if self._corrupt is not None:
            raise CorruptEventStream(self._corrupt)
        messages: list[StreamMessage] = []
        for start in range(0, len(chunk), _SLICE):
            piece = chunk[start : start + _SLICE]
            self._buffer.add_data(piece)
            self._pending += len(piece)
            try:
                self._drain(messages)
            except CorruptEventStream as error:
                self._corrupt = str(error)
                raise CorruptEventStream(self._corrupt, messages) from error
        return messages

    def close(self) -> None:
        """Raises `CorruptEventStream` when the stream ended inside a frame."""
        if self._corrupt is None and self._pending:
            self._corrupt = f"the stream ended inside a frame ({self._pending} bytes left over)"
        if self._corrupt is not None:
            raise CorruptEventStream(self._corrupt)

    def _drain(self, messages: list[StreamMessage]) -> None:
        while True:
            try:
                frame = self._buffer.next()
            except StopIteration:
                return
            except _PARSE_ERRORS as error:
                raise CorruptEventStream(f"bad frame: {error}") from error
            self._pending -= int(frame.prelude.total_length)
            messages.append(_message(frame.headers, bytes(frame.payload)))


def _message(headers: dict[str, Any], payload: bytes) -> StreamMessage:
    message_type = headers.get(":message-type")
    if message_type == "event":
        return StreamMessage("event", _header(headers, ":event-type"), _json_object(payload))
    if message_type == "exception":
        try:
            body = _json_object(payload)
        except CorruptEventStream:
            body = {"message": payload.decode("utf-8", "replace")}
        return StreamMessage("exception", _header(headers, ":exception-type"), body)
    if message_type == "error":
        text = headers.get(":error-message")
        body = {"message": text} if isinstance(text, str) else {}
        return StreamMessage("error", _header(headers, ":error-code"), body)
    raise CorruptEventStream(f"a frame with :message-type {message_type!r}")


def _header(headers: dict[str, Any], name: str) -> str:
    value = headers.get(name)
    if not isinstance(value, str) or not value:
        raise CorruptEventStream(f"a frame without its {name} header")
    return value


def _json_object(payload: bytes) -> dict[str, Any]:
    if not payload:
        return {}
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise CorruptEventStream("a frame whose payload is not JSON") from error
    if not isinstance(document, dict):
        raise CorruptEventStream("a frame whose payload is not a JSON object")
    return document


class InvokeStreamDecoder:
    """InvokeModelWithResponseStream's answer as the model's own JSON documents (each `chunk`
    event's base64 `bytes`), as bytes arrive; for reading usage from a logged stream, so it
    never raises: it stops at an exception frame or a corrupt frame and says why in
    `failure`."""

    def __init__(self) -> None:
        self._decoder = EventStreamDecoder()
        self.failure: str | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        """The documents `chunk` completes, in order."""
        if self.failure is not None:
            return []
        try:
            messages = self._decoder.feed(chunk)
        except CorruptEventStream as error:
            documents = self._documents(error.decoded)
            self.failure = self.failure or str(error)
            return documents
        return self._documents(messages)

    def close(self) -> None:
        """Notes in `failure` a stream that ended inside a frame."""
        if self.failure is None:
            try:
                self._decoder.close()
            except CorruptEventStream as error:
                self.failure = str(error)

    def _documents(self, messages: list[StreamMessage]) -> list[bytes]:
        documents = []
        for message in messages:
            if self.failure is not None:
                break
            if message.failed:
                self.failure = f"{message.event_type}: {message.message}"
            elif message.event_type == "chunk":
                document = self._document(message.payload)
                if document is not None:
                    documents.append(document)
        return documents

    def _document(self, payload: dict[str, Any]) -> bytes | None:
        encoded = payload.get("bytes")
        try:
            if not isinstance(encoded, str):
                raise ValueError("no base64 `bytes`")
            return base64.b64decode(encoded, validate=True)
        except ValueError as error:  # binascii.Error is one
            self.failure = f"a chunk event without its document: {error}"
            return None


def invoke_stream_payloads(data: bytes) -> tuple[list[bytes], str | None]:
    """The model's documents in a whole InvokeModelWithResponseStream body, and why decoding
    stopped early (an exception frame, a corrupt or truncated stream), if it did."""
    decoder = InvokeStreamDecoder()
    documents = decoder.feed(data)
    decoder.close()
    return documents, decoder.failure
