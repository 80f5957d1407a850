"""FastAPI dependencies: the runtime from the app state, the principal from the header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from service.identity import Principal
from service.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_principal(
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header(description="Bearer <api key>")] = None,
) -> Principal:
    return runtime.keyring.authenticate(authorization, runtime.clock())


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_request_id(request: Request) -> str | None:
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id


RequestIdDep = Annotated[str | None, Depends(get_request_id)]
