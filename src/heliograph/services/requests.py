"""Searching and reading logged requests, shaped as Helicone's `HeliconeRequest`, with the
scores, feedback and properties added to them after the fact."""

from __future__ import annotations

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import orjson

from heliograph.analytics.store import AnalyticsStore
from heliograph.domain.errors import InvalidInput
from heliograph.domain.filter_tree import Filter
from heliograph.domain.filters import FEEDBACK_SCORE, check_text, show
from heliograph.domain.json_values import strings_in
from heliograph.domain.money import nano_to_usd
from heliograph.domain.prompts import PROMPT_INPUTS_PROPERTY
from heliograph.domain.queries import QueryError, RequestQuery
from heliograph.domain.record import (
    MAX_PROPERTIES,
    MAX_PROPERTY_NAME_CHARS,
    MAX_PROPERTY_VALUE_CHARS,
)
from heliograph.domain.request_row import RequestRow
from heliograph.domain.times import iso, parse_stored, stored_time
from heliograph.state.bodies import read_body_file, read_provider_bodies

MAX_LIMIT = 1000
EXPORT_PAGE = 2000
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
MAX_WRITTEN_DEPTH = 254
# Values added to one request in all: the table is append-only, so replacing a value adds a row.
MAX_ADDED_VALUES = 1_000
# Kept as written (the gateway stores these three as properties under these names).
SESSION_PROPERTY_KEYS = ("Helicone-Session-Id", "Helicone-Session-Path", "Helicone-Session-Name")
# Helicone's legacy prompt format: each input's value wrapped in a tag naming it.
PROMPT_INPUT = re.compile(
    r'<helicone-prompt-input key="([^"<>]{1,256})"\s*>([^<]*)</helicone-prompt-input>'
)


class TooManyProperties(InvalidInput):
    """A request already holds as many properties (or added values) as it may."""

    status = 409
    code = "limit_reached"


class RequestService:
    def __init__(self, store: AnalyticsStore, body_dir: Path) -> None:
        self._reads = store.requests
        self._annotations = store.annotations
        self._body_dir = body_dir

    async def query(self, organization_id: str, query: RequestQuery) -> list[dict[str, Any]]:
        validate(query)
        rows = await self._reads.search(organization_id, query)
        return await self._annotated(organization_id, [to_helicone_request(row) for row in rows])

    async def page(
        self, organization_id: str, tree: Filter, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        """One page, newest first, and the cursor of the next: stable while requests arrive."""
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
        after = decode_cursor(cursor) if cursor else None
        rows = await self._reads.page_after(organization_id, tree, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        requests = await self._annotated(organization_id, [to_helicone_request(r) for r in rows])
        last = rows[-1] if more else None
        next_cursor = (
            encode_cursor(last["request_created_at"], last["request_id"]) if last else None
        )
        return {"requests": requests, "next_cursor": next_cursor}

    async def newer(
        self, organization_id: str, tree: Filter, cursor: str, limit: int
    ) -> dict[str, Any]:
        """Matching requests newer than `cursor` (newest first, at most `limit`) and the cursor of
        the newest of them (or `cursor` again): what a live list polls for."""
        after = decode_cursor(cursor)
        rows = await self._reads.newer_than(organization_id, tree, after, limit)
        if rows:
            cursor = encode_cursor(rows[-1]["request_created_at"], rows[-1]["request_id"])
        rows.reverse()
        requests = await self._annotated(organization_id, [to_helicone_request(r) for r in rows])
        return {"requests": requests, "cursor": cursor}

    async def score_names(self, organization_id: str, limit: int = 50) -> list[str]:
        return await self._reads.score_names(organization_id, limit)

    async def export(
        self, organization_id: str, tree: Filter, page_size: int = EXPORT_PAGE
    ) -> AsyncIterator[dict[str, Any]]:
        """Every matching request, newest first, one page in memory at a time."""
        after: tuple[str, str] | None = None
        while True:
            rows = await self._reads.page_after(organization_id, tree, after, page_size)
            requests = [to_helicone_request(row) for row in rows]
            for request in await self._with_properties(organization_id, requests):
                yield request
            if len(rows) < page_size:
                return
            after = (rows[-1]["request_created_at"], rows[-1]["request_id"])

    async def annotate(
        self, organization_id: str, request_id: str, scores: dict[str, float], source: str
    ) -> None:
        """Record feedback or scores; they may arrive before the request itself is stored."""
        await self._annotations.add(organization_id, request_id, scores, source)

    async def add_property(
        self, organization_id: str, request_id: str, key: str, value: str
    ) -> bool:
        """Add (or replace) a property of a stored request; False when the organization has no
        such request. Custom keys are lower-cased, as the gateway stores `Helicone-Property-*`
        names, so a key replaces the logged one whatever its case."""
        check_property(key, value)
        key = key if key in SESSION_PROPERTY_KEYS else key.lower()
        row = await self._reads.get(organization_id, request_id, False)
        if row is None:
            return False
        added, count = await asyncio.gather(
            self._annotations.added_properties(organization_id, [request_id]),
            self._annotations.added_count(organization_id, request_id),
        )
        keys = {**row["properties"], **added.get(request_id, {})}
        if key not in keys and len(keys) >= MAX_PROPERTIES:
            raise TooManyProperties(f"a request holds at most {MAX_PROPERTIES} properties")
        if count >= MAX_ADDED_VALUES:
            raise TooManyProperties(
                f"at most {MAX_ADDED_VALUES} property values can be added to one request"
            )
        await self._annotations.add_property(organization_id, request_id, key, value)
        return True

    async def by_ids(self, organization_id: str, request_ids: list[str]) -> list[dict[str, Any]]:
        """The organization's requests among `request_ids` (others' are simply not found)."""
        if len(request_ids) > MAX_LIMIT:
            raise QueryError(f"at most {MAX_LIMIT} request ids, got {len(request_ids)}")
        ids = list(dict.fromkeys(canonical_id(request_id) for request_id in request_ids))
        if not ids:
            return []
        rows = await self._reads.by_ids(organization_id, ids)
        return await self._annotated(organization_id, [to_helicone_request(r) for r in rows])

    async def inputs(self, organization_id: str, request_id: str) -> dict[str, Any] | None:
        """Helicone's prompt inputs of a request, from what is stored (see `prompt_inputs`):
        `{}` when it used no prompt, `None` when the organization has no such request."""
        request = await self.get(organization_id, request_id, include_body=True)
        if request is None:
            return None
        return prompt_inputs(request["properties"], request.get("request_body"))

    async def _annotated(
        self, organization_id: str, requests: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`requests` with their scores, feedback and added properties (over logged ones)."""
        ids = [request["request_id"] for request in requests]
        # Two small reads of their own tables, side by side on the engine's reader threads.
        scores, _ = await asyncio.gather(
            self._annotations.scores(organization_id, ids),
            self._with_properties(organization_id, requests),
        )
        for request in requests:
            found = scores.get(request["request_id"], {})
            request["scores"] = found
            feedback = found.get(FEEDBACK_SCORE)
            request["feedback_rating"] = None if feedback is None else feedback >= 1
        return requests

    async def _with_properties(
        self, organization_id: str, requests: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`requests` with the properties added after the fact over the logged ones."""
        ids = [request["request_id"] for request in requests]
        added = await self._annotations.added_properties(organization_id, ids)
        for request in requests:
            if request["request_id"] in added:
                merged = {**request["properties"], **added[request["request_id"]]}
                request["properties"] = request["request_properties"] = merged
        return requests

    async def count(self, organization_id: str, tree: Filter) -> int:
        return await self._reads.count(organization_id, tree)

    async def get(
        self, organization_id: str, request_id: str, include_body: bool
    ) -> dict[str, Any] | None:
        row = await self._reads.get(organization_id, request_id, include_body)
        if row is None:
            return None
        if include_body and row["storage_location"] == "file":
            bodies = read_body_file(self._body_dir, organization_id, request_id)
            row = cast("RequestRow", {**row, **bodies})
        (request,) = await self._annotated(organization_id, [to_helicone_request(row)])
        if include_body:  # a translated request: what the provider itself was sent and said
            provider = await asyncio.to_thread(
                read_provider_bodies, self._body_dir, organization_id, row["request_id"]
            )
            request.update(provider or {})
        return request


def canonical_id(request_id: str) -> str:
    """The id as rows store it (a UUID's canonical text); a `QueryError` when it is not one."""
    try:
        return str(uuid.UUID(request_id))
    except (ValueError, TypeError, AttributeError):
        raise QueryError(f"request id must be a UUID, got {show(request_id)}") from None


def check_property(key: str, value: str) -> None:
    """A property added after the fact obeys the gateway's rules for `Helicone-Property-*`
    names, and a value holds no NUL and at most `MAX_PROPERTY_VALUE_CHARS` characters."""
    if not key.strip():
        raise QueryError("a property key cannot be blank")
    check_text("a property key", key, MAX_PROPERTY_NAME_CHARS)
    check_text("a property value", value, MAX_PROPERTY_VALUE_CHARS)
    if "\x00" in key or "\x00" in value:
        raise QueryError("a property key or value cannot contain NUL characters")


def prompt_inputs(properties: dict[str, str], body: Any) -> dict[str, Any]:
    """Helicone's `{inputs, prompt_id, version_id, environment}` for a request, from what
    Heliograph stores: the `Helicone-Prompt-Id` (and `-Version`, `-Environment`) properties, the
    inputs as the JSON object in `Helicone-Prompt-Inputs` (the gateway writes it when it
    compiles a prompt), else the values inside legacy `<helicone-prompt-input key="...">` tags
    anywhere in the request body's strings. `{}` when none is there."""
    named = {key.lower(): value for key, value in properties.items()}
    inputs = _inputs_property(named.get(PROMPT_INPUTS_PROPERTY.lower()))
    if inputs is None:
        inputs = {}
        for text in strings_in(body, MAX_WRITTEN_DEPTH):
            for match in PROMPT_INPUT.finditer(text):
                inputs.setdefault(match.group(1), match.group(2))
    prompt_id = named.get("helicone-prompt-id")
    if prompt_id is None and not inputs:
        return {}
    return {
        "inputs": inputs,
        "prompt_id": prompt_id,
        "version_id": named.get("helicone-prompt-version"),
        "environment": named.get("helicone-prompt-environment"),
    }


def _inputs_property(text: str | None) -> dict[str, Any] | None:
    """The inputs the gateway kept as JSON; None when absent or not a JSON object."""
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def validate(query: RequestQuery) -> None:
    if not 0 <= query.limit <= MAX_LIMIT:
        raise QueryError(f"limit must be between 0 and {MAX_LIMIT}, got {query.limit}")
    if query.offset < 0:
        raise QueryError(f"offset must be 0 or more, got {query.offset}")


def _body(text: str | None) -> Any:
    """A stored body as JSON, or as its text when it is not JSON or is nested deeper than
    orjson writes (255 levels: it reads up to 1,024), so every reply and export can write it."""
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
    if text.count("[") + text.count("{") > MAX_WRITTEN_DEPTH:  # only then can it be too deep
        try:
            orjson.dumps(value)
        except TypeError:
            return text
    return value


def to_helicone_request(row: RequestRow) -> dict[str, Any]:
    """A stored row in the shape of Helicone's `HeliconeRequest` (plus a few extra fields)."""
    prompt = row.get("prompt_tokens")
    completion = row.get("completion_tokens")
    cache_read = row.get("prompt_cache_read_tokens", 0)
    cache_write = row.get("prompt_cache_write_tokens", 0)
    reasoning = row.get("reasoning_tokens", 0)
    known = prompt is not None or completion is not None
    total = (prompt or 0) + (completion or 0) + cache_read + cache_write + reasoning
    cost_usd = nano_to_usd(row.get("cost"))
    request = {
        "request_id": row["request_id"],
        "request_created_at": iso(row["request_created_at"]),
        "request_path": row["request_path"],
        "request_user_id": row["user_id"] or None,
        "request_properties": row["properties"],
        "request_model": row["request_model"] or None,
        "model_override": row["model_override"] or None,
        "response_id": row["request_id"] if row.get("response_created_at") else None,
        "response_created_at": iso(row.get("response_created_at")),
        "response_status": row["status"],
        "response_model": row["response_model"] or None,
        "helicone_user": None,
        "provider": row["provider"],
        "target_url": row["target_url"],
        "model": row["model"],
        "delay_ms": row["latency"],
        "time_to_first_token": row["time_to_first_token"],
        "total_tokens": total if known else None,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "prompt_cache_read_tokens": cache_read,
        "prompt_cache_write_tokens": cache_write,
        "reasoning_tokens": reasoning,
        "prompt_audio_tokens": row.get("prompt_audio_tokens", 0),
        "completion_audio_tokens": row.get("completion_audio_tokens", 0),
        "cost": cost_usd,
        "costUSD": cost_usd,
        "pricing_status": row["pricing_status"],
        "properties": row["properties"],
        "session_id": row["session_id"] or None,
        "session_path": row["session_path"] or None,
        "session_name": row["session_name"] or None,
        "is_stream": row["is_stream"],
        "cache_enabled": row["cache_enabled"],
        "cache_reference_id": None
        if row["cache_reference_id"] == ZERO_UUID
        else row["cache_reference_id"],
        "storage_location": row["storage_location"],
        "error": row["error"] or None,
        "attempts": row.get("attempts", 1),
        "cache_saved_cost": nano_to_usd(row.get("cache_saved_cost")),
        "cache_saved_latency_ms": row.get("cache_saved_latency", 0),
        "scores": {},
        "feedback_rating": None,
        "prompt_id": None,
        "prompt_version": None,
        "country_code": None,
        "asset_ids": None,
        "asset_urls": None,
        "signed_body_url": None,
        "llmSchema": None,
        "request_referrer": None,
        "updated_at": iso(row["request_created_at"]),
    }
    if "request_body" in row:
        request["request_body"] = (
            None if row["request_body_omitted"] else _body(row["request_body"])
        )
        request["response_body"] = (
            None if row["response_body_omitted"] else _body(row["response_body"])
        )
    return request


def encode_cursor(created_at: str, request_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at, request_id])).decode()


def cursor_of(request: dict[str, Any]) -> str:
    """The keyset cursor of a request as `to_helicone_request` shaped it (ISO time and id)."""
    moment = datetime.fromisoformat(request["request_created_at"].replace("Z", "+00:00"))
    return encode_cursor(stored_time(moment), request["request_id"])


def decode_cursor(cursor: str) -> tuple[str, str]:
    """The keyset inside a cursor; `QueryError` for anything this service did not make."""
    try:
        created_at, request_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        parse_stored(created_at)  # validates
        return created_at, str(uuid.UUID(request_id))
    except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError):
        raise QueryError("cursor is not one this API returned") from None
