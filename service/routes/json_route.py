"""API routes whose JSON request bodies must not repeat a key (service.json_keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from service.json_keys import repeated_key

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from fastapi import Request, Response


class JsonRoute(APIRoute):
    """An APIRoute that refuses a JSON body with a repeated key: a 422 naming where it is.

    The check reads the body FastAPI then parses (starlette keeps it), and runs only where
    FastAPI would read the body as JSON: a route with a body, a JSON media type.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def unique_keys_handler(request: Request) -> Response:
            if _is_json(request.headers.get("content-type")):
                path = repeated_key(await request.body())
                if path is not None:
                    raise RequestValidationError(
                        [
                            {
                                "type": "json_repeated_key",
                                "loc": ("body", *path),
                                "msg": f"the key {path[-1]!r} appears twice in one object: "
                                "a JSON object's keys must be unique (RFC 7493, I-JSON)",
                                "input": None,
                            }
                        ]
                    )
            return await handler(request)

        return unique_keys_handler


def _is_json(content_type: str | None) -> bool:
    """Private: a media type FastAPI reads as JSON (application/json, application/*+json)."""
    if content_type is None:
        return False
    media = content_type.partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
