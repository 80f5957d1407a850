"""Operations endpoints for load balancers and scrapers: liveness, readiness, metrics.

None needs an API key (``/metrics`` takes ``GOVEX_METRICS_TOKEN`` when one is set), and
none says more than names, counts and states: no URL, host, path or secret.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from service.api_models import Health
from service.deps import RuntimeDep
from service.errors import NotReady, Unauthenticated
from service.metrics import CONTENT_TYPE, Metrics
from service.problems import PROBLEM_MEDIA_TYPE, problem_body
from service.readiness import ReadinessProbe
from service.routes.json_route import JsonRoute

router = APIRouter(tags=["operations"], route_class=JsonRoute)


class ReadinessCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(examples=["ledger", "source:sales", "catalog_seal"])
    ok: bool
    detail: str = Field(description="What was found; never a URL, path or secret.")


class Readiness(BaseModel):
    """The readiness report; a failed one is the same plus the problem+json members."""

    model_config = ConfigDict(frozen=True)

    ready: bool
    checks: list[ReadinessCheck]


_READY_EXAMPLE = {
    "ready": True,
    "checks": [
        {"name": "ledger", "ok": True, "detail": "42 entries"},
        {"name": "source:items", "ok": True, "detail": "SQLite file opens read-only"},
        {"name": "catalog_seal", "ok": True, "detail": "serving sha256:..., as sealed on disk"},
        {"name": "packet_root", "ok": True, "detail": "writable"},
        {"name": "api_keys", "ok": True, "detail": "loaded, 3 keys"},
    ],
}
_NOT_READY_EXAMPLE = {
    "type": "urn:govex:problem:not_ready",
    "title": "Not ready",
    "status": 503,
    "code": "not_ready",
    "detail": "1 readiness check(s) failed: ledger",
    "ready": False,
    "checks": [{"name": "ledger", "ok": False, "detail": "timed out after 3 s"}],
}


@router.get("/healthz")
def healthz(runtime: RuntimeDep) -> Health:
    """The process is up and its runtime is built."""
    return Health(
        status="ok", version=runtime.build.version, authority_status=runtime.sealed.authority.value
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        200: {"content": {"application/json": {"example": _READY_EXAMPLE}}},
        503: {
            "description": "A check failed: problem+json with the same ready and checks.",
            "content": {PROBLEM_MEDIA_TYPE: {"example": _NOT_READY_EXAMPLE}},
        },
    },
)
def readyz(request: Request) -> Any:  # noqa: ANN401 - the report, or the 503 problem response
    """Whether this process can serve calls: ledger, sources, catalog seal, packet root, keys.

    200 with ``ready: true`` when every check passes; otherwise 503, a problem+json that
    also carries ``ready: false`` and the same ``checks``.
    """
    probe: ReadinessProbe = request.app.state.readiness
    checks = [ReadinessCheck(name=c.name, ok=c.ok, detail=c.detail) for c in probe.run()]
    failed = [check.name for check in checks if not check.ok]
    if not failed:
        return Readiness(ready=True, checks=checks)
    body: dict[str, Any] = problem_body(
        NotReady(failed),
        request_id=getattr(request.state, "request_id", None),
        instance=request.url.path,
    )
    body |= {"ready": False, "checks": [check.model_dump() for check in checks]}
    return JSONResponse(body, status_code=503, media_type=PROBLEM_MEDIA_TYPE)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}},
        401: {"description": "A metrics token is set and this request does not carry it."},
    },
)
def metrics(
    request: Request,
    authorization: Annotated[
        str | None, Header(description="Bearer <metrics token>, when GOVEX_METRICS_TOKEN is set")
    ] = None,
) -> Response:
    """The metrics of the process that answers, in the Prometheus text format (see the docs)."""
    registry: Metrics = request.app.state.metrics
    token = request.app.state.metrics_token
    if token is not None and not _bearer_matches(authorization, token):
        raise Unauthenticated(
            "GET /metrics needs 'Authorization: Bearer <metrics token>'", where="metrics_token"
        )
    return Response(registry.render(), media_type=CONTENT_TYPE)


def _bearer_matches(authorization: str | None, token: str) -> bool:
    """Private: whether the header is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, given = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )
