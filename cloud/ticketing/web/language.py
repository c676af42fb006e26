"""Choosing the pages' language and time zone for each request (:class:`LocaleMiddleware`) and
the switch that changes them (``GET /lang?to=zh-CN&tz=…&next=/path``, :func:`language_router`).

The switch is a plain link (and the footer's zone picker a plain GET form) that remembers the
choice in two cookies and goes back to the page it came from; no script runs. The cookies say
nothing about who is signed in, so they are ordinary (``SameSite=Lax``) preferences for a year.
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations.
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from fastapi import APIRouter, Response
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cloud.ticketing.web import i18n
from cloud.ticketing.web.auth import safe_next

YEAR_S = 365 * 86_400


def _cookies(header: str) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # noqa: BLE001 - a malformed Cookie header means no preference
        return {}
    return {k: m.value for k, m in jar.items()}


def locale_of(scope: Scope) -> i18n.Locale:
    """The locale a request asks for, by its query, cookies and ``Accept-Language``."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
    raw = scope.get("query_string", b"").decode("latin-1")
    try:
        query = parse_qs(raw, max_num_fields=64)
    except ValueError:  # more fields than any page takes: no preference; the page answers it
        query = {}
    cookies = _cookies(headers.get("cookie", ""))
    path = scope.get("path", "/")
    return i18n.negotiate(
        asked=(query.get("lang") or [None])[0],
        cookie=cookies.get(i18n.LANG_COOKIE),
        accept=headers.get("accept-language"),
        tz_asked=(query.get("tz") or [None])[0],
        tz_cookie=cookies.get(i18n.TZ_COOKIE),
        here=path + (f"?{raw}" if raw else ""),
    )


class LocaleMiddleware:
    """Sets :func:`i18n.current` for each HTTP request (pure ASGI, so the context variable
    reaches the route, its dependencies and the thread pool the sync routes run in)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with i18n.use(locale_of(scope)):
            await self.app(scope, receive, send)


def language_router() -> APIRouter:
    """``GET /lang``: remember the language (``to``) and/or time zone (``tz``) asked for, then
    go back to ``next`` (a path on this site)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/lang")
    def switch(to: str | None = None, tz: str | None = None, next: str | None = None) -> Response:
        response = RedirectResponse(safe_next(next), status_code=303)
        lang = i18n.language(to)
        if lang is not None:
            response.set_cookie(i18n.LANG_COOKIE, lang, max_age=YEAR_S, samesite="lax", path="/")
        zone = i18n.zone(tz)
        if zone is not None:
            response.set_cookie(i18n.TZ_COOKIE, zone.key, max_age=YEAR_S, samesite="lax", path="/")
        return response

    return router
