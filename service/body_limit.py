"""Request bodies past ``GOVEX_MAX_REQUEST_BYTES`` are refused before they are read whole.

govex takes small JSON bodies only (a call, an approval, a console form). A larger body
costs memory and, once parsed, CPU (every string is scanned for secret-like values), so
the body a route reads is cut off at the limit: a ``Content-Length`` past it, or chunks
adding up past it, raise a 413 as the route reads them. It goes through the app's HTTP
error handler like any routing error: ``application/problem+json``, code
``request_too_large`` (:mod:`service.problems`). A route that reads no body is not
affected, nor one that bounds its own stream (``POST /v1/packets/verify``, bounded by
``GOVEX_PACKET_UPLOAD_MAX_BYTES`` with its own problem). Starlette's own limiter answers
plain text, so it is not used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

_CONTENT_LENGTH = b"content-length"


class BodyLimitMiddleware:
    """Cut request bodies off at ``max_bytes`` (a 413 raised where the body is read)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, bounded_elsewhere: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.bounded_elsewhere = bounded_elsewhere  # paths whose routes bound their own body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.bounded_elsewhere:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _declared_length(scope["headers"])
        seen = 0

        async def receive_within_limit() -> Message:
            nonlocal seen
            if declared is not None and declared > limit:
                raise too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, receive_within_limit, send)


def too_large(limit: int) -> HTTPException:
    """The 413 for a body past ``limit`` bytes."""
    return HTTPException(
        status_code=413,
        detail=f"the request body is larger than this service accepts ({limit} bytes; "
        "GOVEX_MAX_REQUEST_BYTES)",
    )


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length`` when there is one that reads as a number."""
    for name, value in headers:
        if name == _CONTENT_LENGTH:
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses such a request before it gets here
    return None
