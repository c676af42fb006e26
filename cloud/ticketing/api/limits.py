"""The request body's size cap: a body over :data:`MAX_BODY_BYTES` is a 413 with the reason.

A declared ``Content-Length`` over the cap is answered at once, without reading the body; a body
without one (chunked) is counted as it arrives and refused when it passes the cap. Every request
is capped, the pages' forms too (they have smaller bounds of their own); the largest body the API
takes by design is a fix naming 100,000 units (about 7 MB).
"""

from __future__ import annotations

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 8 * 1024 * 1024


def too_large(max_bytes: int) -> str:
    return f"request body over {max_bytes:,} bytes"


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with a 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            answer = JSONResponse({"detail": too_large(self.max_bytes)}, status_code=413)
            await answer(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:  # raised where the route reads its body: a 413 answer
                raise HTTPException(
                    status.HTTP_413_CONTENT_TOO_LARGE, detail=too_large(self.max_bytes)
                )
            return message

        await self.app(scope, counted, send)
