"""The service's refusals as HTTP answers, in one place for every route that changes a ticket.

- :class:`TicketNotFound` → 404 ("no ticket PF…");
- an illegal lifecycle move (:class:`IllegalTransition`, :class:`IllegalAction`) or a clash
  with another open ticket (:class:`TicketConflict`) → 409 with the reason (the legal moves);
- a field the service refuses (:class:`InvalidFix`, :class:`InvalidFeedback`: both name it) →
  422, shaped like FastAPI's own validation errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, status

from cloud.ticketing.api.schemas import ErrorPublic, InvalidPublic
from cloud.ticketing.errors import (
    IllegalTransition,
    InvalidFeedback,
    InvalidFix,
    TicketConflict,
    TicketNotFound,
)


def documented(description: str, *, invalid: bool = False) -> dict[str, Any]:
    """An answer as the OpenAPI document lists it: ``{"detail": "…"}``, or with ``invalid`` the
    422 shape (``{"detail": [{"loc", "msg", "type"}, …]}``)."""
    return {"model": InvalidPublic if invalid else ErrorPublic, "description": description}


def unprocessable(field: str, message: str, where: str = "body") -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors."""
    detail = [{"type": "value_error", "loc": [where, field], "msg": message}]
    return HTTPException(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, detail=detail)


@contextmanager
def answering() -> Iterator[None]:
    """Run a service call; its refusals leave as 404, 409 or 422 (see the module)."""
    try:
        yield
    except TicketNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except (IllegalTransition, TicketConflict) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except (InvalidFix, InvalidFeedback) as exc:
        raise unprocessable(exc.field, str(exc)) from exc
