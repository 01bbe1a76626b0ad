"""The Jinja2 environment (autoescaped), the number and time formats every page shares, and
`render`, which gives each template the viewer, the navigation and the asset URLs."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import Depends
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jinja2.filters import do_urlencode
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from heliograph.domain.times import as_utc
from heliograph.web.assets import Assets
from heliograph.web.viewer import Viewer

TEMPLATES = Path(__file__).parent / "templates"
NOTHING = "\N{EN DASH}"  # what a cell shows when there is no value
NAVIGATION = (
    ("/", "Home"),
    ("/requests", "Requests"),
    ("/sessions", "Sessions"),
    ("/users", "Users"),
    ("/properties", "Properties"),
    ("/cache", "Cache"),
    ("/sql", "SQL"),
    ("/prompts", "Prompts"),
    ("/webhooks", "Webhooks"),
    ("/alerts", "Alerts"),
    ("/settings", "Settings"),
)


def usd(value: Any) -> str:
    """Dollars with enough digits to tell small costs apart ($0.000123, $1.23, $12,345)."""
    if value is None:
        return NOTHING
    amount = float(value)
    if amount == 0:
        return "$0"
    if abs(amount) >= 100:
        return f"${amount:,.0f}"
    if abs(amount) >= 0.01:
        return f"${amount:,.2f}"
    digits = min(10, 2 - math.floor(math.log10(abs(amount))))
    return f"${amount:.{digits}f}"


def milliseconds(value: Any) -> str:
    if value is None:
        return NOTHING
    number = float(value)
    if number >= 10_000:
        return f"{number / 1000:,.1f} s"
    if number >= 1000:
        return f"{number / 1000:.2f} s"
    return f"{number:,.0f} ms"


def count(value: Any) -> str:
    if value is None:
        return NOTHING
    number = float(value)
    if number.is_integer():
        return f"{int(number):,}"
    return f"{number:,.2f}"


def percent(value: Any) -> str:
    return NOTHING if value is None else f"{float(value):.1f}%"


def when(value: Any) -> Markup:
    """A `<time>` in UTC, which app.js shows in the reader's own zone."""
    if not value:
        return escape(NOTHING)
    moment = value if isinstance(value, datetime) else _parse(str(value))
    if moment is None:
        return Markup("{}").format(value)
    moment = as_utc(moment)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return Markup('<time datetime="{}">{} UTC</time>').format(moment.isoformat(), text)


def _parse(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def as_json(value: Any) -> Markup:
    """JSON for a `<script type="application/json">` block: `<` escaped so that no text inside
    can close the element."""
    encoded = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    safe = encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(safe)  # noqa: S704 - escaped above: no tag can open or close in it


def urlencode(value: Any) -> str:
    """Jinja's `urlencode`, except that a string is one path segment: its `/` is encoded too, so
    that an id such as `../settings` in `/users/{{ id | urlencode }}` stays on the user's page."""
    if isinstance(value, str):
        return quote(value, safe="")
    return do_urlencode(value)


def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


class Templates:
    def __init__(self, assets: Assets) -> None:
        self.assets = assets
        self.environment = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters.update(
            usd=usd,
            ms=milliseconds,
            count=count,
            percent=percent,
            when=when,
            json=as_json,
            pretty_json=pretty_json,
            urlencode=urlencode,
        )
        self.environment.globals.update(asset=assets.url, navigation=NAVIGATION)

    def render(
        self,
        request: Request,
        name: str,
        viewer: Viewer | None = None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        template = self.environment.get_template(name)
        html = template.render(request=request, viewer=viewer, path=request.url.path, **context)
        return HTMLResponse(html, status_code, headers={"Cache-Control": "no-store"})


def get_templates(request: Request) -> Templates:
    templates: Templates = request.app.state.templates
    return templates


TemplatesDep = Annotated[Templates, Depends(get_templates)]
