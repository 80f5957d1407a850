"""Request-scoped values in contextvars: set at the edge, read by logging."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("govex_request_id", default=None)
call_id_var: ContextVar[str | None] = ContextVar("govex_call_id", default=None)
