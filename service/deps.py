"""FastAPI dependencies: the runtime from the app state, the principal from the header.

The ones that only read the request are ``async``: FastAPI runs a plain ``def``
dependency on its thread pool, a hand-off per dependency per request.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool

from service.auth_refusals import authenticate_or_ledger, ledger_refusal
from service.call_executor import CallExecutor
from service.errors import Unauthenticated
from service.identity import Principal
from service.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_executor(request: Request) -> CallExecutor:
    executor: CallExecutor = request.app.state.executor
    return executor


ExecutorDep = Annotated[CallExecutor, Depends(get_executor)]


# The client whose failures are throttled: the connection's peer address. Behind a reverse
# proxy that is the proxy (forwarded headers are not trusted: a client could forge them).
UNKNOWN_CLIENT = "(unknown)"


async def get_principal(
    request: Request,
    runtime: RuntimeDep,
    authorization: Annotated[
        str | None, Header(description="Bearer <api key>, or Bearer <JWT> where enabled")
    ] = None,
) -> Principal:
    """The caller (throttled per peer address); a refusal is ledgered (service.auth_refusals).

    An API key is checked on the event loop (a hash looked up in memory); a JWT, whose
    verifier may fetch keys, and the ledgering of a refusal go to the thread pool.
    """
    client = request.client.host if request.client is not None else UNKNOWN_CLIENT
    asked = f"{request.method} {request.url.path}"
    request_id = getattr(request.state, "request_id", None)
    if runtime.auth.may_block(authorization):
        return await run_in_threadpool(
            partial(
                authenticate_or_ledger,
                runtime,
                authorization,
                via="http",
                client=client,
                request=asked,
                request_id=request_id,
            )
        )
    try:
        return runtime.auth.authenticate(authorization, runtime.clock(), client=client)
    except Unauthenticated as exc:
        refusal = partial(
            ledger_refusal, via="http", client=client, request=asked, request_id=request_id
        )
        await run_in_threadpool(refusal, runtime, exc)
        raise


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_request_id(request: Request) -> str | None:
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id


RequestIdDep = Annotated[str | None, Depends(get_request_id)]
