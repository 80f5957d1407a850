"""The FastAPI edge: lifespan builds the runtime, one handler turns errors into problems.

Start with ``uvicorn --factory service.app:app_factory`` (or ``govex serve``):
only :func:`app_factory` reads the environment (and ``govex.toml``, see
:mod:`service.config`). Each app keeps its own Prometheus registry (``app.state.metrics``),
fed by the ledger it appends to and by the request middleware (:mod:`service.request_log`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.errors import CatalogError
from ledger.errors import LedgerError
from service.body_limit import BodyLimitMiddleware
from service.call_executor import CallExecutor
from service.call_reaper import reap_interrupted
from service.call_recovery import recover_calls
from service.checkpoints import PeriodicCheckpoints
from service.clock import Clock, system_clock
from service.config import load_settings
from service.console.mount import mount_console
from service.errors import LedgeredRefusal, ServiceError, Unauthenticated
from service.metrics import Metrics
from service.openapi import govex_openapi
from service.packets.errors import PacketError
from service.problems import (
    PROBLEM_MEDIA_TYPE,
    http_error_body,
    invalid_request_body,
    problem_body,
    problem_kind,
)
from service.readiness import ReadinessProbe
from service.request_log import RequestLogMiddleware
from service.retention import PeriodicSweeps, RetentionSweeper
from service.routes import (
    approvals,
    calls,
    catalog,
    health,
    ledger,
    packets,
    problem_docs,
    selftest,
)
from service.runtime import build_runtime
from service.settings import Settings

_log = structlog.get_logger("govex.http")


def create_app(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    """An app whose lifespan opens the runtime for ``settings`` and closes it after.

    With a ledger signing key, the lifespan also runs periodic checkpoints
    (``settings.checkpoint_interval_s``; 0 disables them). It always runs the retention
    sweeper (:mod:`service.retention`: it finishes ledgered removals at start, then removes
    expired packets when ``settings.packet_retention_days`` is set).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, clock=clock)
        app.state.runtime = runtime
        metrics = Metrics(entry.id for entry in runtime.sealed.catalog.entries)
        runtime.ledger.observe(metrics.ledger_entry)
        app.state.metrics = metrics
        app.state.readiness = ReadinessProbe(runtime)
        sweeps = PeriodicSweeps(RetentionSweeper(runtime), settings.packet_sweep_interval_s)
        periodic = (
            None
            if runtime.checkpointer is None
            else PeriodicCheckpoints(runtime.checkpointer, settings.checkpoint_interval_s)
        )
        _log.info(
            "service.started",
            authority_status=runtime.sealed.authority.value,
            catalog=runtime.sealed.catalog.name,
            provisional_reason=runtime.sealed.provisional_reason,
            checkpoints="signed" if runtime.checkpointer else "no signing key",
        )
        recover_calls(runtime)  # the index behind the ledger after a crash (service.call_recovery)
        reap_interrupted(runtime)  # calls a crashed worker left unfinished
        executor = CallExecutor(runtime, settings.call_workers)
        app.state.executor = executor
        try:
            if periodic is not None:
                periodic.start()
            sweeps.start()
            yield
        finally:
            # Running calls finish (or are cancelled and finished) before the ledger closes.
            executor.shutdown(settings.shutdown_grace_s)
            if periodic is not None:
                periodic.stop()
            sweeps.stop()
            app.state.readiness.close()
            runtime.close()

    app = FastAPI(
        title="govex",
        summary="Audited read-only exports: sealed catalog, call contracts, ledger, packets.",
        version="1",
        lifespan=lifespan,
    )
    token = settings.metrics_token
    app.state.metrics_token = None if token is None else token.get_secret_value()
    for router in (
        catalog.router,
        calls.router,
        approvals.router,
        packets.router,
        ledger.router,
        health.router,
        selftest.router,
        problem_docs.router,
    ):
        app.include_router(router)
    mount_console(app, settings)  # the web console under /console (docs/console.md)
    app.openapi = lambda: govex_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        bounded_elsewhere=frozenset({packets.VERIFY_PATH}),
    )
    app.add_middleware(RequestLogMiddleware)
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(StarletteHTTPException, _http_problem)
    for domain_error in (ServiceError, CatalogError, LedgerError, PacketError):
        app.add_exception_handler(domain_error, _domain_problem)
    app.add_exception_handler(Exception, _internal_problem)
    return app


def app_factory() -> FastAPI:
    """Uvicorn factory: settings from ``GOVEX_*`` variables and the configuration file."""
    return create_app(load_settings())


def _problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    response = JSONResponse(
        body, status_code=body["status"], media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )
    if body.get("request_id"):
        response.headers["X-Request-ID"] = body["request_id"]
    return response


def _request_id(request: Request) -> str | None:
    request_id: str | None = getattr(request.state, "request_id", None)
    return request_id


async def _domain_problem(request: Request, exc: Exception) -> Response:
    body = problem_body(exc, request_id=_request_id(request), instance=request.url.path)
    _log.info("request.refused", code=body["code"], status=body["status"], path=request.url.path)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="govex"'
    # A refusal that knows when to retry (a lease) says so; otherwise its kind's default.
    cause = exc.cause if isinstance(exc, LedgeredRefusal) else exc
    retry_after_s = getattr(cause, "retry_after_s", None) or problem_kind(exc).retry_after_s
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    return _problem_response(body, headers or None)


async def _validation_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this class only
    errors = [
        {
            "pointer": "/" + "/".join(str(p) for p in err["loc"][1:]),
            "location": str(err["loc"][0]),
            "detail": err["msg"],
        }
        for err in exc.errors()
    ]
    return _problem_response(
        invalid_request_body(errors, request_id=_request_id(request), instance=request.url.path)
    )


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this class only
    body = http_error_body(
        exc.status_code, str(exc.detail), request_id=_request_id(request), instance=request.url.path
    )
    return _problem_response(body)


async def _internal_problem(request: Request, exc: Exception) -> Response:
    # The traceback goes to the server log only; the user gets the request id.
    _log.error("request.failed", path=request.url.path, exc_info=exc)
    return _problem_response(
        problem_body(exc, request_id=_request_id(request), instance=request.url.path)
    )
