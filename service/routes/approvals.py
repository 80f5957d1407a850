"""Approval routes: grant one (operators, never for themselves), list them (ledger readers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from service import approval_grants
from service.approval_grants import ApprovalRequest, ApprovalView
from service.approval_index import MAX_LISTED
from service.deps import PrincipalDep, RequestIdDep, RuntimeDep
from service.routes.json_route import JsonRoute

router = APIRouter(prefix="/v1/approvals", tags=["approvals"], route_class=JsonRoute)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_approval(
    body: ApprovalRequest,
    response: Response,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    request_id: RequestIdDep,
) -> ApprovalView:
    """Approve one requester's call of an entry with these inputs, for a bounded time."""
    approval = approval_grants.grant(runtime, principal, body, request_id=request_id)
    response.headers["Location"] = f"/v1/ledger/entries?start={approval.seq}&limit=1"
    return approval


@router.get("")
def list_approvals(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    entry: Annotated[str | None, Query(description="Only approvals of this entry id.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED)] = 100,
) -> list[ApprovalView]:
    """The latest approvals, newest first (auditors and operators)."""
    return approval_grants.list_approvals(runtime, principal, entry, limit)
