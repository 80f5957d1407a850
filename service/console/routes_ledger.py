"""Console routes: the ledger page, one entry, and an entry's inclusion proof."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from service import reads
from service.console.deps import SessionDep
from service.console.render import page
from service.console.route import ConsoleRoute
from service.console.view_ledger import (
    CHART_HOURS,
    DEFAULT_LIMIT,
    MAX_CHART_HOURS,
    MAX_LIMIT,
    entry_page,
    ledger_page,
)
from service.deps import RuntimeDep

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Size = Annotated[int | None, Query(ge=0)]


@router.get("/ledger")
def ledger(  # noqa: PLR0913, PLR0917 - one parameter per query parameter
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    start: Size = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    kind: Annotated[str, Query(max_length=64)] = "",
    old: Size = None,
    new: Size = None,
    hours: Annotated[int, Query(ge=1, le=MAX_CHART_HOURS)] = CHART_HOURS,
) -> Response:
    """Entries by range, checkpoints and their consistency, the chain's state, the chart."""
    view = ledger_page(
        runtime,
        session.principal,
        start=start,
        limit=limit,
        kind=kind,
        old=old,
        new=new,
        hours=hours,
    )
    return page(
        request, "ledger.html", session=session, section="ledger", title="Ledger", view=view
    )


@router.get("/ledger/entries/{seq}")
def ledger_entry(
    request: Request, seq: Annotated[int, Path(ge=0)], runtime: RuntimeDep, session: SessionDep
) -> Response:
    """One entry with its body and links (``ledger.entries`` read, ledgered)."""
    view = entry_page(runtime, session.principal, seq)
    return page(
        request,
        "ledger_entry.html",
        session=session,
        section="ledger",
        title=f"Ledger entry {seq}",
        view=view,
    )


@router.get("/ledger/entries/{seq}/proof")
def ledger_entry_proof(
    seq: Annotated[int, Path(ge=0)], runtime: RuntimeDep, session: SessionDep
) -> Response:
    """Its C2SP tlog-proof against the latest checkpoint (``ledger.inclusion_proof``, ledgered)."""
    answer = reads.ledger_inclusion_proof(runtime, session.principal, seq, None)
    return PlainTextResponse(
        answer.tlog_proof(),
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": f'attachment; filename="seq-{seq}.tlog-proof"',
        },
    )
