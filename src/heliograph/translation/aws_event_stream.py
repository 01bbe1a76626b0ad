"""Bedrock's ConverseStream answer, in AWS's binary event-stream framing, as OpenAI SSE: frames
decoded by `providers/aws_event_stream.py`, their events translated by `bedrock.ConverseStream`."""

from __future__ import annotations

from heliograph.providers.aws_event_stream import (
    CorruptEventStream,
    EventStreamDecoder,
    StreamMessage,
)
from heliograph.translation.bedrock import ConverseStream

# The exception ConverseStream is told about when the framing itself breaks.
_BROKEN_STREAM = "internalServerException"


class ConverseStreamTranslator:
    """ConverseStream's binary answer as OpenAI SSE bytes, as they arrive. An exception frame
    (`throttlingException`, ...) ends the stream with OpenAI's error event, as does a corrupt or
    truncated stream; `feed` never raises."""

    def __init__(self, model: str, completion_id: str, created: int, include_usage: bool) -> None:
        self._decoder = EventStreamDecoder()
        self._stream = ConverseStream(model, completion_id, created, include_usage)
        self._failed = False

    def feed(self, chunk: bytes) -> bytes:
        """OpenAI SSE bytes for every event `chunk` completes; b"" when none is complete yet."""
        if self._failed:
            return b""
        try:
            messages = self._decoder.feed(chunk)
        except CorruptEventStream as error:
            return self._events(error.decoded) + self._break(str(error))
        return self._events(messages)

    def close(self) -> bytes:
        """The error event if the stream ended inside a frame, the usage chunk (when asked for
        and the stream did not fail) and `[DONE]`, once."""
        out = b""
        if not self._failed:
            try:
                self._decoder.close()
            except CorruptEventStream as error:
                out = self._break(str(error))
        return out + self._stream.close()

    def _events(self, messages: list[StreamMessage]) -> bytes:
        out = []
        for message in messages:
            if self._failed:
                break
            out.append(self._event(message))
        return b"".join(out)

    def _event(self, message: StreamMessage) -> bytes:
        if not message.failed:
            return self._stream.event(message.event_type, message.payload)
        self._failed = True
        # ConverseStream reads a type ending in "Exception" as AWS's error type; an `error`
        # frame's code (or any other name) would be taken for an unknown event and dropped.
        if message.event_type.endswith("Exception"):
            return self._stream.event(message.event_type, message.payload)
        text = f"{message.event_type}: {message.message}"
        return self._stream.event(_BROKEN_STREAM, {"message": text})

    def _break(self, reason: str) -> bytes:
        self._failed = True
        return self._stream.event(_BROKEN_STREAM, {"message": f"Bedrock's stream broke: {reason}"})
