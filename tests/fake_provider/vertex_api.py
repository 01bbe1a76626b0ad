"""Google Vertex AI's model calls: Gemini (`publishers/google`, answered as `gemini_api` answers)
and Claude (`publishers/anthropic`: `rawPredict` JSON, `streamRawPredict` SSE, as
`anthropic_api` answers), each behind a bearer token `google_oauth` issued (401 in Google's
error shape otherwise). Claude's body must carry `anthropic_version` and no `model` (the model
is in the path), or it is a 400, as on Vertex."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from fake_provider import anthropic_api, gemini_api
from fake_provider.google_oauth import ISSUED
from fake_provider.shared import TEXT, json_response, remember, send_chunks, steer

PATH = "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model_method}"


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_post(PATH, predict)


async def predict(request: web.Request) -> web.StreamResponse:
    publisher = request.match_info["publisher"]
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token not in ISSUED:
        await remember(request)
        return _google_error(
            request,
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        )
    if publisher == "google":
        return await gemini_api.generate(request)  # it remembers the request
    body = await remember(request)
    if publisher == "anthropic":
        return await _claude(request, body)
    return _google_error(request, 404, "NOT_FOUND", f"Publisher {publisher} not found.")


async def _claude(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    model, _, method = request.match_info["model_method"].partition(":")
    if method not in ("rawPredict", "streamRawPredict"):
        return _google_error(request, 404, "NOT_FOUND", f"Method {method} not found.")
    if "model" in body:
        return _anthropic_error(request, "model: Extra inputs are not permitted")
    if not isinstance(body.get("anthropic_version"), str):
        return _anthropic_error(request, "anthropic_version: Field required")
    steered = await steer(request, model)
    if steered is not None:
        return steered
    if method == "rawPredict":
        message = anthropic_api._message(model, [anthropic_api._text(TEXT)])
        return json_response(request, message)
    data = b"".join(
        f"event: {name}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
        for name, event in anthropic_api._events(model)
    )
    return await send_chunks(request, data, "text/event-stream")


def _google_error(request: web.Request, code: int, status: str, message: str) -> web.Response:
    error = {"error": {"code": code, "message": message, "status": status}}
    return json_response(request, error, status=code)


def _anthropic_error(request: web.Request, message: str) -> web.Response:
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    return json_response(request, error, status=400)
