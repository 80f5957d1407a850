"""The console's route class: whatever a console route raises becomes a page, never JSON.

FastAPI's documented way to wrap every route of one router (``route_class``): the
handler runs, and an exception from it, from its dependencies or from request
validation goes to :func:`service.console.pages.error_response`. The JSON API's routes
keep the app's problem+json handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.routing import APIRoute

from service.console.pages import error_response

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from fastapi import Request, Response


class ConsoleRoute(APIRoute):
    """An APIRoute whose errors are console pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes a page (pages.py)
                return error_response(request, exc)

        return console_handler
