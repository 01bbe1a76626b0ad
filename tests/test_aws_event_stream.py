"""AWS's binary event-stream framing: frames split anywhere, exception and error frames, corrupt
and truncated streams, Converse as OpenAI SSE and InvokeModel's chunk documents."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_provider.bedrock_api import (
    anthropic_events,
    event_frame,
    exception_frame,
    frame,
    raw_frame,
)
from heliograph.providers.aws_event_stream import (
    CorruptEventStream,
    EventStreamDecoder,
    InvokeStreamDecoder,
    StreamMessage,
    invoke_stream_payloads,
)
from heliograph.translation.aws_event_stream import ConverseStreamTranslator
from heliograph.translation.bedrock import ConverseStream

FIXTURES = Path(__file__).parent / "translation_fixtures" / "bedrock"
THROTTLED = "Too many tokens, please wait before trying again."


def fixture_events(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(kind, payload) for kind, payload in orjson.loads((FIXTURES / name).read_bytes())]


def encode(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Exceptions as exception frames, the rest as event frames, as Bedrock sends them."""
    return b"".join(
        exception_frame(kind, payload["message"])
        if kind.endswith("Exception")
        else event_frame(kind, payload)
        for kind, payload in events
    )


def error_frame(code: str, message: str) -> bytes:
    headers = {":message-type": "error", ":error-code": code, ":error-message": message}
    return frame(headers, b"")


def corrupt_at(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def sse_events(data: bytes) -> list[Any]:
    found: list[Any] = []
    for block in data.decode().split("\n\n"):
        if block:
            assert block.startswith("data: ")
            body = block.removeprefix("data: ")
            found.append(body if body == "[DONE]" else json.loads(body))
    return found


def translate(chunks: list[bytes], include_usage: bool = True) -> bytes:
    translator = ConverseStreamTranslator("bedrock-x", "chatcmpl-1", 1700000000, include_usage)
    return b"".join(translator.feed(chunk) for chunk in chunks) + translator.close()


def direct(events: list[tuple[str, dict[str, Any]]], include_usage: bool = True) -> bytes:
    stream = ConverseStream("bedrock-x", "chatcmpl-1", 1700000000, include_usage)
    return b"".join(stream.event(kind, payload) for kind, payload in events) + stream.close()


# ---- the decoder ----


def test_decodes_events_with_their_types_and_payloads() -> None:
    data = encode(fixture_events("stream_text.json"))
    messages = EventStreamDecoder().feed(data)
    assert [m.event_type for m in messages] == [
        "messageStart",
        "contentBlockDelta",
        "contentBlockDelta",
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert all(m.message_type == "event" and not m.failed for m in messages)
    assert messages[1].payload["delta"] == {"text": "Bon"}
    assert messages[5].payload["usage"]["cacheReadInputTokens"] == 100


def test_split_at_every_offset_decodes_the_same() -> None:
    data = encode(fixture_events("stream_tool_use.json")) + exception_frame("x", "y")
    whole = EventStreamDecoder().feed(data)
    assert len(whole) == len(fixture_events("stream_tool_use.json")) + 1
    for cut in range(len(data) + 1):
        decoder = EventStreamDecoder()
        assert decoder.feed(data[:cut]) + decoder.feed(data[cut:]) == whole
        decoder.close()
        assert decoder.pending == 0


def test_byte_by_byte_decodes_the_same_and_holds_partial_frames() -> None:
    data = encode(fixture_events("stream_text.json"))
    decoder = EventStreamDecoder()
    messages = []
    first_frame_length = struct.unpack(">I", data[:4])[0]
    for index in range(len(data)):
        got = decoder.feed(data[index : index + 1])
        if index < first_frame_length - 1:
            assert got == []
            assert decoder.pending == index + 1
        messages.extend(got)
    assert messages == EventStreamDecoder().feed(data)


def test_a_large_body_fed_at_once_decodes_every_frame() -> None:
    deltas = [("contentBlockDelta", {"delta": {"text": "é" * 300}})] * 2000
    messages = EventStreamDecoder().feed(encode(deltas))
    assert len(messages) == 2000
    assert messages[-1].payload["delta"]["text"] == "é" * 300


def test_exception_and_error_frames() -> None:
    data = exception_frame("throttlingException", THROTTLED) + error_frame("InternalFailure", "x")
    exception, error = EventStreamDecoder().feed(data)
    assert exception == StreamMessage("exception", "throttlingException", {"message": THROTTLED})
    assert exception.failed
    assert exception.message == THROTTLED
    assert error == StreamMessage("error", "InternalFailure", {"message": "x"})
    assert error.failed


def test_an_exception_without_a_json_payload_keeps_its_text() -> None:
    headers = {":message-type": "exception", ":exception-type": "validationException"}
    (message,) = EventStreamDecoder().feed(frame(headers, b"bad input"))
    assert message.payload == {"message": "bad input"}
    (bare,) = EventStreamDecoder().feed(frame(headers, b""))
    assert bare.message == "validationException"


@pytest.mark.parametrize("where", ["payload", "message crc", "prelude crc", "length"])
def test_a_crc_mismatch_is_corrupt_and_keeps_what_came_before(where: str) -> None:
    good = event_frame("messageStart", {"role": "assistant"})
    bad = event_frame("contentBlockDelta", {"delta": {"text": "hi"}})
    index = {"payload": len(bad) - 8, "message crc": len(bad) - 1, "prelude crc": 9}
    index["length"] = 2
    decoder = EventStreamDecoder()
    with pytest.raises(CorruptEventStream, match="bad frame") as raised:
        decoder.feed(good + corrupt_at(bad, index[where]) + good)
    assert [m.event_type for m in raised.value.decoded] == ["messageStart"]
    with pytest.raises(CorruptEventStream):  # the framing is lost for good
        decoder.feed(good)
    with pytest.raises(CorruptEventStream):
        decoder.close()


@pytest.mark.parametrize(
    ("headers", "payload", "reason"),
    [
        ({":message-type": "event", ":event-type": "x"}, b"not json", "not JSON"),
        ({":message-type": "event", ":event-type": "x"}, b"[1]", "not a JSON object"),
        ({":message-type": "event"}, b"{}", ":event-type"),
        ({":message-type": "exception"}, b"{}", ":exception-type"),
        ({":message-type": "telemetry", ":event-type": "x"}, b"{}", "telemetry"),
        ({":event-type": "x"}, b"{}", "None"),
    ],
)
def test_frames_that_are_not_bedrock_events_are_corrupt(
    headers: dict[str, str], payload: bytes, reason: str
) -> None:
    with pytest.raises(CorruptEventStream, match=reason):
        EventStreamDecoder().feed(frame(headers, payload))


@pytest.mark.parametrize(
    "headers",
    [
        b"\x05:name\xff",  # a header type AWS does not define
        b"\x05:na\xffe\x07\x00\x01x",  # a name that is not UTF-8
        b"\x05:name\x07\x00",  # a value length cut short
        b"\x05:name\x07\x00\x01x\x05:name\x07\x00\x01y",  # the same header twice
    ],
)
def test_crc_valid_frames_with_broken_headers_are_corrupt(headers: bytes) -> None:
    good = event_frame("messageStart", {"role": "assistant"})
    with pytest.raises(CorruptEventStream, match="bad frame") as raised:
        EventStreamDecoder().feed(good + raw_frame(headers, b"{}"))
    assert len(raised.value.decoded) == 1


def test_a_stream_ending_inside_a_frame_is_corrupt_on_close() -> None:
    data = event_frame("messageStart", {"role": "assistant"})
    decoder = EventStreamDecoder()
    assert decoder.feed(data + data[:10]) != []
    with pytest.raises(CorruptEventStream, match="10 bytes left over"):
        decoder.close()


def test_an_empty_stream_closes_cleanly() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(b"") == []
    decoder.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=0, max_value=400), st.binary(max_size=8))
def test_any_bytes_decode_or_are_corrupt_never_crash(noise: bytes, at: int, splice: bytes) -> None:
    data = encode(fixture_events("stream_text.json"))
    at = min(at, len(data))
    for candidate in (noise, data[:at] + splice + data[at + len(splice) :]):
        decoder = EventStreamDecoder()
        try:
            for message in decoder.feed(candidate):
                assert isinstance(message.payload, dict)
            decoder.close()
        except CorruptEventStream:
            pass


# ---- Converse as OpenAI SSE ----


@pytest.mark.parametrize(
    "name", ["stream_text.json", "stream_tool_use.json", "stream_reasoning.json"]
)
def test_translator_answers_what_converse_stream_answers(name: str) -> None:
    events = fixture_events(name)
    out = translate([encode(events)])
    assert out == direct(events)  # Bedrock's padding field changes nothing
    assert out.endswith(b"data: [DONE]\n\n")


def test_translator_split_at_every_offset_answers_the_same() -> None:
    data = encode(fixture_events("stream_tool_use.json"))
    whole = translate([data])
    for cut in range(len(data) + 1):
        assert translate([data[:cut], data[cut:]]) == whole
    assert translate([data[i : i + 1] for i in range(len(data))]) == whole


def test_text_stream_as_openai_chunks() -> None:
    found = sse_events(translate([encode(fixture_events("stream_text.json"))]))
    contents = [e["choices"][0]["delta"].get("content") for e in found[:-2] if e["choices"]]
    assert contents == ["", "Bon", "jour", None]
    assert found[3]["choices"][0]["finish_reason"] == "stop"
    assert found[-2]["usage"]["completion_tokens"] == 2
    assert found[-1] == "[DONE]"


def test_exception_frame_ends_the_stream_with_an_openai_error() -> None:
    data = encode(fixture_events("stream_exception.json"))
    translator = ConverseStreamTranslator("bedrock-x", "chatcmpl-1", 1, True)
    found = sse_events(translator.feed(data))
    assert found[-1] == {
        "error": {
            "message": THROTTLED,
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert [e["choices"][0]["delta"] for e in found[:-1]] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hel"},
    ]  # nothing after the exception, though more frames followed
    assert translator.feed(encode(fixture_events("stream_text.json"))) == b""
    assert translator.close() == b"data: [DONE]\n\n"  # no usage after a failure


def test_an_error_frame_ends_the_stream_as_a_server_error() -> None:
    data = event_frame("messageStart", {"role": "assistant"}) + error_frame("InternalFailure", "x")
    found = sse_events(translate([data]))
    assert found[1]["error"]["type"] == "server_error"
    assert found[1]["error"]["message"] == "InternalFailure: x"
    assert found[2:] == ["[DONE]"]


def test_a_corrupt_frame_ends_the_stream_with_an_error_not_an_exception() -> None:
    events = fixture_events("stream_text.json")
    data = encode(events)
    second_frame = struct.unpack(">I", data[:4])[0]
    broken = corrupt_at(data, second_frame + 20)
    translator = ConverseStreamTranslator("bedrock-x", "chatcmpl-1", 1, True)
    found = sse_events(translator.feed(broken[:-5]) + translator.feed(broken[-5:]))
    assert found[0]["choices"][0]["delta"]["role"] == "assistant"
    assert found[1]["error"]["type"] == "server_error"
    assert "checksum" in found[1]["error"]["message"].lower()
    assert len(found) == 2
    assert translator.feed(data) == b""
    assert translator.close() == b"data: [DONE]\n\n"
    assert translator.close() == b""


def test_a_truncated_stream_ends_with_an_error_on_close() -> None:
    events = fixture_events("stream_text.json")
    data = encode(events)
    found = sse_events(translate([data[:-3]]))
    held = len(encode(events[-1:])) - 3  # the last frame, less the 3 bytes that never came
    assert found[-2]["error"]["message"].endswith(f"({held} bytes left over)")
    assert found[-1] == "[DONE]"
    assert not any("usage" in e and e.get("choices") == [] for e in found[:-1])


# ---- InvokeModel's chunk documents ----


def chunk_frame(document: dict[str, Any]) -> bytes:
    return event_frame("chunk", {"bytes": base64.b64encode(json.dumps(document).encode()).decode()})


def test_invoke_stream_documents_split_anywhere() -> None:
    documents = anthropic_events("anthropic.claude-3-5-sonnet-20240620-v1:0")
    data = b"".join(chunk_frame(d) for d in documents)
    expected = [json.dumps(d).encode() for d in documents]
    for cut in range(0, len(data) + 1, 3):
        decoder = InvokeStreamDecoder()
        assert decoder.feed(data[:cut]) + decoder.feed(data[cut:]) == expected
        decoder.close()
        assert decoder.failure is None
    last = json.loads(expected[-1])
    assert last["amazon-bedrock-invocationMetrics"]["outputTokenCount"] == 7


def test_invoke_stream_stops_at_an_exception() -> None:
    data = chunk_frame({"type": "message_start"}) + exception_frame("throttlingException", "slow")
    documents, failure = invoke_stream_payloads(data + chunk_frame({"type": "late"}))
    assert documents == [b'{"type": "message_start"}']
    assert failure == "throttlingException: slow"


def test_invoke_stream_ignores_other_events_and_reports_bad_chunks() -> None:
    other = event_frame("somethingNew", {"x": 1})
    documents, failure = invoke_stream_payloads(other + chunk_frame({"a": 1}))
    assert (documents, failure) == ([b'{"a": 1}'], None)
    documents, failure = invoke_stream_payloads(event_frame("chunk", {"bytes": "%%%"}))
    assert documents == []
    assert failure is not None
    assert "without its document" in failure
    documents, failure = invoke_stream_payloads(event_frame("chunk", {}))
    assert documents == []
    assert failure is not None


def test_invoke_stream_corrupt_or_truncated() -> None:
    data = chunk_frame({"a": 1}) + chunk_frame({"b": 2})
    documents, failure = invoke_stream_payloads(corrupt_at(data, len(data) - 2))
    assert documents == [b'{"a": 1}']
    assert failure is not None
    assert "bad frame" in failure
    documents, failure = invoke_stream_payloads(data[:-1])
    assert documents == [b'{"a": 1}']
    assert failure is not None
    assert "left over" in failure
    decoder = InvokeStreamDecoder()
    decoder.feed(corrupt_at(data, 5))
    assert decoder.feed(data) == []  # nothing after a corrupt frame
