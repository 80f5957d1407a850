"""One call, end to end: contract, policy, ledger, run, packet (ARCHITECTURE "One request").

``execute`` is the single core path behind ``POST /v1/calls`` and ``govex call``;
it imports no FastAPI. Ordering guarantees:
- nothing touches a source before every check of :mod:`service.call_gates`
  passed (contract, seal, inputs, approvals, policy, executable pin, lease) and
  ``call.started`` is durable;
- a refused call is ledgered (``call.denied``) with its reason, then raised as
  :class:`CallBlocked`;
- a packet becomes visible (renamed into the packet root) only after
  ``call.finished`` and ``packet.issued`` are durable and the call index says so.

Fail closed: an append that fails fails the call. When ``call.started`` cannot
be appended nothing runs; when ``call.finished`` or ``packet.issued`` (or the
call index) cannot be written, the staged packet is discarded, never published,
and the ledger error (:class:`~ledger.errors.LedgerUnavailable`, or
``LedgerStorageFull``) goes to the caller. A call whose ``call.started`` is
durable but whose run cannot go on is finished in the ledger as
``error_running`` when the ledger still takes it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from catalog.digest import DigestSet
from catalog.model import CommandEntry, Entry, QueryEntry
from ledger.entry import format_ts
from ledger.errors import LedgerError
from ledger.faults import crash_point
from service.call_gates import (
    check_executable_pin,
    contract_or_blocked,
    release_lease,
    take_lease,
    with_masking,
)
from service.call_index import CallIndex
from service.cancel import CallCancelled, CancelToken
from service.claims import RunFacts, judge_claim
from service.command_call import CommandOutcome, run_into_packet
from service.context import call_id_var
from service.contract import (
    CallContract,
    CallRequest,
)
from service.dry_run import DryRunReport, dry_run_report
from service.errors import (
    QueryFailed,
    QueryTimedOut,
    SourceUnavailable,
)
from service.identity import Principal
from service.ids import new_ulid
from service.leases import Lease
from service.masking import MASK_ALGORITHM, SensitiveColumnMissing, mask_positions, mask_rows
from service.packets.build import PacketBuilder, StagedPacket
from service.packets.errors import PacketBuildError
from service.packets.manifest import Claim, LedgerRef, ServiceRef
from service.packets.tables import (
    BlobWritten,
    EncodedRows,
    Progress,
    RowValue,
    TableFormat,
    TableWritten,
)
from service.progress import current_listener
from service.replay_compare import ledger_chunks
from service.run_postgres import ROW_SECURITY_REFUSED, is_exhaustive, run_postgres_query
from service.run_sql import QueryResult, run_query
from service.runtime import Runtime
from service.sources import PostgresSource, resolve_source
from service.verdicts import Verdict

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from service.packets.columns import ColumnType

_log = structlog.get_logger("govex.calls")
QUEUE_ALLOWANCE = timedelta(minutes=10)  # how long an accepted call may wait for a thread


@dataclass(frozen=True)
class CallResult:
    """What a caller learns: the contract, the verdict and where the evidence is."""

    call_id: str
    contract: CallContract
    verdict: Verdict | None = None  # None: a dry run, nothing ran
    started_seq: int | None = None
    finished_seq: int | None = None
    packet_id: str | None = None
    packet_seq: int | None = None
    manifest_hash: DigestSet | None = None
    rows: int | None = None
    bytes: int | None = None
    complete: bool | None = None
    claim: Claim | None = None
    duration_ms: int | None = None
    error: str | None = None
    dry_run: DryRunReport | None = None  # a dry run's checks and its call.dry_run seq

    @property
    def exit_code(self) -> int:
        """The verdict's exit code; a dry run's is ``blocked``'s when a run would not pass."""
        if self.dry_run is not None and not self.dry_run.would_run:
            return Verdict.blocked.exit_code
        return self.verdict.exit_code if self.verdict else 0


@dataclass(frozen=True)
class AcceptedCall:
    """A call past every check, its lease held and ``call.started`` durable; not run yet.

    The call index names it ``created`` until :func:`run_accepted` starts it, or
    ``running`` from the start when the thread that accepted it runs it next (``running``).
    """

    contract: CallContract
    lease: Lease | None
    started_seq: int
    started_at: datetime
    running: bool = False  # indexed "running" at once: run it now, in the accepting thread

    @property
    def call_id(self) -> str:
        return self.contract.call_id


def execute(
    runtime: Runtime,
    principal: Principal,
    request: CallRequest,
    *,
    request_id: str | None,
    inputs_from_text: bool = False,
) -> CallResult:
    """Run (or dry-run) ``request`` for ``principal`` under a Call Contract, to its end.

    :func:`accept`, then :func:`run_accepted` in this thread (``govex call``; the HTTP
    service runs accepted calls on its executor, ``service.call_executor``).
    """
    accepted = accept(
        runtime, principal, request, request_id=request_id, inputs_from_text=inputs_from_text
    )
    if isinstance(accepted, CallResult):
        return accepted
    return run_accepted(runtime, accepted)


def accept(  # noqa: PLR0913 - the call, who asks, and how it was asked
    runtime: Runtime,
    principal: Principal,
    request: CallRequest,
    *,
    request_id: str | None,
    inputs_from_text: bool = False,
    call_id: str | None = None,
    before_start: Callable[[str], None] | None = None,
    run_now: bool = False,
) -> AcceptedCall | CallResult:
    """Every check, the lease, ``call.started`` and the index row (``created``); nothing runs.

    A dry run ends here: its :class:`CallResult` (the report of every check) comes back.
    Raises :class:`CallBlocked` for every refusal (unknown entry, seal mismatch, bad
    inputs, policy deny, a value a command's argv refuses, a command's executable changed
    since the seal, lease unavailable), after ledgering it; and the ledger's errors when
    ``call.started`` or the index row cannot be written (then nothing holds the lease).
    ``inputs_from_text`` says the inputs are command-line strings, to be converted by the
    entry's parameter types. ``before_start(call_id)`` runs after every check passed, just before
    ``call.started``: what it raises (an idempotency key bound meanwhile) refuses the start,
    and the lease is given back. ``run_now`` says this thread runs the call next: its index
    row says ``running`` from the start (one write fewer), and its lease is fresh.
    """
    call_id = call_id or new_ulid(runtime.clock())
    token = call_id_var.set(call_id)
    try:
        contract = contract_or_blocked(
            runtime, principal, request, call_id, request_id, inputs_from_text
        )
        contract = with_masking(runtime, principal, contract)
        if contract.mode == "dry_run":
            return _dry_run(runtime, principal, contract)
        check_executable_pin(runtime, contract, principal, request)
        lease, contract = take_lease(runtime, contract, principal, request)
        try:
            if before_start is not None:
                before_start(call_id)
            return _start(runtime, contract, lease, running=run_now)
        except BaseException:
            if lease is not None:
                release_lease(runtime, lease)
            raise
    finally:
        call_id_var.reset(token)


def _start(
    runtime: Runtime, contract: CallContract, lease: Lease | None, *, running: bool
) -> AcceptedCall:
    """Append ``call.started`` with the call's index row (``created``, or ``running``); fail closed.

    Both commit together or not at all: an append error goes up, and nothing started.
    """
    entry, _ = runtime.sealed.runnable_entry(contract.entry.id)
    started_at = runtime.clock()
    deadline = started_at + timedelta(milliseconds=_deadline_ms(contract))
    row = {
        "call_id": contract.call_id,
        "entry_id": entry.id,
        "principal": contract.identity.id,
        "mode": contract.mode,
        "state": "running" if running else "created",
        "created_at": format_ts(started_at),
        # Waiting for a thread counts too: a call never started by then is interrupted.
        "deadline_at": format_ts(deadline if running else deadline + QUEUE_ALLOWANCE),
    }
    started = runtime.ledger.append(
        "call.started",
        {"call_id": contract.call_id, "contract": contract.record()},
        started_at,
        companion=CallIndex.insert_with(row, {"started_seq": 0}),
    )
    crash_point("call.accepted")
    return AcceptedCall(contract, lease, started.seq, started_at, running=running)


def _lease_still_held(runtime: Runtime, accepted: AcceptedCall, now: datetime) -> bool:
    """Renew the call's lease for its whole run from ``now``; False when it was reclaimed.

    The lease was taken at acceptance; a call that waited for a thread starts its run with
    a full TTL, or not at all when its lease expired and was reclaimed meanwhile.
    """
    lease, terms = accepted.lease, accepted.contract.lease
    if lease is None or terms is None:
        return True
    ttl = timedelta(milliseconds=terms.ttl_ms)
    return runtime.leases.renew(lease, ttl=ttl, now=now) is not None


def _deadline_ms(contract: CallContract) -> int:
    """When the run must have ended: its timeout, plus the lease's grace when it has one."""
    return contract.lease.ttl_ms if contract.lease is not None else contract.timeout_ms


def run_accepted(
    runtime: Runtime, accepted: AcceptedCall, cancel: CancelToken | None = None
) -> CallResult:
    """Run an accepted call to its end and release its lease; the index says ``running``.

    Engine failures, timeouts and a cancellation are not exceptions: they come back as a
    result with their verdict. A cancelled ``cancel`` stops the run at the next row (a
    query) or kills the process group (a command).
    """
    token = call_id_var.set(accepted.call_id)
    try:
        return _run(runtime, accepted, cancel if cancel is not None else CancelToken())
    finally:
        if accepted.lease is not None:
            release_lease(runtime, accepted.lease)
        call_id_var.reset(token)


def _dry_run(runtime: Runtime, principal: Principal, contract: CallContract) -> CallResult:
    """Report every check a run would meet and ledger it (``call.dry_run``); nothing runs."""
    report = dry_run_report(runtime, principal, contract)
    entry = runtime.ledger.append(
        "call.dry_run",
        {
            "call_id": contract.call_id,
            "contract": contract.record(),
            "would_run": report.would_run,
            "checks": report.record(),
        },
        runtime.clock(),
    )
    return CallResult(
        call_id=contract.call_id,
        contract=contract,
        dry_run=DryRunReport(checks=report.checks, seq=entry.seq),
    )


@dataclass(frozen=True)
class _Ran:
    """What running the entry gave: a verdict, and the result file when there is one.

    The result file is a query's rows, or a command's stdout (``command`` then says how the
    command ended; its stderr is a second data file of the packet).
    """

    verdict: Verdict
    duration_ms: int
    written: TableWritten | BlobWritten | None = None
    error: str | None = None
    command: CommandOutcome | None = None
    row_security: bool = False  # the engine refused: row security would filter rows
    engine_version: str | None = None  # the source engine's, as it ran (replays compare it)

    @property
    def complete(self) -> bool | None:
        """Whether no limit cut the result (``None`` without a result file)."""
        if self.written is None:
            return None
        return self.written.complete and (self.command is None or self.command.complete)


def _run(runtime: Runtime, accepted: AcceptedCall, cancel: CancelToken) -> CallResult:
    contract = accepted.contract
    entry, _ = runtime.sealed.runnable_entry(contract.entry.id)
    started = accepted
    if cancel.is_cancelled():
        not_run = _Ran(Verdict.error_running, 0, error=f"cancelled before it ran: {cancel.reason}")
        return _finish(runtime, contract, started.started_seq, not_run)
    if not accepted.running:  # else indexed running as it started, its lease just taken
        waited = _start_waiting(runtime, accepted)
        if waited is not None:
            return waited
    builder: PacketBuilder | None = None
    try:
        builder = PacketBuilder(runtime.settings.packet_root, new_ulid(started.started_at))
        ran = (
            _run_command(runtime, entry, contract, builder, cancel)
            if isinstance(entry, CommandEntry)
            else _run_query(runtime, entry, contract, builder, cancel)
        )
        staged = (
            None
            if cancel.is_cancelled()
            else _stage_packet(runtime, contract, entry, started.started_seq, builder, ran)
        )
    except BaseException:
        # Whatever broke, the call that started is finished in the ledger before the error goes on.
        if builder is not None:
            builder.discard()
        _abandon(runtime, contract, started.started_seq, "internal error")
        raise
    try:
        if staged is None:
            builder.discard()
            claim = _claim_verdict(entry, contract, ran, issued=False)
            return _finish(runtime, contract, started.started_seq, ran, claim=claim)
        packet, claim = staged
        return _finish(
            runtime, contract, started.started_seq, ran, packet=(packet, builder), claim=claim
        )
    except BaseException:
        # No call.finished, packet.issued or index row: the packet is never published.
        builder.discard()
        with contextlib.suppress(LedgerError):  # best effort: the index no longer says running
            runtime.calls.update(contract.call_id, state="failed")
        raise


def _start_waiting(runtime: Runtime, accepted: AcceptedCall) -> CallResult | None:
    """``created`` -> ``running`` for a call that waited for a thread; its result if it cannot run.

    It cannot when it waited past its deadline (a worker finished it as interrupted) or
    past its lease (the slot may be in use: it ends ``blocked``).
    """
    contract = accepted.contract
    now = runtime.clock()
    try:
        deadline = format_ts(now + timedelta(milliseconds=_deadline_ms(contract)))
        if not runtime.calls.start_running(contract.call_id, deadline):
            return CallResult(
                call_id=contract.call_id,
                contract=contract,
                verdict=Verdict.error_running,
                started_seq=accepted.started_seq,
                error="interrupted: not started before its deadline",
            )
        if not _lease_still_held(runtime, accepted, now):
            gone = _Ran(
                Verdict.blocked,
                0,
                error="not run: its lease expired while it waited for a thread, and the slot "
                "may be in use",
            )
            return _finish(runtime, contract, accepted.started_seq, gone)
    except LedgerError as exc:
        _abandon(runtime, contract, accepted.started_seq, f"not run: {exc.message}")
        raise
    return None


def _abandon(runtime: Runtime, contract: CallContract, started_seq: int, error: str) -> None:
    """Finish a started call as ``error_running`` if the ledger takes it; log when it does not.

    The caller raises its own error next, which must not be masked by this one.
    """
    try:
        _finish(runtime, contract, started_seq, _Ran(Verdict.error_running, 0, error=error))
    except Exception as exc:  # noqa: BLE001 - the caller's error is the one that goes up
        _log.warning(
            "call.unfinished",
            call_id=contract.call_id,
            started_seq=started_seq,
            error=type(exc).__name__,
            detail=str(getattr(exc, "message", "")),
        )


def _run_command(
    runtime: Runtime,
    entry: CommandEntry,
    contract: CallContract,
    builder: PacketBuilder,
    cancel: CancelToken,
) -> _Ran:
    """Run the command; stdout and stderr become the packet's data files (service.command_call)."""
    t0 = time.monotonic()
    run = run_into_packet(
        entry, contract.inputs, builder, base_env=runtime.command_env, cancel=cancel
    )
    elapsed = int((time.monotonic() - t0) * 1000)
    return _Ran(run.verdict, elapsed, written=run.stdout, error=run.error, command=run.outcome)


def _run_query(
    runtime: Runtime,
    entry: QueryEntry,
    contract: CallContract,
    builder: PacketBuilder,
    cancel: CancelToken,
) -> _Ran:
    """Stream the statement's rows into the packet; engine failures become verdicts.

    With no value to mask, a PostgreSQL source writes CSV and JSON Lines itself (COPY).
    The writer's progress goes to the call index and the context's listener
    (:mod:`service.progress`), and is where a cancellation stops rows the engine encoded.
    """
    t0 = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - t0) * 1000)

    try:
        source = resolve_source(runtime.settings.sources, entry)
        opened = (
            run_postgres_query(
                source,
                entry.sql,
                contract.inputs,
                contract.timeout_ms,
                exhaustive=is_exhaustive(entry),
                encode=_engine_format(contract),
            )
            if isinstance(source, PostgresSource)
            else run_query(
                source.path,
                entry.sql,
                contract.inputs,
                contract.timeout_ms,
                readers=runtime.sqlite_readers,
            )
        )
        path = f"data/result.{contract.output_format}"
        with opened as result:
            rows, descriptions, types = _masked(runtime, contract, result, cancel, path)
            written = builder.write_table(
                path=path,
                fmt=contract.output_format,
                columns=result.columns,
                rows=rows,
                max_bytes=contract.max_bytes,
                max_rows=contract.max_rows,
                descriptions=descriptions,
                column_types=types,
                progress=_progress(runtime, contract, cancel),
            )
            engine_version = result.engine_version
    except QueryTimedOut as exc:
        return _Ran(Verdict.timed_out, elapsed(), error=exc.message)
    except (QueryFailed, SourceUnavailable, PacketBuildError) as exc:
        refused = isinstance(exc, QueryFailed) and exc.where == ROW_SECURITY_REFUSED
        return _Ran(Verdict.error_running, elapsed(), error=exc.message, row_security=refused)
    except SensitiveColumnMissing as exc:
        return _Ran(Verdict.error_running, elapsed(), error=str(exc))
    except CallCancelled as exc:
        return _Ran(Verdict.error_running, elapsed(), error=f"cancelled: {exc.reason}")
    return _Ran(Verdict.ran_clean, elapsed(), written=written, engine_version=engine_version)


def _engine_format(contract: CallContract) -> TableFormat | None:
    """The format the engine may encode itself: CSV or JSON Lines with no value to mask."""
    masking = contract.masking
    if masking is not None and not masking.unmasked:
        return None
    return contract.output_format if contract.output_format in {"csv", "jsonl"} else None


def _progress(runtime: Runtime, contract: CallContract, cancel: CancelToken) -> Progress:
    """What the table writer calls with its progress (rate-limited by the writer)."""
    listener = current_listener()

    def report(rows: int, size: int) -> None:
        cancel.raise_if_cancelled()
        try:
            runtime.calls.progress(contract.call_id, rows=rows, size=size)
        except LedgerError as exc:  # progress is a convenience: the export goes on
            _log.warning("call.progress_unrecorded", call_id=contract.call_id, error=exc.message)
        if listener is not None:
            listener(rows, size)

    return report


def _masked(
    runtime: Runtime,
    contract: CallContract,
    result: QueryResult,
    cancel: CancelToken,
    path: str,
) -> tuple[
    Iterable[Sequence[RowValue]] | EncodedRows, dict[str, str], tuple[ColumnType | None, ...]
]:
    """The rows to write (sensitive values masked while streaming), descriptions and types.

    A masked column's values are text, whatever the engine's type for it was. Raises
    :class:`SensitiveColumnMissing` (before any row is read) when the result lacks a
    sensitive column: that call ends ``error_running``, nothing is written unmasked.
    """
    terms = contract.masking
    rows: Iterable[Sequence[RowValue]] | EncodedRows = (
        result.encoded if result.encoded is not None else cancel.guard(result.rows)
    )
    if terms is None:
        return rows, {}, result.column_types
    positions = mask_positions(result.columns, terms.columns)
    key = runtime.masking_key
    if terms.unmasked or key is None:  # no key: _with_masking refused already
        allowed_by = ", ".join(terms.policy["determining_policies"])
        unmasked = f"sensitive; not masked: policy allowed unmask ({allowed_by})"
        return rows, dict.fromkeys(terms.columns, unmasked), result.column_types
    if isinstance(rows, EncodedRows):  # _engine_format asked for none: never reached
        raise PacketBuildError(path=path, detail="rows to mask came encoded")
    masked = f"sensitive; masked: {MASK_ALGORITHM}:<hex> keyed digest, key id {key.key_id}"
    masked_rows = mask_rows(rows, positions, key, columns=result.columns, path=path)
    types = tuple(
        None if position in positions else kind for position, kind in enumerate(result.column_types)
    )
    return masked_rows, dict.fromkeys(terms.columns, masked), types


def _finish(
    runtime: Runtime,
    contract: CallContract,
    started_seq: int,
    ran: _Ran,
    *,
    packet: tuple[StagedPacket, PacketBuilder] | None = None,
    claim: Claim | None = None,
) -> CallResult:
    """Append ``call.finished`` (and ``packet.issued``), update the index, publish the packet.

    Any of these failing raises before the packet is published.
    """
    record = ran.written.record if ran.written else None
    complete = ran.complete
    command = {"command": ran.command.record()} if ran.command else {}  # commands only
    finished_body: dict[str, Any] = {
        "call_id": contract.call_id,
        "verdict": ran.verdict.value,
        "exit_code": ran.verdict.exit_code,
        "result_digest": record.digest.model_dump() if record else None,
        "rows": record.rows if record else 0,
        "bytes": record.bytes if record else 0,
        "duration_ms": ran.duration_ms,
        "complete": complete,
        "error": ran.error,
        "chunks": ledger_chunks(record) if record else None,  # replays locate drift by them
        "engine_version": ran.engine_version,
        "claim": claim.model_dump(mode="json") if claim is not None else None,
        **command,
    }
    staged, builder = packet if packet is not None else (None, None)
    appends: list[tuple[str, dict[str, Any], datetime]] = [
        ("call.finished", finished_body, runtime.clock())
    ]
    if staged is not None:
        issued_body = {
            "call_id": contract.call_id,
            "packet_id": staged.packet_id,
            "manifest_hash": staged.manifest_hash.model_dump(),
        }
        appends.append(("packet.issued", issued_body, runtime.clock()))
    row = {
        "state": "completed" if staged else "failed",
        "verdict": ran.verdict.value,
        "packet_id": staged.packet_id if staged else None,
        "manifest_sha256": staged.manifest_hash.sha256 if staged else None,
        "manifest_blake3": staged.manifest_hash.blake3 if staged else None,
        "rows": record.rows if record else None,
        "bytes": record.bytes if record else None,
        "finished_at": format_ts(runtime.clock()),
        "claim_verdict": claim.verdict if claim is not None else None,
        "claim_reason": claim.reason if claim is not None else None,
    }
    seqs = {"finished_seq": 0, "packet_seq": 1} if staged is not None else {"finished_seq": 0}
    if staged is None:
        row["packet_seq"] = None
    # One submission, one commit (one fsync): the entries and the index row that follows them.
    finished, *issued = runtime.ledger.append_many(
        appends, companion=CallIndex.update_with(contract.call_id, row, seqs)
    )
    issued_seq = issued[0].seq if issued else None
    crash_point("call.indexed")
    if staged is not None and builder is not None:
        # Visible only now that the entry issuing it is durable and the index names it.
        builder.publish(staged)
    crash_point("call.respond")
    return CallResult(
        call_id=contract.call_id,
        contract=contract,
        verdict=ran.verdict,
        started_seq=started_seq,
        finished_seq=finished.seq,
        packet_id=staged.packet_id if staged else None,
        packet_seq=issued_seq,
        manifest_hash=staged.manifest_hash if staged else None,
        rows=record.rows if record else None,
        bytes=record.bytes if record else None,
        complete=complete,
        claim=claim,
        duration_ms=ran.duration_ms,
        error=ran.error,
    )


def _stage_packet(
    runtime: Runtime,
    contract: CallContract,
    entry: Entry,
    started_seq: int,
    builder: PacketBuilder,
    ran: _Ran,
) -> tuple[StagedPacket, Claim | None] | None:
    """Stage the packet with the whole contract and its outcome; None when nothing to issue."""
    if ran.written is None:
        return None
    record, complete = ran.written.record, ran.complete is True
    claim = _claim_verdict(entry, contract, ran, issued=True)
    # A file cut exactly at max_rows rows was cut by the row limit; fewer means the byte limit.
    cut_by = None if complete else ("max_rows" if record.rows == contract.max_rows else "max_bytes")
    if ran.command is not None:
        cut_by = ran.command.cut_by
    outcome: dict[str, Any] = {
        "verdict": ran.verdict.value,
        "exit_code": ran.verdict.exit_code,
        "rows": record.rows,
        "bytes": record.bytes,
        "complete": complete,
        "cut_by": cut_by,
        "duration_ms": ran.duration_ms,
        "started_seq": started_seq,
    }
    if ran.command is not None:
        outcome["command"] = ran.command.record()
    staged = builder.finish(
        created_at=runtime.clock(),
        authority_status=contract.authority_status,
        catalog=contract.catalog,
        entry=contract.entry,
        contract={**contract.record(), "outcome": outcome},
        complete=complete,
        claim=claim,
        ledger=LedgerRef(origin=runtime.settings.origin, call_seq=started_seq),
        service=ServiceRef(
            version=runtime.build.version, module_sha256=runtime.build.module_sha256
        ),
        entry_title=entry.title,
    )
    return staged, claim


def _claim_verdict(
    entry: Entry, contract: CallContract, ran: _Ran, *, issued: bool
) -> Claim | None:
    """The verdict this run gives the entry's claim (:mod:`service.claims`); None without one.

    ``issued`` says a packet holds the result: without one, no row is evidence.
    """
    if not isinstance(entry, QueryEntry) or entry.claim is None:
        return None
    record = ran.written.record if issued and ran.written is not None else None
    facts = RunFacts(
        verdict=ran.verdict,
        rows=None if record is None else record.rows or 0,
        complete=ran.complete is True,
        engine=contract.boundary.engine,
        controls=contract.boundary.controls,
        row_security=ran.row_security,
    )
    return judge_claim(entry.claim, facts)
