"""Console routes: the calls list, a call's page, and its live events."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from service import reads
from service.call_events import call_events
from service.console.deps import SessionDep
from service.console.render import page
from service.console.route import ConsoleRoute
from service.console.view_calls import STATES, VERDICTS, CallFilters, call_page, calls_page
from service.deps import RuntimeDep

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
Filter = Annotated[str, Query(max_length=200)]


@router.get("/calls")
def calls(  # noqa: PLR0913, PLR0917 - one parameter per filter
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    entry: Filter = "",
    principal: Filter = "",
    verdict: Filter = "",
    state: Filter = "",
    since: Filter = "",
    before: Filter = "",
) -> Response:
    """Calls, newest first, filtered; one's own unless policy lets one read the ledger."""
    filters = CallFilters(entry, principal, verdict, state, since, before)
    view = calls_page(runtime, session.principal, filters)
    next_href = (
        None
        if view.next_before is None
        else "/console/calls?" + urlencode({**filters.without_cursor(), "before": view.next_before})
    )
    return page(
        request,
        "calls.html",
        session=session,
        section="calls",
        title="Calls",
        view=view,
        verdicts=VERDICTS,
        states=STATES,
        next_href=next_href,
    )


@router.get("/calls/{call_id}")
def call(request: Request, call_id: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    """A call: outcome, lifecycle, contract, ledger entries (a ledgered read); live if running."""
    view = call_page(runtime, session.principal, call_id)
    return page(
        request, "call.html", session=session, section="calls", title=f"Call {call_id}", view=view
    )


@router.get("/calls/{call_id}/events")
async def events(call_id: str, runtime: RuntimeDep, session: SessionDep) -> StreamingResponse:
    """The call's Server-Sent Events (``GET /v1/calls/{id}/events``'s), for the page's script."""
    # 404 / 403 first; another's call is ledgered as read (call.events), as the API's stream.
    await run_in_threadpool(
        reads.call_record, runtime, session.principal, call_id, read="call.events"
    )
    return StreamingResponse(
        call_events(runtime, call_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
