"""The browser's two cookies: `heliograph_session` (HttpOnly: the session's token) and
`heliograph_csrf` (readable by the page, which echoes it in `X-CSRF-Token` on every unsafe
request: a double submit another site cannot forge)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "heliograph_session"
CSRF_COOKIE = "heliograph_csrf"
CSRF_HEADER = "X-CSRF-Token"


def served_over_tls(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (directly, or through a proxy that says so)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_session_cookies(
    response: Response, request: Request, token: str, csrf: str, max_age_s: int
) -> None:
    secure = served_over_tls(request)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age_s, httponly=True, samesite="lax", secure=secure
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age_s, httponly=False, samesite="lax", secure=secure
    )


def clear_session_cookies(response: Response, request: Request) -> None:
    secure = served_over_tls(request)
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, samesite="lax", secure=secure, httponly=name == SESSION_COOKIE)
