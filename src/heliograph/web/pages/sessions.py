"""`/sessions`: the organization's sessions over the range (filtered, sorted, paged) with a summary
per session name; `/sessions/{id}`: one session's tree by `Helicone-Session-Path`, a waterfall of
its requests, its totals, and its tag and feedback (saved through `/v1/session/{id}/...`)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.errors import InvalidInput
from heliograph.domain.filters import MAX_TERM_CHARS
from heliograph.domain.queries import AggregateQuery
from heliograph.domain.session_filters import parse_session_filter
from heliograph.domain.sorts import SESSION_SORT_KEYS
from heliograph.web.templating import TemplatesDep
from heliograph.web.time_range import window
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
NAMES_SHOWN = 12
MAX_PAGE = 2000  # offset 100,000: beyond it, narrow the range or the filters instead
MAX_BARS = 300  # a waterfall past this many bars is unreadable and heavy; the tree has them all
Param = Annotated[str | None, Query(max_length=40)]
Text = Annotated[str | None, Query(max_length=MAX_TERM_CHARS)]
SORT_LABELS = {
    "created_at": "Created",
    "latest_request_created_at": "Last request",
    "total_requests": "Requests",
    "total_cost": "Cost",
    "avg_latency": "Avg latency",
}
assert set(SORT_LABELS) == set(SESSION_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class Listing:
    """What the list's URL asks for, checked; `link` builds the URL of a changed listing."""

    range: str | None
    start: str | None
    end: str | None
    search: str
    name: str | None
    min_requests: int | None
    min_cost: float | None
    sort: str
    descending: bool
    page: int

    def params(self, **changes: Any) -> dict[str, str]:
        values = {
            "range": self.range,
            "start": self.start,
            "end": self.end,
            "q": self.search,
            "name": self.name,
            "min_requests": self.min_requests,
            "min_cost": self.min_cost,
            "sort": self.sort,
            "dir": "desc" if self.descending else "asc",
            "page": self.page,
        }
        values.update(changes)
        if values["page"] == 1:
            values["page"] = None  # the first page is the list's own URL
        return {key: str(value) for key, value in values.items() if value not in (None, "")}

    def link(self, **changes: Any) -> str:
        return "/sessions?" + urlencode(self.params(**changes))

    def sort_link(self, key: str) -> str:
        """Sort by `key`, newest or largest first; the current key's link flips its direction."""
        descending = not self.descending if key == self.sort else True
        return self.link(sort=key, dir="desc" if descending else "asc", page=1)

    def filter_node(self) -> dict[str, Any] | str:
        """The Helicone session filter the minimums make (`"all"` with none)."""
        leaves: list[dict[str, Any]] = []
        if self.min_requests is not None:
            leaves.append(_session_leaf("session_total_requests", self.min_requests))
        if self.min_cost is not None:
            leaves.append(_session_leaf("session_total_cost", self.min_cost))
        if not leaves:
            return "all"
        node = leaves[0]
        for leaf in leaves[1:]:
            node = {"left": node, "operator": "and", "right": leaf}
        return node


def _session_leaf(column: str, minimum: float) -> dict[str, Any]:
    return {"sessions_request_response_rmt": {column: {"gte": minimum}}}


def listing(
    range: str | None,
    start: str | None,
    end: str | None,
    q: str | None,
    name: str | None,
    min_requests: str | None,
    min_cost: str | None,
    sort: str | None,
    direction: str | None,
    page: str | None,
) -> Listing:
    """The list's query parameters, checked: anything malformed is a 400 saying which."""
    chosen_sort = sort or "latest_request_created_at"
    if chosen_sort not in SESSION_SORT_KEYS:
        raise InvalidInput(f"sort must be one of {', '.join(SESSION_SORT_KEYS)}")
    if direction not in (None, "", "asc", "desc"):
        raise InvalidInput('dir must be "asc" or "desc"')
    return Listing(
        range=range,
        start=start,
        end=end,
        search=(q or "").strip(),
        name=name or None,
        min_requests=_whole(min_requests, "min_requests", 0, 10**9),
        min_cost=_amount(min_cost, "min_cost"),
        sort=chosen_sort,
        descending=direction != "asc",
        page=_whole(page, "page", 1, MAX_PAGE) or 1,
    )


def _whole(text: str | None, name: str, low: int, high: int) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 12 or not low <= int(text) <= high:
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    return int(text)


def _amount(text: str | None, name: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a number of dollars") from None
    if not 0 <= value <= 1e9:
        raise InvalidInput(f"{name} must be between 0 and 1,000,000,000")
    return value


@router.get("/sessions")
async def sessions_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    range: Param = None,
    start: Param = None,
    end: Param = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    name: Text = None,
    min_requests: Param = None,
    min_cost: Param = None,
    sort: Param = None,
    dir: Param = None,
    page: Param = None,
) -> Response:
    chosen = window(range, start, end)
    wanted = listing(range, start, end, q, name, min_requests, min_cost, sort, dir, page)
    selection = parse_session_filter(wanted.filter_node())
    query = AggregateQuery(
        filter=selection.requests,
        sessions=selection.sessions,
        time=chosen.time,
        search=wanted.search,
        name=wanted.name,
        sort=wanted.sort,
        descending=wanted.descending,
        limit=PAGE_SIZE + 1,  # one more than shown says whether a next page exists
        offset=(wanted.page - 1) * PAGE_SIZE,
    )
    names_query = AggregateQuery(time=chosen.time, limit=NAMES_SHOWN)
    org = viewer.organization_id
    rows, totals, names = await asyncio.gather(
        services.sessions.sessions(org, query),
        services.sessions.count(org, query),
        services.sessions.names(org, names_query, ""),
    )
    return templates.render(
        request,
        "sessions.html",
        viewer,
        window=chosen,
        listing=wanted,
        sessions=rows[:PAGE_SIZE],
        has_next=len(rows) > PAGE_SIZE,
        totals=totals,
        names=names,
        sort_labels=SORT_LABELS,
    )


@router.get("/sessions/{session_id:path}")
async def session_page(
    request: Request,
    session_id: str,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
) -> Response:
    if not session_id or len(session_id) > MAX_TERM_CHARS:
        raise HTTPException(404)
    detail = await services.sessions.detail(viewer.organization_id, session_id)
    if detail is None:  # unknown here, or another organization's: the same answer
        raise HTTPException(404)
    bars = waterfall(detail)
    return templates.render(
        request,
        "session.html",
        viewer,
        session=detail,
        bars=bars[:MAX_BARS],
        hidden_bars=max(0, len(bars) - MAX_BARS),
        ticks=ticks(detail["duration_ms"] + detail["start_offset_ms"]),
        requests_href=requests_link("session_id", session_id),
    )


def requests_link(field: str, value: str) -> str:
    """The requests page filtered to `field` equal to `value` (that page's URL format)."""
    tree = {"and": [{"field": field, "op": "equals", "value": value}]}
    return "/requests?" + urlencode({"filter": json.dumps(tree, separators=(",", ":"))})


@dataclass(frozen=True, slots=True)
class Bar:
    """One request on the waterfall: where it starts and how wide it is, in percent of the
    session's span, and what it says."""

    request_id: str
    path: str
    model: str
    start_ms: int
    duration_ms: int
    left: float
    width: float
    failed: bool

    @property
    def label(self) -> str:
        return f"{self.path} · {self.model}" if self.model else self.path


def flatten(node: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every request of the tree with the path of its node, depth first, in the tree's order."""
    found = [(node["path"], request) for request in node["requests"]]
    for child in node["children"]:
        found.extend(flatten(child))
    return found


def waterfall(tree: dict[str, Any]) -> list[Bar]:
    """The session's requests by start time, each placed on the span from the first request's
    start to the last one's end (a bar at least 0.5% wide, so instant requests still show)."""
    requests = sorted(flatten(tree), key=lambda item: (item[1]["start_offset_ms"], item[0]))
    span = max((r["start_offset_ms"] + r["duration_ms"] for _, r in requests), default=0)
    span = max(span, 1)
    bars = []
    for path, found in requests:
        left = 100 * found["start_offset_ms"] / span
        width = max(100 * found["duration_ms"] / span, 0.5)
        bars.append(
            Bar(
                request_id=found["request_id"],
                path=path,
                model=found["model"] or "",
                start_ms=found["start_offset_ms"],
                duration_ms=found["duration_ms"],
                left=round(min(left, 99.5), 3),
                width=round(min(width, 100 - min(left, 99.5)), 3),
                failed=found["status"] >= 400 or found["status"] < 0,
            )
        )
    return bars


def ticks(span_ms: int, count: int = 4) -> list[tuple[float, int]]:
    """Axis marks: (percent across, milliseconds) at even steps of the span, 0 and the end
    included."""
    span = max(span_ms, 1)
    return [(100 * step / count, round(span * step / count)) for step in range(count + 1)]
