"""Verify before execute: every check a call passes before anything runs, each refusal ledgered.

In order (ARCHITECTURE "One request"): the contract (entry and seal, inputs,
tenant), approvals and policy, the masking decision, a command's executable
pin, and the lease. A refusal is appended as ``call.denied`` and raised as
:class:`~service.errors.CallBlocked`; only then does :mod:`service.calls` start the call.
A dry run passes the first two (its own ``dry_run`` permission); :mod:`service.dry_run`
then reports the others without refusing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from catalog.errors import CatalogError
from catalog.model import CommandEntry, Entry, QueryEntry
from ledger.entry import format_ts
from ledger.errors import LedgerError
from service.approvals import ApprovalCheck, CallKey, check_approval, unreadable
from service.command_spec import spec_for_entry
from service.contract import (
    ApprovalTerms,
    CallContract,
    CallRequest,
    MaskingTerms,
    prepare_contract,
)
from service.errors import (
    CallBlocked,
    CatalogNotRunnable,
    CommandRefused,
    CommandSpecInvalid,
    LeaseUnavailable,
    PolicyDenied,
)
from service.identity import Principal
from service.leases import Lease
from service.masking import MASK_ALGORITHM
from service.policy import Action, approval_context, entry_entity
from service.problems import problem_code
from service.run_command import check_executable
from service.runtime import Runtime

_log = structlog.get_logger("govex.calls")


def take_lease(
    runtime: Runtime, contract: CallContract, principal: Principal, request: CallRequest
) -> tuple[Lease | None, CallContract]:
    """Hold the entry's lease before anything runs; the contract then names it.

    A full gate is a refusal like a policy deny: ledgered as ``call.denied``,
    raised as :class:`CallBlocked` (HTTP 429 with the lease's Retry-After).
    """
    terms = contract.lease
    if terms is None:
        return None, contract
    try:
        lease = runtime.leases.acquire(
            terms.scope,
            contract.call_id,
            max_concurrent=terms.max_concurrent,
            ttl=timedelta(milliseconds=terms.ttl_ms),
            now=runtime.clock(),
        )
    except LeaseUnavailable as exc:
        raise _refused(runtime, exc, contract, principal, request) from None
    held = terms.model_copy(
        update={"lease_id": lease.lease_id, "expires_at": format_ts(lease.expires_at)}
    )
    return lease, contract.model_copy(update={"lease": held})


def _refused(
    runtime: Runtime,
    exc: Exception,
    contract: CallContract,
    principal: Principal,
    request: CallRequest,
) -> CallBlocked:
    """Private: ledger a refusal of a call whose contract is built (:func:`_deny`)."""
    return _deny(
        runtime,
        exc,
        contract.call_id,
        principal,
        request,
        request_id=contract.request_id,
        contract=contract,
    )


def release_lease(runtime: Runtime, lease: Lease) -> None:
    """Give the lease back; a failure only delays the slot until the lease expires."""
    try:
        if not runtime.leases.release(lease):
            _log.warning("lease.reclaimed_before_release", scope=lease.scope)
    except LedgerError as exc:
        _log.warning("lease.release_failed", scope=lease.scope, error=type(exc).__name__)


def executable_problem(runtime: Runtime, contract: CallContract) -> Exception | None:
    """Why a command's executable fails its pin now, or None when it matches (or no command).

    Changed, missing and non-executable files are each a problem.
    """
    if contract.command is None:
        return None
    entry, _ = runtime.sealed.runnable_entry(contract.entry.id)
    if not isinstance(entry, CommandEntry):  # a command contract names a command entry
        return None
    try:
        check_executable(spec_for_entry(entry))
    except (CommandRefused, CommandSpecInvalid) as exc:
        return exc
    return None


def check_executable_pin(
    runtime: Runtime, contract: CallContract, principal: Principal, request: CallRequest
) -> None:
    """A command's executable must match its pin before the call starts.

    A changed, missing or non-executable file is a refusal (``call.denied``, then
    :class:`CallBlocked`): the call never starts. The runner checks the file again when it
    runs it; a change in between ends the started call as ``blocked``.
    """
    problem = executable_problem(runtime, contract)
    if problem is not None:
        raise _refused(runtime, problem, contract, principal, request)


def contract_or_blocked(
    runtime: Runtime,
    principal: Principal,
    request: CallRequest,
    call_id: str,
    request_id: str | None,
    inputs_from_text: bool,
) -> CallContract:
    try:
        contract = prepare_contract(
            runtime.sealed,
            principal,
            request,
            call_id=call_id,
            request_id=request_id,
            from_text=inputs_from_text,
        )
    except (CatalogError, CatalogNotRunnable, CommandRefused, CommandSpecInvalid) as exc:
        raise _deny(
            runtime, exc, call_id, principal, request, request_id=request_id, contract=None
        ) from exc
    entry, _ = runtime.sealed.runnable_entry(contract.entry.id)
    approval, terms = _approval(runtime, entry, contract)
    action = Action.dry_run if request.mode == "dry_run" else Action.call
    decision = runtime.policy.decide(
        principal,
        action,
        entry_entity(entry),
        {
            "mode": request.mode,
            "tenant_relation": contract.tenant_relation,
            "approval": approval_context(entry, terms.state if terms else None),
        },
    )
    contract = contract.model_copy(update={"approval": terms, "policy": decision.record()})
    if not decision.allowed:
        # Name the approval state that blocked it (or that was found) in the problem detail.
        why = "" if approval is None or approval.passes else f" ({approval.reason})"
        denied = PolicyDenied(
            f"policy denies {action.value} of {entry.id} for {principal.id}{why}",
            action=action.value,
            resource=entry.id,
            policies=decision.determining,
        )
        raise _deny(
            runtime, denied, call_id, principal, request, request_id=request_id, contract=contract
        ) from None
    return contract


def _approval(
    runtime: Runtime, entry: Entry, contract: CallContract
) -> tuple[ApprovalCheck | None, ApprovalTerms | None]:
    """Private: the approval state of a ``requires_approval`` call, at one reading of the clock.

    (None, None) for an entry that needs no approval. Failing to read the approvals is
    ``unknown``, which policy refuses (fail safe).
    """
    if not entry.requires_approval:
        return None, None
    now = runtime.clock()
    call = CallKey(
        entry_id=entry.id,
        entry_digest=contract.entry.entry_digest.sha256,
        inputs_digest=contract.inputs_digest.sha256,
        requester=contract.identity.id,
        tenant=contract.identity.tenant,
        tenant_relation=contract.tenant_relation,
    )
    try:
        found = runtime.approvals.find(call.entry_id, call.requester, call.inputs_digest)
    except Exception as exc:  # noqa: BLE001 - any failure to read approvals fails safe
        check = unreadable(str(getattr(exc, "message", type(exc).__name__)))
    else:
        check = check_approval(found, call, now)
    record = check.approval
    terms = ApprovalTerms(
        state=check.state.value if check.state is not None else "missing",
        approval_id=record.approval_id if record else None,
        approval_seq=record.seq if record else None,
        expires_at=format_ts(record.expires_at) if record else None,
        evaluated_at=format_ts(now),
    )
    return check, terms


def with_masking(runtime: Runtime, principal: Principal, contract: CallContract) -> CallContract:
    """Decide ``unmask`` for an entry with sensitive columns and name the outcome in the contract.

    A deny is no refusal: the call runs with those columns masked under the runtime's key.
    """
    entry, _ = runtime.sealed.runnable_entry(contract.entry.id)
    if not isinstance(entry, QueryEntry) or not entry.sensitive_columns:
        return contract
    approval = contract.approval.state if contract.approval is not None else None
    decision = runtime.policy.decide(
        principal,
        Action.unmask,
        entry_entity(entry),
        {
            "mode": contract.mode,
            "tenant_relation": contract.tenant_relation,
            "approval": approval_context(entry, approval),
        },
    )
    key = runtime.masking_key
    if key is None:  # build_runtime refuses to start so; never fall back to the values
        raise RuntimeError("an entry lists sensitive columns but the runtime has no masking key")
    terms = MaskingTerms(
        columns=entry.sensitive_columns,
        unmasked=decision.allowed,
        algorithm=None if decision.allowed else MASK_ALGORITHM,
        key_id=None if decision.allowed else key.key_id,
        policy=decision.record(),
    )
    return contract.model_copy(update={"masking": terms})


def _deny(
    runtime: Runtime,
    exc: Exception,
    call_id: str,
    principal: Principal,
    request: CallRequest,
    *,
    request_id: str | None,
    contract: CallContract | None,
) -> CallBlocked:
    """Ledger a refusal; only validated inputs (in a contract) are ever recorded."""
    known: dict[str, Any] = (
        contract.record()
        if contract is not None
        else {
            "call_id": call_id,
            "request_id": request_id,
            "entry_id": request.entry,
            "mode": request.mode,
            "identity": principal.model_dump(mode="json"),
            "parameters": sorted(request.params),
        }
    )
    body = {
        "call_id": call_id,
        "reason": str(exc),
        "code": problem_code(exc),
        "where": getattr(exc, "where", ""),
        "contract": known,
    }
    entry = runtime.ledger.append("call.denied", body, runtime.clock())
    return CallBlocked(exc, call_id=call_id, seq=entry.seq)
