"""Adding the console to the app: its state, its static files, its routes (catch-all last).

Called by :func:`service.app.create_app`, so the console lives in the same process, on
the same runtime, as the API. The session keys are read here, once
(:mod:`service.console.session_key`); when none can be had the console still serves its
pages' answer, a 503 naming the setting, and the API is unaffected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from fastapi import APIRouter, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.console import (
    routes_calls,
    routes_catalog,
    routes_ledger,
    routes_packets,
    routes_session,
)
from service.console.errors import ConsoleUnavailable
from service.console.key_records import KeyRecords
from service.console.render import STATIC, Renderer
from service.console.route import ConsoleRoute
from service.console.session_key import SessionKeys, session_keys
from service.console.state import ConsoleState

if TYPE_CHECKING:
    from fastapi import FastAPI

    from service.settings import Settings

_log = structlog.get_logger("govex.console")
_fallback = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@_fallback.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def not_found(rest: str) -> Response:
    """Any other console address: the 404 page (not the API's problem+json)."""
    del rest
    raise StarletteHTTPException(404, "There is no console page at this address.")


def mount_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console under ``/console`` on ``app`` (docs/console.md)."""
    keys: SessionKeys | None = None
    reason = where = ""
    try:
        keys = session_keys(settings)
    except ConsoleUnavailable as exc:
        reason, where = exc.message, exc.where
        _log.warning("console.sign_in_off", reason=reason, where=where)
    app.state.console = ConsoleState(
        keys=keys,
        off_reason=reason,
        off_where=where,
        records=KeyRecords(settings.keys_file),
        ttl_s=settings.console_session_ttl_s,
        renderer=Renderer(),
    )
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    for module in (routes_session, routes_catalog, routes_calls, routes_packets, routes_ledger):
        app.include_router(module.router)
    app.include_router(_fallback)
