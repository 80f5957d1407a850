"""Granting and listing approvals: the core behind ``POST /v1/approvals`` and ``govex approvals``.

An approver (policy action ``approve``; never the requester: ``forbid-self-approval``)
names an entry, the inputs, the requester (principal id and tenant), a TTL and a reason.
The inputs are bound exactly as the requester's call would bind them
(:func:`service.contract.prepare_contract` with the requester as caller, tenant binding
included), so the approval's ``inputs_digest`` is the one that call's contract gets.
Ordering: policy first; then ``approval.granted`` is appended (durable: the evidence);
then the ``govex_approvals`` row. When the row cannot be written the error goes up and
calls find no approval (``missing``): the failure never lets a call run.

Refusals are ledgered too, as ``approval.denied`` (who tried to approve what, and why
not; never the free-text reason, which was not accepted), then raised as
:class:`ApprovalBlocked` around the refusal: a deny is :class:`PolicyDenied`, an entry that
needs no approval or a TTL out of bounds :class:`ApprovalRefused`, bad inputs the
catalog's input errors.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from catalog.digest import DigestSet
from catalog.errors import CatalogError
from catalog.params import is_secret_like
from ledger.entry import format_ts
from service.approvals import ApprovalRecord
from service.contract import CallRequest, JsonScalar, prepare_contract
from service.errors import (
    ApprovalBlocked,
    ApprovalRefused,
    CatalogNotRunnable,
    CommandRefused,
    CommandSpecInvalid,
    PolicyDenied,
)
from service.identity import PLATFORM_TENANT, Principal
from service.ids import new_ulid
from service.policy import Action, entry_entity, require_ledger_reader
from service.problems import problem_code
from service.read_audit import record_read
from service.runtime import Runtime

_MAX_REASON_CHARS = 1000


class ApprovalRequest(BaseModel):
    """What an approver asks for: one requester's call of one entry with these inputs."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "entry": "invoices.overpaid",
                    "params": {"tenant": "acme"},
                    "requester": "alice",
                    "requester_tenant": "acme",
                    "ttl_s": 3600,
                    "reason": "refund review, ticket 4411",
                }
            ]
        },
    )

    entry: str = Field(description="Catalog entry id; the entry must require approval.")
    params: dict[str, JsonScalar] = Field(
        default_factory=dict, description="The inputs, as the requester will send them."
    )
    requester: str = Field(min_length=1, max_length=200, description="Requester principal id.")
    requester_tenant: str = Field(
        min_length=1, max_length=200, description="The requester's tenant (binds tenant params)."
    )
    ttl_s: int | None = Field(
        default=None, gt=0, description="Seconds the approval lasts; the configured default."
    )
    reason: str = Field(min_length=1, max_length=_MAX_REASON_CHARS, description="Why, recorded.")


class ApprovalView(BaseModel):
    """An approval as the API shows it (``inputs`` only where known: in the grant's answer)."""

    model_config = ConfigDict(frozen=True)

    approval_id: str
    entry: str
    entry_digest: str = Field(description="sha256 hex of the sealed entry approved.")
    inputs_digest: str = Field(description="sha256 hex of the bound inputs approved.")
    inputs: dict[str, JsonScalar] | None = None
    requester: str
    requester_tenant: str
    tenant_relation: str
    approver: str
    approved_at: str
    expires_at: str
    seq: int = Field(description="Ledger seq of its approval.granted entry.")

    @classmethod
    def of(
        cls, record: ApprovalRecord, inputs: dict[str, JsonScalar] | None = None
    ) -> ApprovalView:
        return cls(
            approval_id=record.approval_id,
            entry=record.entry_id,
            entry_digest=record.entry_digest,
            inputs_digest=record.inputs_digest,
            inputs=inputs,
            requester=record.requester,
            requester_tenant=record.requester_tenant,
            tenant_relation=record.tenant_relation,
            approver=record.approver,
            approved_at=format_ts(record.approved_at),
            expires_at=format_ts(record.expires_at),
            seq=record.seq,
        )


_REFUSALS = (
    ApprovalRefused,
    PolicyDenied,
    CatalogError,
    CatalogNotRunnable,
    CommandRefused,
    CommandSpecInvalid,
)


def grant(
    runtime: Runtime,
    approver: Principal,
    request: ApprovalRequest,
    *,
    request_id: str | None,
    inputs_from_text: bool = False,
) -> ApprovalView:
    """Grant ``request`` for ``approver``: ledgered ``approval.granted``, then indexed.

    Raises :class:`ApprovalBlocked` after ledgering ``approval.denied``, around
    ``UnknownEntry``, ``CatalogNotRunnable`` or input errors for the entry and params,
    :class:`ApprovalRefused` (entry needs no approval, TTL above the maximum, a
    secret-like reason) or :class:`PolicyDenied` (``approve`` denied, self-approval
    included); and the ledger's errors when the grant or refusal cannot be recorded.
    ``inputs_from_text``: the params are command-line strings, converted by the entry's types.
    """
    try:
        return _grant(runtime, approver, request, request_id, inputs_from_text)
    except _REFUSALS as exc:
        body = {
            "entry_id": request.entry,
            "requester": request.requester,
            "requester_tenant": request.requester_tenant,
            "approver": approver.model_dump(mode="json"),
            "code": problem_code(exc),
            "reason": str(exc),
            "where": getattr(exc, "where", ""),
            "determining_policies": list(exc.policies) if isinstance(exc, PolicyDenied) else [],
            "request_id": request_id,
        }
        denied = runtime.ledger.append("approval.denied", body, runtime.clock())
        raise ApprovalBlocked(exc, seq=denied.seq) from None


def _grant(
    runtime: Runtime,
    approver: Principal,
    request: ApprovalRequest,
    request_id: str | None,
    inputs_from_text: bool,
) -> ApprovalView:
    settings = runtime.settings
    entry, _ = runtime.sealed.runnable_entry(request.entry)
    if not entry.requires_approval:
        raise ApprovalRefused(f"entry {entry.id} does not require approval", where="entry")
    ttl_s = request.ttl_s if request.ttl_s is not None else settings.approval_default_ttl_s
    if ttl_s > settings.approval_max_ttl_s:
        raise ApprovalRefused(
            f"ttl_s {ttl_s} is above the maximum {settings.approval_max_ttl_s}", where="ttl_s"
        )
    if is_secret_like(request.reason):
        raise ApprovalRefused("reason looks like a credential; it is not recorded", where="reason")
    now = runtime.clock()
    approval_id = new_ulid(now)
    # Bound as the requester's call would be: same params, the requester's tenant.
    requester = Principal(
        id=request.requester,
        roles=(),
        tenant=request.requester_tenant,
        auth_method=approver.auth_method,
        key_id="(requester)",
    )
    contract = prepare_contract(
        runtime.sealed,
        requester,
        CallRequest(entry=request.entry, params=request.params),
        call_id=approval_id,
        request_id=request_id,
        from_text=inputs_from_text,
    )
    decision = runtime.policy.decide(
        approver,
        Action.approve,
        entry_entity(entry),
        {
            "requester_is_self": approver.id == request.requester,
            "tenant_relation": _approver_relation(
                entry.tenant_param if entry.tenant_scoped else None, contract.inputs, approver
            ),
        },
    )
    if not decision.allowed:
        self_note = (
            ": an approver never approves their own call"
            if approver.id == request.requester
            else ""
        )
        raise PolicyDenied(
            f"policy denies approve of {entry.id} for {approver.id}{self_note}",
            action=Action.approve.value,
            resource=entry.id,
            policies=decision.determining,
        )
    expires_at = now + timedelta(seconds=ttl_s)
    digest: DigestSet = contract.entry.entry_digest
    body: dict[str, Any] = {
        "approval_id": approval_id,
        "entry_id": entry.id,
        "entry_digest": digest.model_dump(),
        "inputs_digest": contract.inputs_digest.model_dump(),
        "inputs": contract.inputs,  # validated inputs: secret-like values were refused
        "requester": request.requester,
        "requester_tenant": request.requester_tenant,
        "tenant_relation": contract.tenant_relation,
        "approver": approver.model_dump(mode="json"),
        "approved_at": format_ts(now),
        "expires_at": format_ts(expires_at),
        "ttl_s": ttl_s,
        "reason": request.reason,
        "policy": decision.record(),
        "request_id": request_id,
    }
    appended = runtime.ledger.append("approval.granted", body, now)
    record = ApprovalRecord(
        approval_id=approval_id,
        entry_id=entry.id,
        entry_digest=digest.sha256,
        inputs_digest=contract.inputs_digest.sha256,
        requester=request.requester,
        requester_tenant=request.requester_tenant,
        tenant_relation=contract.tenant_relation,
        approver=approver.id,
        approved_at=now,
        expires_at=expires_at,
        seq=appended.seq,
    )
    runtime.approvals.insert(record)
    return ApprovalView.of(record, contract.inputs)


def list_approvals(
    runtime: Runtime, principal: Principal, entry_id: str | None, limit: int
) -> list[ApprovalView]:
    """The latest approvals (of ``entry_id`` when given), for ledger readers only.

    Ledgered (``access.read``, ``approval.list``: the filter and the count), as the
    ``approval.granted`` entries it shows are read from the index, not the ledger.
    """
    require_ledger_reader(runtime.policy, principal)
    found = [ApprovalView.of(r) for r in runtime.approvals.latest(entry_id, limit)]
    target = {"entry": entry_id, "limit": limit, "returned": len(found)}
    record_read(runtime, principal, "approval.list", target=target)
    return found


def _approver_relation(
    tenant_param: str | None, inputs: dict[str, JsonScalar], approver: Principal
) -> str:
    """Private: the approver's relation to the tenant the inputs are bound to."""
    if tenant_param is None:
        return "unscoped"
    if approver.tenant == PLATFORM_TENANT:
        return "platform"
    return "own" if inputs.get(tenant_param) == approver.tenant else "cross"
