"""API tokens and roles, and the pages' sign-in sessions.

A token is stored as its SHA-256 digest only, so the database never holds a usable token. Roles
are ranked: a role may do whatever the roles below it may.

- ``viewer`` reads tickets;
- ``service`` (customer-service staff) also files people's feedback and corrects its automatic
  classification, but cannot move tickets along their lifecycle;
- ``engineer`` also changes tickets (transitions, comments, fixes, follow-ups);
- ``admin`` also hands out, lists and revokes tokens.

A token's name is unique: it is how a person is named in ticket histories and how an
administrator revokes the token. A token may expire (``expires_at``); an expired one is refused
with a reason that says so. The administrator token given in the environment (``QLOOP_API_TOKEN``)
is the *bootstrap* token: starting with another one replaces the previous, it never adds a second.

A page session (:func:`start_session`) is a random id of its own, kept as a digest as tokens are:
the pages' cookie holds it instead of the token. It ends when its token is revoked or expires,
on sign-out, or after :data:`SESSION_TTL`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.ticketing.context import Context
from cloud.ticketing.models import ApiToken, PageSession
from contract.errors import QloopError

ROLES = ("viewer", "service", "engineer", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
MAX_TOKEN_CHARS = 512  # generated tokens and session ids are 43; anything far longer is neither
SESSION_TTL = timedelta(hours=12)  # a page session lasts at most this long, signed out or not
UNKNOWN = "missing or invalid bearer token"


class TokenRefused(QloopError, PermissionError):
    """A bearer token that does not let its holder in; the message says why."""


class TokenNameTaken(QloopError, ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a token named {name!r} exists; names are unique (revoke it first)")


class InvalidExpiry(QloopError, ValueError):
    """A new token's expiry that has already passed."""

    field = "expires_at"


class TokenNotFound(QloopError, LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no token named {name!r}")


@dataclass(frozen=True, slots=True)
class Principal:
    """Whoever holds a valid API token."""

    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as an administrator sees it: never the token itself."""

    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    bootstrap: bool  # the administrator token from the environment


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_role(role: str) -> None:
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")


def _valid(row: ApiToken | None, now: datetime) -> Principal:
    if row is None:
        raise TokenRefused(UNKNOWN)
    if row.expires_at is not None and row.expires_at <= now:
        raise TokenRefused(f"token {row.name!r} expired at {row.expires_at:%Y-%m-%dT%H:%M:%SZ}")
    return Principal(row.name, row.role)


def check_token(ctx: Context, token: str) -> Principal:
    """The principal holding ``token``; :class:`TokenRefused` (saying why) if there is none."""
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused(UNKNOWN)
    with ctx.readers() as s:
        return _valid(s.get(ApiToken, hash_token(token)), ctx.now())


def authenticate(ctx: Context, token: str) -> Principal | None:
    """The principal holding ``token``, or None (a read-only transaction)."""
    try:
        return check_token(ctx, token)
    except TokenRefused:
        return None


def _name_holder(s: Session, name: str) -> ApiToken | None:
    return s.scalars(select(ApiToken).where(ApiToken.name == name)).one_or_none()


def _save(ctx: Context, fields: dict[str, Any], *, replacing: bool = False) -> None:
    """Insert the token of ``fields`` or update the row of its digest; with ``replacing``, every
    other bootstrap token, and an administrator token holding its name, go (with their
    sessions). Two processes saving the same token at once (API processes starting together)
    both succeed: the one that loses the insert tries again and finds the row."""
    for attempt in (1, 2):
        try:
            with ctx.sessions.begin() as s:
                _save_in(s, ApiToken(**fields), replacing)
            return
        except IntegrityError as exc:  # another process saved the token or took the name
            if attempt == 2:
                raise TokenNameTaken(fields["name"]) from exc


def _save_in(s: Session, row: ApiToken, replacing: bool) -> None:
    holder = _name_holder(s, row.name)
    if replacing:
        gone = ApiToken.bootstrap.is_(True)
        if holder is not None and holder.role == "admin":
            gone = or_(gone, ApiToken.name == row.name)  # one bootstrapped before 0006
        stale = select(ApiToken.token_sha256).where(gone, ApiToken.token_sha256 != row.token_sha256)
        _drop(s, list(s.scalars(stale)))
        holder = _name_holder(s, row.name)
    if holder is not None and holder.token_sha256 != row.token_sha256:
        raise TokenNameTaken(row.name)
    existing = s.get(ApiToken, row.token_sha256)
    if existing is None:
        s.add(row)
    else:  # the same token again: it keeps its creation time
        existing.name, existing.role = row.name, row.role
        existing.expires_at, existing.bootstrap = row.expires_at, row.bootstrap


def _drop(s: Session, digests: list[str]) -> None:
    if digests:
        s.execute(delete(PageSession).where(PageSession.token_sha256.in_(digests)))
        s.execute(delete(ApiToken).where(ApiToken.token_sha256.in_(digests)))


def ensure_token(
    ctx: Context, token: str, *, name: str, role: str, expires_at: datetime | None = None
) -> None:
    """Make ``token`` valid with ``name`` and ``role`` (idempotent); :class:`TokenNameTaken` if
    another token has the name."""
    _check_role(role)
    fields = {
        "token_sha256": hash_token(token), "name": name, "role": role,
        "created_at": ctx.now(), "expires_at": expires_at, "bootstrap": False,
    }  # fmt: skip
    _save(ctx, fields)


def bootstrap_token(ctx: Context, token: str, *, name: str) -> None:
    """Make ``token`` the administrator token from the environment, replacing the previous one
    (and any earlier administrator token of the same name): changing ``QLOOP_API_TOKEN`` and
    restarting leaves only the new token valid. :class:`TokenNameTaken` if a token of another
    role has the name."""
    fields = {
        "token_sha256": hash_token(token), "name": name, "role": "admin",
        "created_at": ctx.now(), "expires_at": None, "bootstrap": True,
    }  # fmt: skip
    _save(ctx, fields, replacing=True)


def create_token(
    ctx: Context,
    *,
    name: str,
    role: str,
    expires_at: datetime | None = None,
    ttl: timedelta | None = None,
) -> str:
    """A new random token for ``role``, valid until ``expires_at`` or for ``ttl`` if either is
    given (:class:`InvalidExpiry` if that is not in the future); only its digest is stored."""
    now = ctx.now()
    if ttl is not None:
        expires_at = now + ttl
    if expires_at is not None and expires_at <= now:
        raise InvalidExpiry(f"expires_at {expires_at.isoformat()} is not in the future")
    token = secrets.token_urlsafe(32)
    ensure_token(ctx, token, name=name, role=role, expires_at=expires_at)
    return token


def list_tokens(ctx: Context, name: str | None = None) -> list[TokenInfo]:
    """Every token (expired ones too, until revoked), by name; or the one named ``name``."""
    query = select(ApiToken).order_by(ApiToken.name)
    if name is not None:
        query = query.where(ApiToken.name == name)
    with ctx.readers() as s:
        rows = s.scalars(query)
        return [TokenInfo(r.name, r.role, r.created_at, r.expires_at, r.bootstrap) for r in rows]


def revoke_token(ctx: Context, name: str) -> None:
    """Remove the token named ``name`` and end its page sessions; :class:`TokenNotFound` if
    there is none."""
    with ctx.sessions.begin() as s:
        row = _name_holder(s, name)
        if row is None:
            raise TokenNotFound(name)
        _drop(s, [row.token_sha256])


def start_session(ctx: Context, token: str) -> str | None:
    """A new page session for the holder of ``token`` (None if the token is refused): a random
    id, stored as a digest, ending at the token's expiry or after :data:`SESSION_TTL`."""
    if len(token) > MAX_TOKEN_CHARS:
        return None
    session_id = secrets.token_urlsafe(32)
    now = ctx.now()
    with ctx.sessions.begin() as s:
        row = s.get(ApiToken, hash_token(token))
        try:
            _valid(row, now)
        except TokenRefused:
            return None
        assert row is not None
        ends = now + SESSION_TTL
        if row.expires_at is not None:
            ends = min(ends, row.expires_at)
        s.execute(delete(PageSession).where(PageSession.expires_at <= now))  # tidy as we go
        s.add(
            PageSession(
                id_sha256=hash_token(session_id), token_sha256=row.token_sha256,
                created_at=now, expires_at=ends,
            )
        )  # fmt: skip
    return session_id


def session_user(ctx: Context, session_id: str) -> Principal | None:
    """Who signed in with ``session_id``, or None (unknown, ended, or its token gone)."""
    if len(session_id) > MAX_TOKEN_CHARS:
        return None
    now = ctx.now()
    with ctx.readers() as s:
        found = s.execute(
            select(PageSession, ApiToken)
            .join(ApiToken, ApiToken.token_sha256 == PageSession.token_sha256)
            .where(PageSession.id_sha256 == hash_token(session_id))
        ).one_or_none()
    if found is None or found[0].expires_at <= now:
        return None
    try:
        return _valid(found[1], now)
    except TokenRefused:
        return None


def end_session(ctx: Context, session_id: str) -> None:
    """Sign out: the session ``session_id`` is no longer valid (nothing if it was not)."""
    if len(session_id) <= MAX_TOKEN_CHARS:
        with ctx.sessions.begin() as s:
            s.execute(delete(PageSession).where(PageSession.id_sha256 == hash_token(session_id)))
