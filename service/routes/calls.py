"""Call routes: submit a call, follow it (status, list, events), cancel it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from service import call_cancel, call_submit, reads
from service.api_models import CallList, CallResponse, CallStatus
from service.call_events import call_events
from service.call_index import CallQuery
from service.contract import CallRequest
from service.deps import ExecutorDep, PrincipalDep, RequestIdDep, RuntimeDep
from service.routes.json_route import JsonRoute

router = APIRouter(prefix="/v1/calls", tags=["calls"], route_class=JsonRoute)
_MAX_PAGE = 500


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "A dry run's report, or a replayed Idempotency-Key's ended call."},
        202: {"model": CallStatus, "description": "Accepted and still running: follow Location."},
    },
)
async def create_call(  # noqa: PLR0913, PLR0917 - FastAPI: a parameter per header and dependency
    body: CallRequest,
    response: Response,
    runtime: RuntimeDep,
    executor: ExecutorDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
    prefer: Annotated[
        str | None,
        Header(description="RFC 7240: respond-async (answer 202 at once) or wait=N seconds."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(description="Retrying with the same key and body returns the same call."),
    ] = None,
) -> CallResponse | CallStatus:
    """Run a catalog entry under a Call Contract.

    201 with the verdict, ledger seqs and packet when it ends within the wait
    (``GOVEX_CALL_WAIT_S``); otherwise 202 with its status and ``Location`` to follow.
    """
    wait_s, respond_async = call_submit.preferred_wait(prefer, runtime.settings.call_wait_s)
    submitted = await call_submit.submit(
        runtime,
        executor,
        principal,
        body,
        request_id=request_id,
        wait_s=wait_s,
        idempotency_key=idempotency_key,
    )
    if submitted.result is not None and submitted.result.dry_run is not None:
        response.status_code = status.HTTP_200_OK
        return CallResponse.of(submitted.result)
    response.headers["Location"] = f"/v1/calls/{submitted.call_id}"
    if respond_async:
        response.headers["Preference-Applied"] = "respond-async"
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if submitted.result is not None:
        return CallResponse.of(submitted.result)
    record = submitted.record
    assert record is not None  # noqa: S101 - a call that did not end has its index row
    done = record.done
    response.status_code = status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED
    return CallStatus.of(record)


@router.get("")
def list_calls(  # noqa: PLR0913, PLR0917 - one parameter per filter
    runtime: RuntimeDep,
    principal: PrincipalDep,
    entry: Annotated[str | None, Query(max_length=200)] = None,
    principal_id: Annotated[str | None, Query(alias="principal", max_length=200)] = None,
    verdict: Annotated[str | None, Query(max_length=32)] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[str | None, Query(description="FORMATS time: created at or after.")] = None,
    before: Annotated[str | None, Query(description="Paging cursor: a call id.")] = None,
    limit: Annotated[int, Query(ge=1, le=_MAX_PAGE)] = 50,
) -> CallList:
    """Calls, newest first: one's own, or anyone's for auditors and operators (read_ledger)."""
    query = CallQuery(
        entry=entry,
        principal=principal_id,
        verdict=verdict,
        state=state,
        since=since,
        before=before,
        limit=limit,
    )
    return CallList.of(reads.list_calls(runtime, principal, query), query)


@router.get("/{call_id}")
def get_call(call_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> CallStatus:
    """Where a call stands: state, verdict, progress, ledger seqs, packet."""
    return CallStatus.of(reads.call_record(runtime, principal, call_id))


@router.get(
    "/{call_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def get_call_events(
    call_id: str, runtime: RuntimeDep, principal: PrincipalDep
) -> StreamingResponse:
    """Server-Sent Events: ``state`` (each change of state or progress), then ``end``."""
    # 404 / 403 first; another's call is ledgered as read (call.events) before any event.
    await run_in_threadpool(reads.call_record, runtime, principal, call_id, read="call.events")

    async def stream() -> AsyncIterator[str]:
        async for event in call_events(runtime, call_id):
            yield event

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.delete(
    "/{call_id}",
    responses={202: {"model": CallStatus, "description": "Asked to stop; still ending."}},
)
def cancel_call(
    call_id: str,
    response: Response,
    runtime: RuntimeDep,
    executor: ExecutorDep,
    principal: PrincipalDep,
) -> CallStatus:
    """Cancel a running call (ledgered as call.cancelled); 200 once it ended, else 202."""
    record = call_cancel.cancel_call(runtime, executor, principal, call_id)
    response.status_code = status.HTTP_200_OK if record.done else status.HTTP_202_ACCEPTED
    return CallStatus.of(record)
