"""Call routes: run a call, look one up."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from service import calls, reads
from service.api_models import CallResponse, CallStatus
from service.contract import CallRequest
from service.deps import PrincipalDep, RequestIdDep, RuntimeDep

router = APIRouter(prefix="/v1/calls", tags=["calls"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_call(
    body: CallRequest,
    response: Response,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> CallResponse:
    """Run a catalog entry under a Call Contract and return its verdict, ledger seqs and packet."""
    result = calls.execute(runtime, principal, body, request_id=request_id)
    if body.mode == "dry_run":
        response.status_code = status.HTTP_200_OK
    else:
        response.headers["Location"] = f"/v1/calls/{result.call_id}"
    return CallResponse.of(result)


@router.get("/{call_id}")
def get_call(call_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> CallStatus:
    """Where a call stands: state, verdict, ledger seqs, packet."""
    return CallStatus.of(reads.call_record(runtime, principal, call_id))
