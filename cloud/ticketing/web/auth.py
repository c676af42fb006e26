"""Signing in to the pages: the API token, typed once into a form, kept in a cookie.

A browser cannot send ``Authorization: Bearer`` on a link, so the login form stores the token in
an HttpOnly (no script can read it), SameSite=Strict (no other site can make the browser send it)
cookie. The cookie is accepted by the pages only, never by ``/api/v1``: the API stays bearer-only,
so a cross-site request can never act through it. Whether a token is valid is decided by
:meth:`TicketService.authenticate`, the same lookup the API uses.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import Principal
from contract.errors import QloopError

COOKIE = "qloop_token"
HOME = "/dashboard"  # where signing in lands: the dashboard
MAX_TOKEN_CHARS = 512  # generated tokens are 43; anything far longer is not a token


class LoginRequired(QloopError):
    """Raised by a page whose visitor is not signed in; answered with a redirect to /login."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the dashboard (no open redirect).

    >>> safe_next("/tickets/PF202405001"), safe_next("//evil.example/x"), safe_next("https://x")
    ('/tickets/PF202405001', '/dashboard', '/dashboard')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return HOME
    parts = urlsplit(target)
    return HOME if parts.scheme or parts.netloc else target


def login_redirect(_request: Request, exc: Exception) -> Response:
    """Exception handler for :class:`LoginRequired`."""
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)


def cookie_user(service: TicketService) -> Callable[[Request], Principal]:
    """A dependency: the principal whose token is in the cookie, else :class:`LoginRequired`."""

    def dependency(request: Request) -> Principal:
        token = request.cookies.get(COOKIE)
        principal = None
        if token and len(token) <= MAX_TOKEN_CHARS:
            principal = service.authenticate(token)
        if principal is None:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise LoginRequired(path)
        return principal

    return dependency


def same_origin(request: Request) -> bool:
    """False when the browser says a form was posted from another site (login CSRF)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # no header: not a browser form from another site; "null": opaque
    return urlsplit(origin).netloc == request.headers.get("host", "")


def sign_in(response: Response, request: Request, token: str) -> None:
    """Put ``token`` in the pages' cookie (only over HTTPS when the page came over HTTPS)."""
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def sign_out(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
