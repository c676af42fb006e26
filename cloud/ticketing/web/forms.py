"""What every form on the pages shares: reading the URL-encoded body (bounded, strict UTF-8),
refusing forms from other sites or from roles that may not send them, and the page that says
why something was refused.
"""

# No ``from __future__ import annotations``: kept like the other page modules.
from collections.abc import Callable
from urllib.parse import parse_qs

from fastapi import Request, Response

from cloud.ticketing.tokens import Principal
from cloud.ticketing.web import auth
from cloud.ticketing.web.i18n import tr
from cloud.ticketing.web.layout import esc, html, page

MAX_FORM_BYTES = 256 * 1024  # a complaint's 20,000 Chinese characters percent-encoded, and more


async def read_form(request: Request) -> dict[str, str] | str:
    """The URL-encoded form of ``request`` (each field's first value), or why it is refused."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return tr("the form must be sent URL-encoded")
    too_big = tr("the form is over {n} KiB", n=MAX_FORM_BYTES // 1024)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        return too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return too_big
    try:  # strict: a customer's words are refused rather than garbled
        text = body.decode("ascii")
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=32, errors="strict")
    except ValueError:  # raw bytes, %-escapes that are not UTF-8, far more fields than ours
        return tr("the form could not be read (not URL-encoded UTF-8)")
    return {k: v[0] for k, v in fields.items()}


def problem(user: Principal, title: str, message: str, status: int, back: str) -> Response:
    body = f'<h1>{esc(title)}</h1><div class="error" role="alert">{esc(message)}</div>'
    body += f'<p class="sub"><a href="{esc(back)}">{esc(tr("Back"))}</a></p>'
    return html(page(title, body, user=user), status)


async def posted(
    request: Request,
    user: Principal,
    role: str,
    back: str,
    forbidden: Callable[[Principal], Response] | None = None,
) -> dict[str, str] | Response:
    """The posted form, or the page refusing it (a role below ``role``, another site, a body
    that cannot be read)."""
    if not user.can(role):
        if forbidden is not None:
            return forbidden(user)
        why = tr(
            "this needs the role {role} or higher; you are {name} ({own})",
            role=role, name=user.name, own=user.role,
        )  # fmt: skip
        return problem(user, tr("Not allowed"), why, 403, back)
    if not auth.same_origin(request):
        return problem(user, tr("Refused"), tr("cross-site form refused"), 403, back)
    form = await read_form(request)
    if isinstance(form, str):
        return problem(user, tr("Cannot read the form"), form, 400, back)
    return form
