"""One call, end to end: contract, policy, ledger, run, packet (ARCHITECTURE "One request").

``execute`` is the single core path behind ``POST /v1/calls`` and ``govex call``;
it imports no FastAPI. Ordering guarantees:
- nothing touches a source before the contract, seal check and policy passed and
  ``call.started`` is durable;
- a refused call is ledgered (``call.denied``) with its reason, then raised as
  :class:`CallBlocked`;
- a packet becomes visible (renamed into the packet root) only after
  ``call.finished`` and ``packet.issued`` are durable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from catalog.digest import DigestSet
from catalog.errors import CatalogError
from catalog.model import QueryEntry
from ledger.entry import format_ts
from service.context import call_id_var
from service.contract import CallContract, CallRequest, prepare_contract
from service.errors import (
    CallBlocked,
    CatalogNotRunnable,
    PolicyDenied,
    QueryFailed,
    QueryTimedOut,
    SourceUnavailable,
)
from service.identity import Principal
from service.ids import new_ulid
from service.packets.build import PacketBuilder
from service.packets.manifest import Claim, LedgerRef, ServiceRef
from service.policy import Action, entry_entity
from service.problems import problem_code
from service.run_sql import SqlValue, run_query
from service.runtime import Runtime
from service.verdicts import Verdict


@dataclass(frozen=True)
class CallResult:
    """What a caller learns: the contract, the verdict and where the evidence is."""

    call_id: str
    contract: CallContract
    verdict: Verdict | None
    started_seq: int | None
    finished_seq: int | None
    packet_id: str | None
    packet_seq: int | None
    manifest_hash: DigestSet | None
    rows: int | None
    bytes: int | None
    complete: bool | None
    claim: Claim | None
    duration_ms: int | None
    error: str | None

    @property
    def exit_code(self) -> int:
        return self.verdict.exit_code if self.verdict else 0


def execute(
    runtime: Runtime,
    principal: Principal,
    request: CallRequest,
    *,
    request_id: str | None,
    inputs_from_text: bool = False,
) -> CallResult:
    """Run (or dry-run) ``request`` for ``principal`` under a Call Contract.

    Raises :class:`CallBlocked` for every refusal (unknown entry, seal mismatch,
    bad inputs, policy deny), after ledgering it. Engine failures and timeouts are
    not exceptions: they come back as a result with their verdict.
    ``inputs_from_text`` says the inputs are command-line strings, to be converted
    by the entry's parameter types.
    """
    call_id = new_ulid(runtime.clock())
    token = call_id_var.set(call_id)
    try:
        contract = _contract_or_blocked(
            runtime, principal, request, call_id, request_id, inputs_from_text
        )
        if contract.mode == "dry_run":
            return _result(call_id, contract)
        return _run(runtime, contract)
    finally:
        call_id_var.reset(token)


def _contract_or_blocked(
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
    except (CatalogError, CatalogNotRunnable) as exc:
        raise _deny(
            runtime, exc, call_id, principal, request, request_id=request_id, contract=None
        ) from exc
    entry, _ = runtime.sealed.runnable_entry(contract.entry.id)
    action = Action.dry_run if request.mode == "dry_run" else Action.call
    decision = runtime.policy.decide(
        principal,
        action,
        entry_entity(entry),
        {"mode": request.mode, "tenant_relation": contract.tenant_relation},
    )
    contract = contract.model_copy(update={"policy": decision.record()})
    if not decision.allowed:
        denied = PolicyDenied(
            f"policy denies {action.value} of {entry.id} for {principal.id}",
            action=action.value,
            resource=entry.id,
            policies=decision.determining,
        )
        raise _deny(
            runtime, denied, call_id, principal, request, request_id=request_id, contract=contract
        ) from None
    return contract


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


def _run(runtime: Runtime, contract: CallContract) -> CallResult:
    entry, _ = runtime.sealed.runnable_entry(contract.entry.id)
    if not isinstance(entry, QueryEntry):  # prepare_contract refuses commands; keep mypy honest
        raise CatalogNotRunnable(f"entry {entry.id} is not a query", where=entry.id)
    started_at = runtime.clock()
    started = runtime.ledger.append(
        "call.started", {"call_id": contract.call_id, "contract": contract.record()}, started_at
    )
    runtime.calls.insert(
        call_id=contract.call_id,
        entry_id=entry.id,
        principal=contract.identity.id,
        mode=contract.mode,
        state="running",
        started_seq=started.seq,
        created_at=format_ts(started_at),
    )
    packet_id = new_ulid(started_at)
    builder = PacketBuilder(runtime.settings.packet_root, packet_id)
    t0 = time.monotonic()
    verdict = Verdict.ran_clean
    error: str | None = None
    written = None
    cut_by_max_rows = False
    try:
        source = runtime.source_path(entry.source)
        with run_query(source, entry.sql, contract.inputs, contract.timeout_ms) as result:
            limited = _RowLimit(result.rows, contract.max_rows)
            written = builder.write_table(
                path=f"data/result.{contract.output_format}",
                fmt=contract.output_format,
                columns=result.columns,
                rows=limited,
                max_bytes=contract.max_bytes,
            )
            cut_by_max_rows = limited.cut
    except QueryTimedOut as exc:
        verdict, error = Verdict.timed_out, exc.message
    except (QueryFailed, SourceUnavailable) as exc:
        verdict, error = Verdict.error_running, exc.message
    duration_ms = int((time.monotonic() - t0) * 1000)

    if written is None or verdict is not Verdict.ran_clean:
        builder.discard()
        finished = runtime.ledger.append(
            "call.finished",
            {
                "call_id": contract.call_id,
                "verdict": verdict.value,
                "exit_code": verdict.exit_code,
                "result_digest": None,
                "rows": 0,
                "bytes": 0,
                "duration_ms": duration_ms,
                "error": error,
            },
            runtime.clock(),
        )
        runtime.calls.update(
            contract.call_id,
            state="failed",
            verdict=verdict.value,
            finished_seq=finished.seq,
            finished_at=format_ts(runtime.clock()),
        )
        return _result(
            contract.call_id,
            contract,
            verdict=verdict,
            started_seq=started.seq,
            finished_seq=finished.seq,
            duration_ms=duration_ms,
            error=error,
        )

    record = written.record
    complete = written.complete and not cut_by_max_rows
    claim = _claim_verdict(entry, rows=record.rows or 0, complete=complete)
    outcome: dict[str, Any] = {
        "verdict": verdict.value,
        "exit_code": verdict.exit_code,
        "rows": record.rows,
        "bytes": record.bytes,
        "complete": complete,
        "cut_by": None if complete else ("max_rows" if cut_by_max_rows else "max_bytes"),
        "duration_ms": duration_ms,
        "started_seq": started.seq,
    }
    staged = builder.finish(
        created_at=runtime.clock(),
        authority_status=contract.authority_status,
        catalog=contract.catalog,
        entry=contract.entry,
        contract={**contract.record(), "outcome": outcome},
        complete=complete,
        claim=claim,
        ledger=LedgerRef(origin=runtime.settings.origin, call_seq=started.seq),
        service=ServiceRef(
            version=runtime.build.version, module_sha256=runtime.build.module_sha256
        ),
    )
    finished = runtime.ledger.append(
        "call.finished",
        {
            "call_id": contract.call_id,
            "verdict": verdict.value,
            "exit_code": verdict.exit_code,
            "result_digest": record.digest.model_dump(),
            "rows": record.rows,
            "bytes": record.bytes,
            "duration_ms": duration_ms,
            "complete": complete,
        },
        runtime.clock(),
    )
    issued = runtime.ledger.append(
        "packet.issued",
        {
            "call_id": contract.call_id,
            "packet_id": packet_id,
            "manifest_hash": staged.manifest_hash.model_dump(),
        },
        runtime.clock(),
    )
    builder.publish(staged)
    runtime.calls.update(
        contract.call_id,
        state="completed",
        verdict=verdict.value,
        finished_seq=finished.seq,
        packet_id=packet_id,
        packet_seq=issued.seq,
        manifest_sha256=staged.manifest_hash.sha256,
        manifest_blake3=staged.manifest_hash.blake3,
        rows=record.rows,
        bytes=record.bytes,
        finished_at=format_ts(runtime.clock()),
    )
    return _result(
        contract.call_id,
        contract,
        verdict=verdict,
        started_seq=started.seq,
        finished_seq=finished.seq,
        packet_id=packet_id,
        packet_seq=issued.seq,
        manifest_hash=staged.manifest_hash,
        rows=record.rows,
        bytes=record.bytes,
        complete=complete,
        claim=claim,
        duration_ms=duration_ms,
    )


class _RowLimit(Iterator[tuple[SqlValue, ...]]):
    """Pass at most ``limit`` rows through, noting whether more were there."""

    def __init__(self, rows: Iterator[tuple[SqlValue, ...]], limit: int) -> None:
        self._rows = islice(rows, limit + 1)
        self._left = limit
        self.cut = False

    def __next__(self) -> tuple[SqlValue, ...]:
        row = next(self._rows)
        if self._left == 0:
            self.cut = True
            raise StopIteration
        self._left -= 1
        return row


def _claim_verdict(entry: QueryEntry, *, rows: int, complete: bool) -> Claim | None:
    """Rows found are evidence; zero rows prove absence only over a complete, exhaustive surface."""
    if entry.claim is None:
        return None
    if rows > 0:
        verdict = "EVIDENCE_PRESENT"
    elif complete and entry.claim.surface == "exhaustive":
        verdict = "ABSENT"
    else:
        verdict = "NOT_EVIDENCED"
    return Claim(expect=entry.claim.expect, surface=entry.claim.surface, verdict=verdict)


def _result(call_id: str, contract: CallContract, **values: Any) -> CallResult:  # noqa: ANN401
    fields: dict[str, Any] = dict.fromkeys(CallResult.__dataclass_fields__)
    fields.update(call_id=call_id, contract=contract, **values)
    return CallResult(**fields)
