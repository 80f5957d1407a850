"""A dry run: every check a run of the call would meet, evaluated one by one; nothing runs.

The dry run itself must be allowed first: its contract builds (entry, seal, inputs,
tenant) and policy allows ``dry_run`` (:func:`service.call_gates.contract_or_blocked`,
refusals ledgered as for a run). Then each check a *run* meets is evaluated on its
own, so one failing check never hides the next: the approval, the ``call`` policy
decision, masking, a command's executable pin and lease availability. No source is
touched and no lease is taken. The report goes back with the would-be contract and is
ledgered as ``call.dry_run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.entry import GateCheckBody
from service.call_gates import executable_problem
from service.policy import Action, approval_context, entry_entity
from service.problems import problem_code

if TYPE_CHECKING:
    from catalog.model import Entry
    from service.contract import (
        ApprovalTerms,
        CallContract,
        CommandTerms,
        LeaseTerms,
        MaskingTerms,
    )
    from service.identity import Principal
    from service.runtime import Runtime

GateCheck = GateCheckBody
_PASSING_APPROVALS = frozenset({"valid", "near_expiry"})


@dataclass(frozen=True)
class DryRunReport:
    """Every check in the order a run meets them, and whether a run would get past all."""

    checks: tuple[GateCheck, ...]
    seq: int | None = None  # the call.dry_run entry, once ledgered

    @property
    def would_run(self) -> bool:
        return all(check.passed for check in self.checks)

    def record(self) -> list[dict[str, object]]:
        return [check.model_dump(mode="json") for check in self.checks]


def dry_run_report(runtime: Runtime, principal: Principal, contract: CallContract) -> DryRunReport:
    """Evaluate each check a run of ``contract`` would meet; read-only, raises nothing of its own.

    A failure to read the leases or the executable is reported as that check failing.
    """
    entry, _ = runtime.sealed.runnable_entry(contract.entry.id)
    checks = [
        GateCheck(
            check="entry",
            passed=True,
            detail=f"{entry.id} ({entry.kind}) matches the seal "
            f"(entry sha256 {contract.entry.entry_digest.sha256})",
            code=None,
        ),
        _inputs(contract),
    ]
    if contract.approval is not None:
        checks.append(_approval(contract.approval))
    checks.append(_policy(runtime, principal, entry, contract))
    if contract.masking is not None:
        checks.append(_masking(contract.masking))
    if contract.command is not None:
        checks.append(_executable(runtime, contract, contract.command))
    if contract.lease is not None:
        checks.append(_lease(runtime, contract.lease))
    return DryRunReport(checks=tuple(checks))


def _inputs(contract: CallContract) -> GateCheck:
    names = ", ".join(sorted(contract.inputs)) or "none"
    return GateCheck(
        check="inputs",
        passed=True,
        detail=f"valid against the entry's parameters ({names}); tenant relation "
        f"{contract.tenant_relation}",
        code=None,
    )


def _approval(terms: ApprovalTerms) -> GateCheck:
    passed = terms.state in _PASSING_APPROVALS
    held = f" ({terms.approval_id}, expires {terms.expires_at})" if terms.approval_id else ""
    return GateCheck(
        check="approval",
        passed=passed,
        detail=f"{terms.state}{held} at {terms.evaluated_at}; only valid or near_expiry pass",
        code=None if passed else "policy_denied",
    )


def _policy(
    runtime: Runtime, principal: Principal, entry: Entry, contract: CallContract
) -> GateCheck:
    """The ``call`` decision a run would get (the dry run itself was allowed as ``dry_run``)."""
    state = contract.approval.state if contract.approval is not None else None
    decision = runtime.policy.decide(
        principal,
        Action.call,
        entry_entity(entry),
        {
            "mode": "run",
            "tenant_relation": contract.tenant_relation,
            "approval": approval_context(entry, state),
        },
    )
    by = ", ".join(decision.determining) or "no policy (deny by default)"
    verb = "allows" if decision.allowed else "denies"
    return GateCheck(
        check="policy",
        passed=decision.allowed,
        detail=f"policy {verb} call of {entry.id} for {principal.id} ({by})",
        code=None if decision.allowed else "policy_denied",
    )


def _masking(terms: MaskingTerms) -> GateCheck:
    columns = ", ".join(terms.columns)
    how = (
        "unmasked: policy allows unmask"
        if terms.unmasked
        else f"masked ({terms.algorithm}, key id {terms.key_id})"
    )
    return GateCheck(check="masking", passed=True, detail=f"{columns}: {how}", code=None)


def _executable(runtime: Runtime, contract: CallContract, command: CommandTerms) -> GateCheck:
    problem = executable_problem(runtime, contract)
    if problem is None:
        return GateCheck(
            check="executable",
            passed=True,
            detail=f"{command.argv[0]} matches its pin (sha256 {command.executable_sha256})",
            code=None,
        )
    return GateCheck(
        check="executable", passed=False, detail=str(problem), code=problem_code(problem)
    )


def _lease(runtime: Runtime, terms: LeaseTerms) -> GateCheck:
    try:
        refusal = runtime.leases.check(
            terms.scope, max_concurrent=terms.max_concurrent, now=runtime.clock()
        )
    except Exception as exc:  # noqa: BLE001 - unreadable leases: reported, a run would fail too
        return GateCheck(
            check="lease",
            passed=False,
            detail=f"leases unreadable: {getattr(exc, 'message', type(exc).__name__)}",
            code=problem_code(exc),
        )
    if refusal is None:
        return GateCheck(
            check="lease",
            passed=True,
            detail=f"a run slot of {terms.scope} is free (max_concurrent "
            f"{terms.max_concurrent}); a dry run takes none",
            code=None,
        )
    return GateCheck(check="lease", passed=False, detail=str(refusal), code=problem_code(refusal))
