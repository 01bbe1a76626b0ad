"""`/requests`: the organization's requests as a table with chosen columns, a filter builder,
body search, sorting, time range and paging (all in the URL, see `request_view`); new matching
requests streamed live (`/requests/live`, server-sent events) and the filtered set exported
(`/requests/export`, in the audit log)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from heliograph.api.deps import ServicesDep, actor_of
from heliograph.domain.errors import InvalidInput
from heliograph.domain.filter_tree import Filter
from heliograph.domain.filters import show
from heliograph.domain.queries import AggregateQuery, RequestQuery, TimeRange
from heliograph.domain.times import stored_time
from heliograph.services.container import Services
from heliograph.services.export import csv_lines, jsonl
from heliograph.services.requests import ZERO_UUID, cursor_of, encode_cursor
from heliograph.web.request_view import (
    BUILT_IN_COLUMNS,
    ListColumn,
    RequestView,
    builder_fields,
    column_of,
    count_conditions,
    read_view,
)
from heliograph.web.templating import Templates, TemplatesDep
from heliograph.web.time_range import Window, window
from heliograph.web.viewer import ViewerDep, person_of

router = APIRouter(include_in_schema=False)
LIVE_SECONDS = 300  # an event stream's lifetime; EventSource reconnects with a fresh cursor
LIVE_POLL_SECONDS = 1.0
LIVE_BATCH = 50
PROPERTY_KEYS = 50
PAGE_SIZES = (25, 50, 100, 200)
KEY_LOOKBACK_MS = 86_400_000
EXPORT_FORMATS = {"jsonl": ("application/x-ndjson", "jsonl"), "csv": ("text/csv", "csv")}


@router.get("/requests")
async def request_list(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
) -> Response:
    view, chosen = _view_of(request)
    org = viewer.organization_id
    tree = view.tree(chosen)
    keys, scores, (requests, next_query) = await asyncio.gather(
        services.properties.keys(org, AggregateQuery(time=_recent(chosen), limit=PROPERTY_KEYS)),
        services.requests.score_names(org),
        _page(services, org, view, tree),
    )
    columns = [column_of(key) for key in view.columns]
    live_after = await _newest_cursor(services, org, view, tree, requests, chosen)
    property_keys = [row["property"] for row in keys]
    params = dict(parse_qsl(view.query()))
    return templates.render(
        request,
        "requests.html",
        viewer,
        view=view,
        window=chosen,
        columns=columns,
        rows=table_rows(requests, columns),
        params=params,
        range_params={k: v for k, v in params.items() if k not in ("range", "start", "end")},
        page_sizes=PAGE_SIZES,
        conditions=count_conditions(view.filter),
        next_query=next_query,
        previous_query=_previous_query(view),
        first_query=view.query(),
        builder={
            "filter": view.filter,
            "fields": builder_fields(property_keys, scores),
        },
        choices=_column_choices(view, property_keys, scores),
        live={
            "url": f"/requests/live?{view.query()}&after={live_after}",
            "insert": view.is_newest_first and view.is_first_page,
        },
    )


@router.get("/requests/live")
async def live_requests(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
) -> Response:
    """Server-sent events: each `rows` event has the rendered `<tr>`s of matching requests newer
    than the last one sent; `end` when the stream's lifetime is over."""
    view, chosen = _view_of(request)
    after = request.query_params.get("after", "")[:200]
    if not after:
        raise InvalidInput("the live stream needs the cursor of the newest request shown (after=)")
    tree = view.tree(chosen, open_end=True)
    columns = [column_of(key) for key in view.columns]
    await services.requests.newer(viewer.organization_id, tree, after, 1)  # checks the cursor
    org = viewer.organization_id
    events = _live_events(request, services, templates, org, tree, columns, after)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.get("/requests/export")
async def export_requests(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
) -> Response:
    """Every request the view's filter, search and range match, newest first, streamed."""
    format = request.query_params.get("format", "jsonl")
    if format not in EXPORT_FORMATS:
        raise InvalidInput(f"format is jsonl or csv, got {show(format)}")
    view, chosen = _view_of(request)
    tree = view.tree(chosen)
    org = viewer.organization_id
    actor = actor_of(request, viewer.caller)
    details = {"format": format, "source": "dashboard"}
    await run_in_threadpool(
        services.audit.record, actor, "export.requests", org, ("requests", ""), details
    )
    rows = services.requests.export(org, tree)
    media_type, extension = EXPORT_FORMATS[format]
    body = csv_lines(rows) if format == "csv" else jsonl(rows)
    disposition = f'attachment; filename="requests.{extension}"'
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
    )


def _view_of(request: Request) -> tuple[RequestView, Window]:
    params = {name: value[:20_001] for name, value in request.query_params.items()}
    view = read_view(params)
    chosen = window(view.range[:40], view.start[:40] or None, view.end[:40] or None)
    return replace(view, range=chosen.name), chosen


async def _page(
    services: Services, org: str, view: RequestView, tree: Filter
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the view and the query string of the next (None on the last)."""
    if view.is_newest_first and not view.offset:
        page = await services.requests.page(org, tree, view.limit, view.cursor or None)
        cursor = page["next_cursor"]
        return page["requests"], view.query(cursor=cursor) if cursor else None
    query = RequestQuery(
        filter=tree,
        sort=view.request_sort,
        limit=view.limit + 1,
        offset=view.offset,
        include_bodies=view.needs_bodies,
    )
    requests = await services.requests.query(org, query)
    more = len(requests) > view.limit
    next_query = view.query(offset=view.offset + view.limit) if more else None
    return requests[: view.limit], next_query


async def _newest_cursor(
    services: Services,
    org: str,
    view: RequestView,
    tree: Filter,
    shown: list[dict[str, Any]],
    chosen: Window,
) -> str:
    """Where the live stream starts: after the newest matching request (the first row shown when
    the page is the newest-first first page), or at the range's start when none matches."""
    newest = shown[:1]
    if not (view.is_newest_first and view.is_first_page):
        newest = (await services.requests.page(org, tree, 1, None))["requests"]
    if newest:
        return cursor_of(newest[0])
    return encode_cursor(stored_time(chosen.start), ZERO_UUID)


def _recent(chosen: Window) -> TimeRange:
    """The range's last day at most: where the column picker looks for property keys, so that a
    90-day range does not scan 90 days of property maps on every page load."""
    start_ms, end_ms = (int(moment.timestamp() * 1000) for moment in (chosen.start, chosen.end))
    return TimeRange(max(start_ms, end_ms - KEY_LOOKBACK_MS), end_ms)


def _previous_query(view: RequestView) -> str | None:
    if view.offset:
        return view.query(offset=max(0, view.offset - view.limit))
    return None


def _column_choices(
    view: RequestView, property_keys: list[str], scores: list[str]
) -> list[dict[str, Any]]:
    """Every column the picker offers, the shown ones first in their order."""
    keys = [
        *view.columns,
        *BUILT_IN_COLUMNS,
        *(f"property:{key}" for key in property_keys),
        *(f"score:{name}" for name in scores),
    ]
    return [
        {"key": key, "label": _choice_label(key), "shown": key in view.columns}
        for key in dict.fromkeys(keys)
    ]


def _choice_label(key: str) -> str:
    column = column_of(key)
    if key.startswith("property:"):
        return f"Property: {column.label}"
    if key.startswith("score:"):
        return f"Score: {column.label}"
    return column.label


async def _live_events(
    request: Request,
    services: Services,
    templates: Templates,
    organization_id: str,
    tree: Filter,
    columns: list[ListColumn],
    cursor: str,
) -> AsyncIterator[bytes]:
    rows_template = templates.environment.get_template("requests_rows.html")
    deadline = time.monotonic() + LIVE_SECONDS
    yield b"retry: 2000\n\n"
    while time.monotonic() < deadline:
        if await request.is_disconnected():
            return
        found = await services.requests.newer(organization_id, tree, cursor, LIVE_BATCH)
        if found["requests"]:
            # Rows go only to a person still signed in and still a member, checked each time.
            if not await _still_a_member(request, services, organization_id):
                break
            cursor = found["cursor"]
            rows = table_rows(found["requests"], columns)
            html = rows_template.render(rows=rows, columns=columns, fresh=True)
            data = {"html": html, "count": len(found["requests"]), "cursor": cursor}
            yield b"event: rows\ndata: " + orjson.dumps(data) + b"\n\n"
        else:
            yield b": idle\n\n"  # notices a reader that went away
        await asyncio.sleep(LIVE_POLL_SECONDS)
    yield b"event: end\ndata: " + orjson.dumps({"cursor": cursor}) + b"\n\n"


async def _still_a_member(request: Request, services: Services, organization_id: str) -> bool:
    person = await person_of(request, services)
    if person is None:
        return False
    role = await run_in_threadpool(services.accounts.role_of, person.user_id, organization_id)
    return role is not None


def table_rows(requests: list[dict[str, Any]], columns: list[ListColumn]) -> list[dict[str, Any]]:
    """What the rows template needs: each request and, when shown, its bodies' previews."""
    keys = {column.key for column in columns}
    return [
        {
            "request": request,
            "request_preview": preview(request.get("request_body"), REQUEST_TEXT)
            if "request" in keys
            else "",
            "response_preview": preview(request.get("response_body"), RESPONSE_TEXT)
            if "response" in keys
            else "",
        }
        for request in requests
    ]


# Where the readable text of a provider's request and response bodies is, as key paths ("*" is
# a list's last item, "@user" its last item with role user): OpenAI, Anthropic and Gemini
# shapes, then plain prompts. A streamed response (SSE text) shows its deltas' text.
REQUEST_TEXT = (
    ("messages", "@user", "content"),
    ("messages", "*", "content"),
    ("contents", "*", "parts", "*", "text"),
    ("prompt",),
    ("input",),
)
RESPONSE_TEXT = (
    ("choices", 0, "message", "content"),
    ("choices", 0, "text"),
    ("content", 0, "text"),
    ("candidates", 0, "content", "parts", 0, "text"),
    ("error", "message"),
)
STREAM_TEXT = (
    ("choices", 0, "delta", "content"),
    ("delta", "text"),
    ("candidates", 0, "content", "parts", 0, "text"),
)
PREVIEW_CHARS = 120
STREAM_EVENTS = 200  # the most events of a streamed body read for its preview


def preview(body: Any, paths: tuple[tuple[str | int, ...], ...]) -> str:
    """A short excerpt of a body: its message text where a known shape has one, else its JSON."""
    if body is None:
        return ""
    if isinstance(body, str) and body.lstrip().startswith(("data:", "event:")):
        return _short(_stream_text(body))
    for path in paths:
        found = _walk(body, path)
        if found:
            return _short(found)
    return _short(body if isinstance(body, str) else orjson.dumps(body).decode())


def _stream_text(body: str) -> str:
    """The text a streamed (server-sent events) body carries, from its first events."""
    parts: list[str] = []
    for line in body.splitlines()[: STREAM_EVENTS * 2]:
        if not line.startswith("data:"):
            continue
        try:
            event = orjson.loads(line.removeprefix("data:").strip())
        except orjson.JSONDecodeError:
            continue  # "[DONE]" and the like
        parts += [text for path in STREAM_TEXT if (text := _walk(event, path))]
        if sum(map(len, parts)) > PREVIEW_CHARS:
            break
    return "".join(parts)


def _walk(value: Any, path: tuple[str | int, ...]) -> str:
    for step in path:
        value = _step(value, step)
    if isinstance(value, list):  # content parts: their text
        texts = [part.get("text") for part in value if isinstance(part, dict)]
        return " ".join(text for text in texts if isinstance(text, str))
    return value if isinstance(value, str) else ""


def _step(value: Any, step: str | int) -> Any:
    if isinstance(value, list) and value:
        if step == "*":
            return value[-1]
        if step == "@user":
            users = [
                item for item in value if isinstance(item, dict) and item.get("role") == "user"
            ]
            return users[-1] if users else None
        return value[step] if isinstance(step, int) and step < len(value) else None
    if isinstance(value, dict) and isinstance(step, str):
        return value.get(step)
    return None


def _short(text: str) -> str:
    flat = " ".join(text[: PREVIEW_CHARS * 4].split())  # a bounded slice: bodies can be huge
    if len(flat) <= PREVIEW_CHARS:
        return flat
    return flat[: PREVIEW_CHARS - 1] + "\N{HORIZONTAL ELLIPSIS}"
