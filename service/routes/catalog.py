"""Catalog routes: the sealed catalog, one entry, the resolved document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from catalog.seal import entry_digest
from service.api_models import CatalogView, EntryView
from service.deps import PrincipalDep, RuntimeDep
from service.routes.json_route import JsonRoute

router = APIRouter(prefix="/v1/catalog", tags=["catalog"], route_class=JsonRoute)


@router.get("")
def list_entries(runtime: RuntimeDep, _principal: PrincipalDep) -> CatalogView:
    """Every entry with its digest, plus the catalog digest and authority status."""
    sealed = runtime.sealed
    return CatalogView.of(sealed, {e.id: entry_digest(e) for e in sealed.catalog.entries})


@router.get("/resolved")
def resolved_catalog(runtime: RuntimeDep, _principal: PrincipalDep) -> dict[str, Any]:
    """The resolved catalog document (FORMATS section 2), to recompute every digest."""
    return runtime.sealed.catalog.model_dump(mode="json")


@router.get("/{entry_id}")
def get_entry(entry_id: str, runtime: RuntimeDep, _principal: PrincipalDep) -> EntryView:
    """One entry exactly as sealed: SQL, parameter schema, limits, attributes."""
    entry, digest = runtime.sealed.runnable_entry(entry_id)
    return EntryView(
        entry=entry.model_dump(mode="json"),
        entry_digest=digest,
        authority_status=runtime.sealed.authority.value,
    )
