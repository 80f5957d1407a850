"""Ledger routes: entries by range, the latest checkpoint, inclusion and consistency proofs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import PlainTextResponse, Response

from service import reads
from service.api_models import (
    ConsistencyProofView,
    InclusionProofView,
    LedgerEntryView,
    LedgerPage,
)
from service.deps import PrincipalDep, RuntimeDep
from service.routes.json_route import JsonRoute

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], route_class=JsonRoute)

TEXT_MEDIA_TYPE = "text/plain"
_TEXT_RESPONSE = {"content": {TEXT_MEDIA_TYPE: {"schema": {"type": "string"}}}}


@router.get("/entries")
def list_entries(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    start: Annotated[int, Query(ge=0, le=reads.MAX_SEQ, description="First seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=reads.MAX_LEDGER_PAGE)] = 100,
) -> LedgerPage:
    """Ledger entries from ``start`` (auditors and operators); ``next`` links the next page."""
    size, entries = reads.ledger_entries(runtime, principal, start, limit)
    end = start + len(entries)
    return LedgerPage(
        size=size,
        start=start,
        entries=[LedgerEntryView.model_validate(e.model_dump()) for e in entries],
        next=f"/v1/ledger/entries?start={end}&limit={limit}" if end < size else None,
    )


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    responses={200: _TEXT_RESPONSE},
)
def get_checkpoint(runtime: RuntimeDep, principal: PrincipalDep) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint note), signed now if the ledger grew."""
    return PlainTextResponse(reads.ledger_checkpoint(runtime, principal).note)


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProofView,
    responses={200: _TEXT_RESPONSE},
)
def get_inclusion_proof(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    seq: Annotated[int, Query(ge=0, le=reads.MAX_SEQ, description="The entry to prove.")],
    size: Annotated[
        int | None,
        Query(
            ge=1,
            le=reads.MAX_SEQ,
            description="Tree size of a stored checkpoint; the latest when absent.",
        ),
    ] = None,
    fmt: Annotated[
        Literal["json", "tlog-proof"] | None,
        Query(alias="format", description="tlog-proof: the C2SP tlog-proof text."),
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """Entry ``seq`` is in the checkpoint of ``size``: JSON, or the C2SP tlog-proof text.

    The tlog-proof comes with ``?format=tlog-proof`` or ``Accept: text/plain``.
    """
    answer = reads.ledger_inclusion_proof(runtime, principal, seq, size)
    if _wants_text(fmt, accept):
        return PlainTextResponse(answer.tlog_proof())
    return Response(InclusionProofView.of(answer).model_dump_json(), media_type="application/json")


@router.get("/proofs/consistency")
def get_consistency_proof(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    old: Annotated[int, Query(ge=0, le=reads.MAX_SEQ, description="The smaller tree size.")],
    new: Annotated[int, Query(ge=0, le=reads.MAX_SEQ, description="The larger tree size.")],
) -> ConsistencyProofView:
    """The RFC 9162 proof that the tree of ``new`` entries extends the tree of ``old``."""
    return ConsistencyProofView.of(
        old, new, reads.ledger_consistency_proof(runtime, principal, old, new)
    )


def _wants_text(fmt: str | None, accept: str | None) -> bool:
    """``format`` decides; else whichever of text/plain and application/json Accept names first."""
    if fmt is not None:
        return fmt == "tlog-proof"
    for item in (accept or "").split(","):
        media_type = item.split(";", 1)[0].strip().lower()
        if media_type == TEXT_MEDIA_TYPE:
            return True
        if media_type == "application/json":
            return False
    return False
