"""`POST /v1/prompt-2025/playground` (WRITE): runs a prompt version with chosen inputs through
this Heliograph's gateway (`services/playground.py`), so the request is logged like any other,
and relays the answer as it arrives: server-sent events for a stream (the default), else the
chat completion's JSON, with the `Helicone-Id` of the logged request. A refusal (an unknown
version, a missing or wrongly typed input) is an error in the envelope, with that header too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictBool
from starlette.concurrency import run_in_threadpool

from heliograph.api.deps import ServicesDep, Writer, actor_of
from heliograph.api.envelope import fail
from heliograph.api.schemas import StrictBody
from heliograph.domain.json_values import clean_json, nested_deeper_than
from heliograph.domain.prompts import MAX_DEPTH, MAX_ID_CHARS, MAX_INPUTS, PromptError
from heliograph.services.playground import PlaygroundRun

router = APIRouter(prefix="/v1/prompt-2025", tags=["prompts"])

MAX_MESSAGES = 256
MAX_MODEL_CHARS = 256


class PlaygroundBody(StrictBody):
    promptVersionId: Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
    inputs: Annotated[dict[str, Any], Field(max_length=MAX_INPUTS)] = {}
    messages: Annotated[list[dict[str, Any]] | None, Field(max_length=MAX_MESSAGES)] = None
    model: Annotated[str | None, Field(min_length=1, max_length=MAX_MODEL_CHARS)] = None
    stream: StrictBool = True
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    max_tokens: Annotated[int | None, Field(ge=1, le=1_000_000)] = None

    def run(self) -> PlaygroundRun:
        """The run, with its inputs and messages as the gateway takes JSON: at most `MAX_DEPTH`
        levels, strings cleaned, integers within 64 bits."""
        if nested_deeper_than([self.inputs, self.messages], MAX_DEPTH):
            raise PromptError(f"inputs and messages may nest at most {MAX_DEPTH} levels")
        return PlaygroundRun(
            self.promptVersionId,
            clean_json(self.inputs),
            clean_json(self.messages),
            self.model,
            self.stream,
            self.temperature,
            self.max_tokens,
        )


@router.post("/playground", operation_id="runPromptPlayground", response_model=None)
async def run_playground(
    body: PlaygroundBody, request: Request, caller: Writer, services: ServicesDep
) -> Response:
    """Run a version through the gateway and stream its answer back as it comes."""
    playground = services.playground
    actor = actor_of(request, caller)
    prepared = await run_in_threadpool(
        playground.prepare, caller.organization_id, body.run(), actor
    )
    relay = await playground.send(prepared)
    if relay.error is not None:
        return fail(relay.status, relay.error, relay.headers)
    return StreamingResponse(
        relay.chunks(),
        status_code=relay.status,
        media_type=relay.content_type,
        headers={**relay.headers, "Cache-Control": "no-cache"},
    )
