"""API tokens and roles: who may read, who may change tickets, who may hand out tokens.

A token is stored as its SHA-256 digest only, so the database never holds a usable token. Roles
are ranked: a role may do whatever the roles below it may.

- ``viewer`` reads tickets;
- ``service`` (customer-service staff) also files people's feedback and corrects its automatic
  classification, but cannot move tickets along their lifecycle;
- ``engineer`` also changes tickets (transitions, comments, fixes, follow-ups);
- ``admin`` also hands out tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cloud.ticketing.context import Context
from cloud.ticketing.models import ApiToken

ROLES = ("viewer", "service", "engineer", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True, slots=True)
class Principal:
    """Whoever holds a valid API token."""

    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def lookup_token(session: Session, token: str) -> Principal | None:
    """The principal holding ``token``, or None."""
    row = session.get(ApiToken, hash_token(token))
    return None if row is None else Principal(row.name, row.role)


def ensure_token(ctx: Context, token: str, *, name: str, role: str) -> None:
    """Make ``token`` valid with ``role`` (idempotent); used to bootstrap the admin token."""
    if role not in ROLE_RANK:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    with ctx.sessions.begin() as s:
        row = s.get(ApiToken, hash_token(token))
        if row is None:
            s.add(
                ApiToken(token_sha256=hash_token(token), name=name, role=role, created_at=ctx.now())
            )
        else:
            row.name, row.role = name, role


def create_token(ctx: Context, *, name: str, role: str) -> str:
    """A new random token for ``role``; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    ensure_token(ctx, token, name=name, role=role)
    return token


def authenticate(ctx: Context, token: str) -> Principal | None:
    """The principal holding ``token``, or None (a read-only transaction)."""
    with ctx.readers() as s:
        return lookup_token(s, token)
