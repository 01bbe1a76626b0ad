"""Prompts at request time: a chat-completion body naming a prompt (`prompt_id`, with `version_id`
or `environment`, and `inputs`) becomes the version's body compiled with those inputs
(`domain/prompts.py`), and the request's properties link it to the version. A refusal (an unknown
prompt, a missing or wrongly typed input) is returned, for the proxy to record and answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from heliograph.domain.errors import InvalidInput
from heliograph.domain.prompts import (
    PROMPT_ENVIRONMENT_PROPERTY,
    PROMPT_ID_PROPERTY,
    PROMPT_INPUTS_PROPERTY,
    PROMPT_VERSION_PROPERTY,
    PromptCall,
    PromptError,
    UnknownPrompt,
    compile_with,
    compiled_chars,
    inputs_property,
    prompt_call,
    prompt_values,
)
from heliograph.domain.record import Attribution
from heliograph.gateway.ports import PromptSource, PromptTemplate

log = logging.getLogger("heliograph.gateway")
MARKER = b'"prompt_id"'  # no body without it is parsed: the cost of prompts to everyone else
CHAT_PATH = "chat/completions"  # OpenAI's shape, which every OpenAI-compatible route shares
# A compile whose inputs add more than this runs on a thread, not on the loop every request shares.
INLINE_CHARS = 64 * 1024


class PromptsUnavailable(InvalidInput):
    """The app DB could not say what a prompt is (it was not yet known here)."""

    status = 503
    code = "prompts_unavailable"


class PromptCompiler:
    def __init__(self, source: PromptSource) -> None:
        self._source = source

    async def compile(
        self, path: str, organization_id: str, body: bytes, attribution: Attribution
    ) -> tuple[bytes, InvalidInput | None]:
        """The body to forward (compiled, when it names a prompt on a chat-completion route)
        and the refusal to answer instead, if any. A body that is not a JSON object is left as
        it came: the provider says what is wrong with it."""
        if MARKER not in body or not path.endswith(CHAT_PATH):
            return body, None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body, None
        try:
            call = prompt_call(document)
            if call is None:  # "prompt_id" was somewhere else, inside a message
                return body, None
            template = await self._template(organization_id, call)
            values = prompt_values(template.body, call)
            if compiled_chars(template.body, values) + len(body) <= INLINE_CHARS:
                compiled = _encoded(template.body, call, values)
            else:
                compiled = await asyncio.to_thread(_encoded, template.body, call, values)
        except (PromptError, PromptsUnavailable) as refused:
            return body, refused
        _link(attribution, call, template)
        return compiled, None

    async def _template(self, organization_id: str, call: PromptCall) -> PromptTemplate:
        """The version the call names, or the `UnknownPrompt` that says what is missing."""
        try:
            template = await self._source.template(
                organization_id, call.prompt_id, call.version_id, call.environment
            )
        except Exception as error:  # the app DB, away: answered, not a 500
            log.warning("cannot read prompt %r: %s", call.prompt_id, error)
            raise PromptsUnavailable("prompts cannot be read right now; try again") from error
        if template is None:
            raise UnknownPrompt(f"unknown prompt_id {call.prompt_id!r}")
        if template.version_id is None and call.version_id is not None:
            raise UnknownPrompt(f"prompt {call.prompt_id} has no version {call.version_id!r}")
        if template.version_id is None:
            raise UnknownPrompt(
                f"prompt {call.prompt_id} has no version deployed to {call.environment!r}"
            )
        return template


def _encoded(template: dict[str, Any], call: PromptCall, values: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(compile_with(template, call, values))
    except TypeError as error:  # nested deeper than orjson writes, which it read
        raise PromptError(f"the compiled body cannot be encoded: {error}") from None


def _link(attribution: Attribution, call: PromptCall, template: PromptTemplate) -> None:
    """The properties that link the request to the version and keep its inputs: first, so the
    cap on stored properties never drops them, and in place of any the caller sent by the name."""
    ours = {
        PROMPT_ID_PROPERTY: call.prompt_id,
        PROMPT_VERSION_PROPERTY: template.version_id or "",
        PROMPT_INPUTS_PROPERTY: inputs_property(call.inputs),
    }
    if call.version_id is None:
        ours[PROMPT_ENVIRONMENT_PROPERTY] = call.environment
    names = {name.lower() for name in ours}
    theirs = {k: v for k, v in attribution.properties.items() if k.lower() not in names}
    attribution.properties.clear()
    attribution.properties.update(ours)
    attribution.properties.update(theirs)
