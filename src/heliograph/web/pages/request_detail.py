"""`/requests/{id}`: one request of the organization, its conversation rendered, the raw bodies,
timings, tokens, cost, properties, cache and session, and its feedback and scores (edited through
the REST API by request.js)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.filters import FEEDBACK_SCORE
from heliograph.web.conversation import conversation
from heliograph.web.templating import TemplatesDep, pretty_json
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
MAX_RAW_CHARS = 200_000  # per body: the raw JSON is for reading, not for downloading


@router.get("/requests/{request_id}")
async def request_detail(
    request_id: str,
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
) -> Response:
    canonical = _canonical(request_id)
    found = await services.requests.get(viewer.organization_id, canonical, include_body=True)
    if found is None:  # unknown, or another organization's: the same answer
        raise HTTPException(404)
    request_body, response_body = found.get("request_body"), found.get("response_body")
    scores = found.get("scores") or {}
    return templates.render(
        request,
        "request.html",
        viewer,
        row=found,
        conversation=conversation(request_body, response_body),
        raw_request=_raw(request_body),
        raw_response=_raw(response_body),
        # A translated request (the unified API): what the provider itself was sent and said.
        provider_raw=[
            (label, _raw(_parsed(found[key])))
            for label, key in (
                ("Provider request", "provider_request_body"),
                ("Provider response", "provider_response_body"),
            )
            if isinstance(found.get(key), str)
        ],
        scores={name: value for name, value in scores.items() if name != FEEDBACK_SCORE},
        can_write=viewer.can("write"),
    )


def _canonical(request_id: str) -> str:
    """The id as rows store it; anything but a UUID is no page at all."""
    try:
        return str(uuid.UUID(request_id[:64]))
    except ValueError:
        raise HTTPException(404) from None


def _parsed(text: str) -> Any:
    """JSON text as its value (to pretty-print); a stream or anything else as the text."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _raw(body: Any) -> tuple[str, bool] | None:
    """The body pretty-printed and cut to `MAX_RAW_CHARS`, with whether it was cut."""
    if body is None:
        return None
    if isinstance(body, str):
        return body[:MAX_RAW_CHARS], len(body) > MAX_RAW_CHARS
    try:
        text = pretty_json(body)
    except TypeError:  # nested deeper than orjson writes: show it as Python sees it
        text = repr(body)
    return text[:MAX_RAW_CHARS], len(text) > MAX_RAW_CHARS
