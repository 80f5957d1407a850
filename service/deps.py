"""FastAPI dependencies: the runtime from the app state, the principal from the header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from service.auth_refusals import authenticate_or_ledger
from service.call_executor import CallExecutor
from service.identity import Principal
from service.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_executor(request: Request) -> CallExecutor:
    executor: CallExecutor = request.app.state.executor
    return executor


ExecutorDep = Annotated[CallExecutor, Depends(get_executor)]


# The client whose failures are throttled: the connection's peer address. Behind a reverse
# proxy that is the proxy (forwarded headers are not trusted: a client could forge them).
UNKNOWN_CLIENT = "(unknown)"


def get_principal(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[
        str | None, Header(description="Bearer <api key>, or Bearer <JWT> where enabled")
    ] = None,
) -> Principal:
    """The caller (throttled per peer address); a refusal is ledgered (service.auth_refusals)."""
    client = request.client.host if request.client is not None else UNKNOWN_CLIENT
    return authenticate_or_ledger(
        runtime,
        authorization,
        via="http",
        client=client,
        request=f"{request.method} {request.url.path}",
        request_id=getattr(request.state, "request_id", None),
    )


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def get_request_id(request: Request) -> str | None:
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id


RequestIdDep = Annotated[str | None, Depends(get_request_id)]
