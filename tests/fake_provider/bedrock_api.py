"""AWS Bedrock's runtime: Converse and InvokeModel, plain and streamed in AWS's binary event-stream
framing (split awkwardly), behind a real SigV4 check of each request against the test
credentials (`ACCESS_KEY_ID`, `SECRET_ACCESS_KEY`; any region, service `bedrock`).

Models steer it: `error-429` and `error-500` answer with Bedrock's ThrottlingException and
InternalServerException; `error-stream` streams a little and then a `throttlingException`
frame; `slow-<ms>` and `hang` as elsewhere. A Converse request with `toolConfig` gets a call to
its first tool with `{"city": "Paris"}`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import struct
import zlib
from typing import Any

from aiohttp import web
from botocore.auth import SigV4Auth  # type: ignore[import-untyped, unused-ignore]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped, unused-ignore]
from botocore.credentials import Credentials  # type: ignore[import-untyped, unused-ignore]

from fake_provider.shared import TEXT, json_response, remember, send_chunks, steer

ACCESS_KEY_ID = "AKIDEXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
EVENT_STREAM = "application/vnd.amazon.eventstream"
USAGE = {"inputTokens": 12, "outputTokens": 7, "totalTokens": 19}
ANTHROPIC_USAGE = {"input_tokens": 12, "output_tokens": 7}
TOOL_INPUT = {"city": "Paris"}
TEXT_PIECES = ["Hello, ", "wörld! 👋", " Ünïcödé"]
assert "".join(TEXT_PIECES) == TEXT

_NAMESPACE = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_REQUEST_ID = "7f1c2a9e-0000-4000-8000-00000000fa4e"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>[0-9]{8})/(?P<region>[a-z0-9-]+)"
    r"/(?P<service>[a-z0-9-]+)/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),"
    r"\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your"
    " AWS Secret Access Key and signing method. Consult the service documentation for details."
)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post("/model/{model_id}/converse", converse)
    router.add_post("/model/{model_id}/converse-stream", converse_stream)
    router.add_post("/model/{model_id}/invoke", invoke)
    router.add_post("/model/{model_id}/invoke-with-response-stream", invoke_stream)


# ---- the binary framing ----


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total and headers lengths, their CRC32), string
    headers, payload, and the CRC32 of all that precedes it."""
    encoded = b"".join(
        struct.pack("B", len(name.encode())) + name.encode() + b"\x07"
        + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )  # fmt: skip
    return raw_frame(encoded, payload)


def raw_frame(encoded_headers: bytes, payload: bytes) -> bytes:
    """A message around headers already encoded (or deliberately malformed), CRCs correct."""
    encoded = encoded_headers
    lengths = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    prelude = lengths + struct.pack(">I", zlib.crc32(lengths))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json"}
    headers[":message-type"] = "event"
    # Bedrock pads each event with a "p" field of varying length so sizes leak nothing.
    body = {**payload, "p": "abcdefghijklmnopqrstuvwxyz"[: len(event_type)]}
    return frame(headers, json.dumps(body, ensure_ascii=False).encode())


def exception_frame(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json"}
    headers[":message-type"] = "exception"
    return frame(headers, json.dumps({"message": message}).encode())


# ---- SigV4 ----


def _aws_error(request: web.Request, status: int, kind: str, message: str) -> web.Response:
    return json_response(
        request,
        {"message": message},
        status,
        **{"x-amzn-ErrorType": kind + _NAMESPACE, "x-amzn-RequestId": _REQUEST_ID},
    )


def _signature_error(request: web.Request, body: bytes) -> web.Response | None:
    """AWS's refusal when the request is not signed by the test credentials; None if it is."""
    authorization = request.headers.get("Authorization")
    if authorization is None:
        return _aws_error(
            request, 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
        )
    found = _AUTHORIZATION.fullmatch(authorization.strip())
    amz_date = request.headers.get("X-Amz-Date", "")
    if found is None or not amz_date.startswith(found["date"]):
        return _aws_error(
            request, 403, "IncompleteSignatureException", "Authorization header is malformed."
        )
    if found["key"] != ACCESS_KEY_ID:
        return _aws_error(
            request,
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    signed = found["signed"].split(";")
    content_sha = request.headers.get("X-Amz-Content-SHA256")
    if content_sha is not None and content_sha != hashlib.sha256(body).hexdigest():
        return _aws_error(request, 400, "XAmzContentSHA256Mismatch", "Payload hash mismatch.")
    if found["service"] != "bedrock" or "host" not in signed or "x-amz-date" not in signed:
        return _aws_error(request, 403, "InvalidSignatureException", _MISMATCH)
    expected = _signature(request, body, signed, found["region"], amz_date)
    if not hmac.compare_digest(expected, found["signature"]):
        return _aws_error(request, 403, "InvalidSignatureException", _MISMATCH)
    return None


def _signature(
    request: web.Request, body: bytes, signed: list[str], region: str, amz_date: str
) -> str:
    """botocore's signature over the request as received: its Host, raw path and the headers
    the caller says it signed, at the caller's timestamp."""
    url = f"http://{request.headers.get('Host', '')}{request.raw_path}"
    copy = AWSRequest(method=request.method, url=url, data=body)
    for name in signed:
        for value in request.headers.getall(name, []):
            copy.headers[name] = value
    copy.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY), "bedrock", region)
    return str(signer.signature(signer.string_to_sign(copy, signer.canonical_request(copy)), copy))


async def _admit(request: web.Request) -> tuple[dict[str, Any], str, web.StreamResponse | None]:
    """The body and model; or the answer instead when the signature is wrong or the model
    steers to an error."""
    body = await remember(request)
    model = request.match_info["model_id"]
    refused = _signature_error(request, await request.read())
    if refused is not None:
        return body, model, refused
    if model == "error-429":
        return body, model, _aws_error(request, 429, "ThrottlingException", "Too many requests")
    if model == "error-500":
        message = "The server encountered an internal error while processing the request."
        return body, model, _aws_error(request, 500, "InternalServerException", message)
    return body, model, await steer(request, model)


# ---- Converse ----


async def converse(request: web.Request) -> web.StreamResponse:
    body, _, refused = await _admit(request)
    if refused is not None:
        return refused
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        return _aws_error(request, 400, "ValidationException", "messages: must not be empty")
    tool = _first_tool(body)
    if tool is not None:
        content: list[dict[str, Any]] = [
            {"toolUse": {"toolUseId": "tooluse_fake1", "name": tool, "input": TOOL_INPUT}}
        ]
        stop_reason = "tool_use"
    else:
        content, stop_reason = [{"text": TEXT}], "end_turn"
    answer = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason,
        "usage": USAGE,
        "metrics": {"latencyMs": 42},
    }
    return json_response(request, answer, 200, **{"x-amzn-RequestId": _REQUEST_ID})


def _first_tool(body: dict[str, Any]) -> str | None:
    config = body.get("toolConfig")
    tools = config.get("tools") if isinstance(config, dict) else None
    spec = tools[0].get("toolSpec") if isinstance(tools, list) and tools else None
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) else None


async def converse_stream(request: web.Request) -> web.StreamResponse:
    body, model, refused = await _admit(request)
    if refused is not None:
        return refused
    tool = _first_tool(body)
    frames = [event_frame("messageStart", {"role": "assistant"})]
    if model == "error-stream":
        frames.append(_text_delta(TEXT_PIECES[0]))
        frames.append(exception_frame("throttlingException", "Too many requests"))
    elif tool is not None:
        frames.extend(_tool_events(tool))
    else:
        frames.extend(_text_delta(piece) for piece in TEXT_PIECES)
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
        frames.append(event_frame("messageStop", {"stopReason": "end_turn"}))
    if model != "error-stream":
        metadata = {"usage": USAGE, "metrics": {"latencyMs": 42}}
        frames.append(event_frame("metadata", metadata))
    return await send_chunks(request, b"".join(frames), EVENT_STREAM)


def _text_delta(text: str) -> bytes:
    return event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})


def _tool_events(tool: str) -> list[bytes]:
    start = {"toolUse": {"toolUseId": "tooluse_fake1", "name": tool}}
    arguments = json.dumps(TOOL_INPUT)
    halves = [arguments[:7], arguments[7:]]
    return [
        event_frame("contentBlockStart", {"contentBlockIndex": 0, "start": start}),
        *(
            event_frame(
                "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": h}}}
            )
            for h in halves
        ),
        event_frame("contentBlockStop", {"contentBlockIndex": 0}),
        event_frame("messageStop", {"stopReason": "tool_use"}),
    ]


# ---- InvokeModel (Anthropic's native body on Bedrock) ----


async def invoke(request: web.Request) -> web.StreamResponse:
    _, model, refused = await _admit(request)
    if refused is not None:
        return refused
    headers = {
        "x-amzn-RequestId": _REQUEST_ID,
        "X-Amzn-Bedrock-Input-Token-Count": str(ANTHROPIC_USAGE["input_tokens"]),
        "X-Amzn-Bedrock-Output-Token-Count": str(ANTHROPIC_USAGE["output_tokens"]),
        "X-Amzn-Bedrock-Invocation-Latency": "42",
    }
    message = _message(model, [{"type": "text", "text": TEXT}])
    return json_response(request, message, 200, **headers)


def _message(model: str, content: list[Any]) -> dict[str, Any]:
    return {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": ANTHROPIC_USAGE,
    }


async def invoke_stream(request: web.Request) -> web.StreamResponse:
    _, model, refused = await _admit(request)
    if refused is not None:
        return refused
    frames = [
        event_frame("chunk", {"bytes": base64.b64encode(json.dumps(event).encode()).decode()})
        for event in anthropic_events(model)
    ]
    return await send_chunks(request, b"".join(frames), EVENT_STREAM)


def anthropic_events(model: str) -> list[dict[str, Any]]:
    """Anthropic's stream events as Bedrock relays them (no pings), the last carrying
    Bedrock's invocation metrics."""
    start = {**_message(model, []), "stop_reason": None}
    start["usage"] = {**ANTHROPIC_USAGE, "output_tokens": 1}
    metrics = {
        "inputTokenCount": ANTHROPIC_USAGE["input_tokens"],
        "outputTokenCount": ANTHROPIC_USAGE["output_tokens"],
        "invocationLatency": 42,
        "firstByteLatency": 7,
    }
    return [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
            for p in TEXT_PIECES
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": ANTHROPIC_USAGE["output_tokens"]},
        },
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics},
    ]
