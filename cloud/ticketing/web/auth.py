"""Signing in to the pages: the API token, typed once into a form, opens a session kept in a
cookie.

A browser cannot send ``Authorization: Bearer`` on a link, so the login form opens a page session
(``tokens.start_session``: a random id of its own, never the token) and keeps its id in an
HttpOnly (no script can read it), SameSite=Strict (no other site can make the browser send it)
cookie. The session ends on sign-out, when its token is revoked or expires, or after
``tokens.SESSION_TTL``. The cookie is accepted by the pages only, never by ``/api/v1``: the API
stays bearer-only, so a cross-site request can never act through it.

The cookie is ``Secure`` when the page was requested over HTTPS as the application sees it:
directly, or through a reverse proxy that sends ``X-Forwarded-Proto: https`` *from an address the
server trusts* (uvicorn's ``--forwarded-allow-ips`` / ``FORWARDED_ALLOW_IPS``, the local host unless
set; uvicorn then rewrites the request's scheme). The header from any other client is ignored,
so a client cannot choose the flag.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from cloud.ticketing.service import TicketService
from cloud.ticketing.tokens import MAX_TOKEN_CHARS as MAX_TOKEN_CHARS  # the pages' forms use it
from cloud.ticketing.tokens import Principal
from contract.errors import QloopError

COOKIE = "qloop_session"
HOME = "/dashboard"  # where signing in lands: the dashboard


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
    """A dependency: the principal whose session is in the cookie, else :class:`LoginRequired`."""

    def dependency(request: Request) -> Principal:
        session_id = request.cookies.get(COOKIE)
        principal = service.session_user(session_id) if session_id else None
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
    """Open a page session for the holder of ``token`` (checked by the caller) and put its id in
    the pages' cookie, ``Secure`` when the page came over HTTPS (see the module)."""
    service: TicketService = request.app.state.service
    session_id = service.start_session(token)
    if session_id is None:  # revoked or expired since the caller checked it: stay signed out
        return
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def sign_out(response: Response, request: Request | None = None) -> None:
    """Forget the cookie, and with ``request`` end its session on the server too."""
    if request is not None and (session_id := request.cookies.get(COOKIE)):
        service: TicketService = request.app.state.service
        service.end_session(session_id)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
