"""Per-request context, access log and HTTP metrics, as a plain ASGI middleware.

Every request gets a request id (the client's ``X-Request-ID`` when it is safe to
echo, else a fresh ULID) in ``request.state.request_id`` and in the logging context,
answered in the ``X-Request-ID`` header; when it ends it is logged once and counted by
route template (never the raw path). Written against ASGI directly rather than as a
``BaseHTTPMiddleware``: that wrapper runs every request through an extra task and
memory stream, which cost more than a small call's own work; streams (SSE, packet
downloads) pass through untouched.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import structlog

from service.clock import system_clock
from service.context import request_id_var
from service.ids import new_ulid

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from service.metrics import Metrics

_log = structlog.get_logger("govex.http")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HEADER = b"x-request-id"


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's request id when it is safe to echo and log, else a fresh ULID."""
    for name, value in headers:
        if name == _HEADER:
            supplied = value.decode("latin-1")
            if _SAFE_REQUEST_ID.fullmatch(supplied):
                return supplied
            break
    return new_ulid(system_clock())


class RequestLogMiddleware:
    """Request id, one access-log line and the request metrics for every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope["headers"])
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.monotonic()
        status = 500  # what the outermost handler answers when the route raised

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != _HEADER]
                message = {**message, "headers": [*headers, (_HEADER, request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)
            elapsed = time.monotonic() - started
            _count(scope, status, elapsed)
            _log.info(
                "request",
                request_id=request_id,
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=int(elapsed * 1000),
            )


def _count(scope: Scope, status: int, duration_s: float) -> None:
    """Private: the request in the app's metrics, by route template (never the raw path)."""
    app = scope.get("app")
    metrics: Metrics | None = getattr(getattr(app, "state", None), "metrics", None)
    if metrics is not None:
        template = getattr(scope.get("route"), "path", None)
        metrics.http_request(scope["method"], template, status, duration_s)
