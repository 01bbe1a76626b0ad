"""`/users`: per-user activity over the range (searched, sorted, paged); `/users/{id}`: one user's
totals, requests and cost over time, newest requests and sessions. A user is whatever text the
`Helicone-User-Id` header carried, so ids are URL-encoded in every link."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response

from heliograph.api.deps import ServicesDep
from heliograph.domain.errors import InvalidInput
from heliograph.domain.filter_tree import Filter
from heliograph.domain.filters import MAX_TERM_CHARS, parse_filter
from heliograph.domain.queries import AggregateQuery, RequestQuery
from heliograph.domain.sorts import USER_SORT_KEYS
from heliograph.web.charts import series_chart
from heliograph.web.pages.sessions import MAX_PAGE, requests_link
from heliograph.web.templating import TemplatesDep
from heliograph.web.time_range import Window, window
from heliograph.web.viewer import ViewerDep

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
RECENT = 20
Param = Annotated[str | None, Query(max_length=40)]
# Bucket sizes whose starts are plain to compute here (weeks start on a weekday the store picks).
STEPS = {"min": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
SORT_LABELS = {
    "user_id": "User",
    "total_requests": "Requests",
    "cost": "Cost",
    "total_tokens": "Tokens",
    "total_prompt_tokens": "Prompt tokens",
    "total_completion_tokens": "Completion tokens",
    "first_active": "First active",
    "last_active": "Last active",
}
assert set(SORT_LABELS) == set(USER_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class UserListing:
    """The user list's URL, checked; `link` builds the URL of a changed list."""

    range: str | None
    start: str | None
    end: str | None
    search: str
    sort: str
    descending: bool
    page: int

    def params(self, **changes: Any) -> dict[str, str]:
        values: dict[str, Any] = {
            "range": self.range,
            "start": self.start,
            "end": self.end,
            "q": self.search,
            "sort": self.sort,
            "dir": "desc" if self.descending else "asc",
            "page": self.page,
            **changes,
        }
        if values["page"] == 1:
            values["page"] = None
        return {key: str(value) for key, value in values.items() if value not in (None, "")}

    def link(self, **changes: Any) -> str:
        return "/users?" + urlencode(self.params(**changes))

    def sort_link(self, key: str) -> str:
        descending = not self.descending if key == self.sort else key != "user_id"
        return self.link(sort=key, dir="desc" if descending else "asc", page=1)


def user_listing(
    range: str | None,
    start: str | None,
    end: str | None,
    q: str | None,
    sort: str | None,
    direction: str | None,
    page: str | None,
) -> UserListing:
    chosen_sort = sort or "last_active"
    if chosen_sort not in USER_SORT_KEYS:
        raise InvalidInput(f"sort must be one of {', '.join(USER_SORT_KEYS)}")
    if direction not in (None, "", "asc", "desc"):
        raise InvalidInput('dir must be "asc" or "desc"')
    if page and (
        not (page.isascii() and page.isdigit()) or len(page) > 12 or not 1 <= int(page) <= MAX_PAGE
    ):
        raise InvalidInput(f"page must be a whole number from 1 to {MAX_PAGE}")
    return UserListing(
        range, start, end, (q or "").strip(), chosen_sort, direction != "asc", int(page or 1)
    )


def _user_leaf(operator: str, value: str) -> dict[str, Any]:
    return {"request_response_rmt": {"user_id": {operator: value}}}


def _in_window(leaf: dict[str, Any], chosen: Window) -> dict[str, Any]:
    """`leaf` AND the request inside the window (a request list has no time range of its own)."""
    created = {"gte": chosen.start.isoformat()}, {"lt": chosen.end.isoformat()}
    node = leaf
    for bound in created:
        node = {"left": node, "operator": "and", "right": _created(bound)}
    return node


def _created(bound: dict[str, str]) -> dict[str, Any]:
    return {"request_response_rmt": {"request_created_at": bound}}


def _search_filter(search: str) -> Filter:
    return parse_filter(_user_leaf("contains", search) if search else "all")


@router.get("/users")
async def users_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    range: Param = None,
    start: Param = None,
    end: Param = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    sort: Param = None,
    dir: Param = None,
    page: Param = None,
) -> Response:
    chosen = window(range, start, end)
    wanted = user_listing(range, start, end, q, sort, dir, page)
    query = AggregateQuery(
        filter=_search_filter(wanted.search),
        time=chosen.time,
        sort=wanted.sort,
        descending=wanted.descending,
        limit=PAGE_SIZE,
        offset=(wanted.page - 1) * PAGE_SIZE,
    )
    found = await services.users.metrics(viewer.organization_id, query)
    return templates.render(
        request,
        "users.html",
        viewer,
        window=chosen,
        listing=wanted,
        users=found["users"],
        total=found["count"],
        has_next=wanted.page * PAGE_SIZE < found["count"],
        sort_labels=SORT_LABELS,
    )


@router.get("/users/{user_id:path}")
async def user_page(
    request: Request,
    user_id: str,
    viewer: ViewerDep,
    services: ServicesDep,
    templates: TemplatesDep,
    range: Param = None,
    start: Param = None,
    end: Param = None,
) -> Response:
    if not user_id or len(user_id) > MAX_TERM_CHARS:
        raise HTTPException(404)
    chosen = window(range, start, end)
    context = await _user_context(services, viewer.organization_id, user_id, chosen)
    return templates.render(request, "user.html", viewer, window=chosen, **context)


async def _user_context(
    services: ServicesDep, org: str, user_id: str, chosen: Window
) -> dict[str, Any]:
    """Everything the user page shows, read at once; each read bound by the range and a limit."""
    only_user = parse_filter(_user_leaf("equals", user_id))
    recent_filter = parse_filter(_in_window(_user_leaf("equals", user_id), chosen))
    query = AggregateQuery(filter=only_user, time=chosen.time)
    step = chosen.increment
    metrics = services.metrics
    totals, activity, series, recent, sessions = await asyncio.gather(
        metrics.totals(org, query),
        services.users.activity(org, query),
        metrics.dashboard_series(org, query, step, 0),  # requests and cost in one read
        # The summary columns only (`page` would read every body too): several times cheaper.
        services.requests.query(
            org, RequestQuery(recent_filter, limit=RECENT, include_bodies=False)
        ),
        services.sessions.sessions(org, AggregateQuery(filter=only_user, time=chosen.time)),
    )
    return {
        "user_id": user_id,
        "totals": totals,
        "activity": activity,
        "charts": {
            "requests": series_chart(
                filled(series, chosen, {"count": 0}), {"count": "Requests"}, "count", "bar"
            ),
            "cost": series_chart(
                filled(series, chosen, {"cost": 0}), {"cost": "Cost"}, "usd", "bar"
            ),
        },
        "recent": recent,
        "sessions": sessions,
        "requests_href": requests_link("user_id", user_id),
    }


def filled(
    points: list[dict[str, Any]], chosen: Window, zero: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Every bucket of the window, `zero` where the series has no point: the store skips empty
    buckets, and a chart of one user's few requests would otherwise span milliseconds."""
    step = STEPS.get(chosen.increment)
    if step is None:
        return points
    by_time = {point["time"]: point for point in points}
    moment = _bucket_start(chosen.start, chosen.increment)
    series = []
    while moment < chosen.end:
        key = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        series.append(by_time.get(key, {"time": key, **zero}))
        moment += step
    return series


def _bucket_start(moment: datetime, increment: str) -> datetime:
    start = moment.replace(second=0, microsecond=0)
    if increment in ("hour", "day"):
        start = start.replace(minute=0)
    if increment == "day":
        start = start.replace(hour=0)
    return start
