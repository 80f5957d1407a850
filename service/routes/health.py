"""Liveness."""

from __future__ import annotations

from fastapi import APIRouter

from service.api_models import Health
from service.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(runtime: RuntimeDep) -> Health:
    """The process is up and its runtime is built."""
    return Health(
        status="ok", version=runtime.build.version, authority_status=runtime.sealed.authority.value
    )
