"""Ledger routes: entries by range."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from service import reads
from service.api_models import LedgerEntryView, LedgerPage
from service.deps import PrincipalDep, RuntimeDep

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])


@router.get("/entries")
def list_entries(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    start: Annotated[int, Query(ge=0, description="First seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_LEDGER_PAGE)] = 100,
) -> LedgerPage:
    """Ledger entries from ``start`` (auditors and operators)."""
    size, entries = reads.ledger_entries(runtime, principal, start, limit)
    end = start + len(entries)
    return LedgerPage(
        size=size,
        start=start,
        entries=[LedgerEntryView.model_validate(e.model_dump()) for e in entries],
        next=f"/v1/ledger/entries?start={end}&limit={limit}" if end < size else None,
    )
