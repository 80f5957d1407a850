"""Re-run one recorded call in mode ``replay`` and say what it found (a report line).

For a call the ledger recorded (:class:`~service.replay_plan.RecordedCall`), in order:

1. ``interrupted`` when it has no ``call.finished`` (a crash, or still running), or
   one the reaper wrote for a crashed worker: nothing runs, nothing to compare;
2. ``blocked``, drift ``catalog``, when its entry is no longer in the sealed catalog
   or its digest is not the one recorded: the recorded call cannot be run again;
3. the recorded inputs must match their recorded digest (``error_running`` if not),
   and still bind to the entry's parameters (``blocked`` if not);
4. policy action ``replay``, for the replaying principal (never the original caller),
   context ``mode: replay``, the tenant relation of the replaying principal to the
   recorded inputs, and the approval state the call ran under: a deny is ``blocked``,
   the determining policies named; nothing touches a source before this allows it;
5. the same masking as recorded: a masked call needs the same masking key (by key id),
   or its masked values could not compare (``blocked``);
6. the entry's lease, as a call would hold it (``blocked`` while it is full);
7. the run, under the recorded limits, timeout and output format, streamed into a
   scratch :class:`~service.packets.build.PacketBuilder` under the packet root's
   staging folder (digests and chunks as at export time), always discarded: no packet
   is published, no ``call.*`` entry appended, the call index untouched;
8. the comparison (:func:`service.replay_compare.judge`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from catalog.canonical import jcs
from catalog.digest import DigestSet, digest_bytes
from catalog.errors import CatalogError, InputErrors, UnknownEntry
from catalog.model import CommandEntry, QueryEntry
from catalog.params import bind_inputs
from service.command_call import run_into_packet
from service.errors import (
    CatalogNotRunnable,
    LeaseUnavailable,
    QueryTimedOut,
    ServiceError,
)
from service.identity import PLATFORM_TENANT, Principal
from service.ids import new_ulid
from service.masking import SensitiveColumnMissing, mask_positions, mask_rows
from service.packets.build import PacketBuilder
from service.packets.errors import PacketError
from service.packets.manifest import Chunk
from service.policy import Action, approval_context, entry_entity
from service.replay_compare import (
    Drift,
    Judgement,
    Outcome,
    ReplayLine,
    ResultFacts,
    judge,
)
from service.run_postgres import is_exhaustive, run_postgres_query
from service.run_sql import run_query
from service.sources import PostgresSource, resolve_source
from service.verdicts import Verdict

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    from catalog.model import Entry, JsonScalar
    from service.packets.columns import ColumnType
    from service.packets.tables import BlobWritten, EncodedRows, RowValue, TableWritten
    from service.replay_plan import RecordedCall
    from service.run_sql import QueryResult
    from service.runtime import Runtime


@dataclass(frozen=True)
class _Replayed:
    """Private: how the replay's run ended."""

    verdict: Verdict
    written: TableWritten | BlobWritten | None = None
    error: str | None = None
    engine_version: str | None = None
    duration_ms: int = 0


def replay_call(runtime: Runtime, principal: Principal, recorded: RecordedCall) -> ReplayLine:
    """Replay ``recorded`` for ``principal`` by the steps of the module docstring.

    Refusals and failures of the run are outcomes in the line, never exceptions; the
    ledger's and the disk's own errors (reading the entries, staging files) go up.
    """
    contract = _record(runtime.ledger.get(recorded.started_seq).body.get("contract"))
    finished = (
        None
        if recorded.finished_seq is None
        else dict(runtime.ledger.get(recorded.finished_seq).body)
    )
    line = _recorded_line(recorded, contract, finished or {})
    if finished is None:
        return _ended(line, Outcome.interrupted, None, _unfinished(runtime, recorded))
    error = finished.get("error")
    if isinstance(error, str) and error.startswith(_INTERRUPTED):
        why = f"finished at seq {recorded.finished_seq} without running to its end: {error}"
        return _ended(line, Outcome.interrupted, None, why)
    try:
        entry, digest = runtime.sealed.runnable_entry(recorded.entry_id)
    except (UnknownEntry, CatalogNotRunnable) as exc:
        why = f"catalog drift: {_message(exc)}; the recorded call cannot run again"
        return _ended(line, Outcome.blocked, Drift.catalog, why)
    line = line.model_copy(update={"sealed_entry_sha256": digest.sha256})
    stop = _refusal(runtime, principal, entry, digest, contract)
    if stop is not None:
        return _ended(line, *stop)
    inputs: dict[str, JsonScalar] = dict(_record(contract.get("inputs")))
    try:
        replayed = _with_lease(runtime, entry, contract, inputs)
    except LeaseUnavailable as exc:
        return _ended(line, Outcome.blocked, None, f"lease unavailable: {exc.message}")
    return _compared(line, finished, replayed)


_Stop = tuple[Outcome, Drift | None, str]
# How a call the reaper (service.call_reaper) or a late worker finished begins its error.
_INTERRUPTED = "interrupted:"


def _refusal(
    runtime: Runtime,
    principal: Principal,
    entry: Entry,
    digest: DigestSet,
    contract: Mapping[str, Any],
) -> _Stop | None:
    """Private: why the call may not run again now (steps 2 to 5); None when it may."""
    recorded_digest = _record(_record(contract.get("entry")).get("entry_digest"))
    if recorded_digest.get("sha256") != digest.sha256:
        why = (
            f"catalog drift: entry {entry.id} is sealed now as {digest.text('sha256')}, not "
            f"as recorded (sha256:{recorded_digest.get('sha256')})"
        )
        return Outcome.blocked, Drift.catalog, why
    refused = _inputs_refused(entry, contract)
    if refused is not None:
        return refused
    inputs = _record(contract.get("inputs"))
    denied = _policy_refusal(runtime, principal, entry, contract, inputs)
    if denied is not None:
        return Outcome.blocked, None, denied
    unmask_refusal = _masking_refusal(runtime, contract.get("masking"))
    if unmask_refusal is not None:
        return Outcome.blocked, None, unmask_refusal
    return None


def _record(value: Any) -> dict[str, Any]:  # noqa: ANN401 - a JSON value from the ledger
    """Private: ``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", exc))


def _recorded_line(
    recorded: RecordedCall, contract: Mapping[str, Any], finished: Mapping[str, Any]
) -> ReplayLine:
    """Private: the report line with what the ledger recorded; the outcome still open."""
    digest = _record(finished.get("result_digest"))
    entry_digest = _record(_record(contract.get("entry")).get("entry_digest"))
    verdict, rows, version = (
        finished.get("verdict"),
        finished.get("rows"),
        finished.get("engine_version"),
    )
    return ReplayLine(
        call_id=recorded.call_id,
        started_seq=recorded.started_seq,
        finished_seq=recorded.finished_seq,
        entry_id=recorded.entry_id,
        caller=recorded.caller,
        outcome=Outcome.interrupted,
        drift=None,
        reason="",
        recorded_verdict=verdict if isinstance(verdict, str) else None,
        recorded_entry_sha256=_text(entry_digest.get("sha256")),
        sealed_entry_sha256=None,
        recorded_sha256=_text(digest.get("sha256")),
        recorded_blake3=_text(digest.get("blake3")),
        recorded_rows=rows if type(rows) is int else None,
        recorded_engine_version=_text(version),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _ended(line: ReplayLine, outcome: Outcome, drift: Drift | None, reason: str) -> ReplayLine:
    return line.model_copy(update={"outcome": outcome, "drift": drift, "reason": reason})


def _unfinished(runtime: Runtime, recorded: RecordedCall) -> str:
    """Private: why a call has no ``call.finished``, with the call index's word as a hint."""
    why = f"started at seq {recorded.started_seq}, no call.finished in the ledger"
    record = runtime.calls.get(recorded.call_id)
    if record is not None and not record.done:
        why += (
            f" (the call index says {record.state} until {record.deadline_at}: running or crashed)"
        )
    return why


def _inputs_refused(entry: Entry, contract: Mapping[str, Any]) -> _Stop | None:
    """Private: the recorded inputs must hash to their recorded digest and bind to the entry."""
    inputs = _record(contract.get("inputs"))
    try:
        computed = digest_bytes(jcs(inputs, "inputs"))
    except CatalogError as exc:
        return Outcome.error_running, None, f"the recorded inputs do not encode: {exc}"
    recorded = _record(contract.get("inputs_digest"))
    if (computed.sha256, computed.blake3) != (recorded.get("sha256"), recorded.get("blake3")):
        why = "the recorded inputs do not hash to the recorded inputs_digest"
        return Outcome.error_running, None, why
    try:
        bind_inputs(entry, inputs, from_text=False)
    except InputErrors as exc:
        return Outcome.blocked, None, f"the recorded inputs no longer bind: {exc}"
    return None


def _relation(entry: Entry, principal: Principal, inputs: Mapping[str, JsonScalar]) -> str:
    """Private: the replaying principal's tenant relation to the recorded inputs."""
    if not entry.tenant_scoped or entry.tenant_param is None:
        return "unscoped"
    if principal.tenant == PLATFORM_TENANT:
        return "platform"
    return "own" if inputs.get(entry.tenant_param) == principal.tenant else "cross"


def _policy_refusal(
    runtime: Runtime,
    principal: Principal,
    entry: Entry,
    contract: Mapping[str, Any],
    inputs: Mapping[str, JsonScalar],
) -> str | None:
    """Private: why policy denies ``replay`` of this call to ``principal``; None when allowed."""
    approval = _record(contract.get("approval")).get("state")
    decision = runtime.policy.decide(
        principal,
        Action.replay,
        entry_entity(entry),
        {
            "mode": "replay",
            "tenant_relation": _relation(entry, principal, inputs),
            "approval": approval_context(entry, approval if isinstance(approval, str) else None),
        },
    )
    if decision.allowed:
        return None
    by = ", ".join(decision.determining) or "no permit matched"
    return f"policy denies replay of {entry.id} for {principal.id} ({by})"


def _masking_refusal(runtime: Runtime, masking: Any) -> str | None:  # noqa: ANN401 - JSON
    """Private: a masked call compares only under the same masking key."""
    terms = _record(masking)
    if not terms or terms.get("unmasked") is True:
        return None
    key = runtime.masking_key
    if key is None or key.key_id != terms.get("key_id"):
        now = "none" if key is None else key.key_id
        return (
            f"masking key changed (recorded key id {terms.get('key_id')}, now {now}): masked "
            "values could not be compared"
        )
    return None


def _with_lease(
    runtime: Runtime, entry: Entry, contract: Mapping[str, Any], inputs: dict[str, JsonScalar]
) -> _Replayed:
    """Private: the run, holding the entry's lease as a call would (raises LeaseUnavailable)."""
    holder = new_ulid(runtime.clock())
    if entry.lease is None:
        return _scratch_run(runtime, entry, contract, inputs, holder)
    scope = _record(contract.get("lease")).get("scope")
    lease = runtime.leases.acquire(
        scope if isinstance(scope, str) else entry.id,
        holder,
        max_concurrent=entry.lease.max_concurrent,
        ttl=timedelta(milliseconds=entry.timeout_ms + entry.lease.grace_ms),
        now=runtime.clock(),
    )
    try:
        return _scratch_run(runtime, entry, contract, inputs, holder)
    finally:
        runtime.leases.release(lease)


def _scratch_run(
    runtime: Runtime,
    entry: Entry,
    contract: Mapping[str, Any],
    inputs: dict[str, JsonScalar],
    scratch_id: str,
) -> _Replayed:
    """Private: run into a scratch builder that is always discarded."""
    t0 = time.monotonic()
    # Never published: leaving the block discards everything staged (PacketBuilder.__exit__).
    with PacketBuilder(runtime.settings.packet_root, scratch_id) as builder:
        if isinstance(entry, CommandEntry):
            run = run_into_packet(entry, inputs, builder, base_env=runtime.command_env)
            replayed = _Replayed(run.verdict, written=run.stdout, error=run.error)
        else:
            replayed = _run_query(runtime, entry, contract, inputs, builder)
    return replace(replayed, duration_ms=int((time.monotonic() - t0) * 1000))


def _run_query(
    runtime: Runtime,
    entry: QueryEntry,
    contract: Mapping[str, Any],
    inputs: dict[str, JsonScalar],
    builder: PacketBuilder,
) -> _Replayed:
    """Private: the statement's rows, masked as recorded, into the scratch table."""
    fmt = contract.get("output_format", "jsonl")
    if fmt not in {"jsonl", "csv", "parquet"}:
        return _Replayed(Verdict.error_running, error=f"recorded output format {fmt!r} unknown")
    max_rows, max_bytes = contract.get("max_rows"), contract.get("max_bytes")
    timeout_ms = contract.get("timeout_ms", entry.timeout_ms)
    masking = _record(contract.get("masking"))
    masked = bool(masking) and masking.get("unmasked") is not True
    try:
        source = resolve_source(runtime.settings.sources, entry)
        opened = (
            run_postgres_query(
                source,
                entry.sql,
                inputs,
                timeout_ms,
                exhaustive=is_exhaustive(entry),
                encode=fmt if fmt in {"csv", "jsonl"} and not masked else None,
            )
            if isinstance(source, PostgresSource)
            else run_query(source.path, entry.sql, inputs, timeout_ms)
        )
        path = f"data/result.{fmt}"
        with opened as result:
            rows, types = _rows(runtime, result, entry, path, masked=masked)
            written = builder.write_table(
                path=path,
                fmt=fmt,
                columns=result.columns,
                rows=rows,
                max_bytes=max_bytes,
                max_rows=max_rows,
                column_types=types,
            )
            version = result.engine_version
    except QueryTimedOut as exc:
        return _Replayed(Verdict.timed_out, error=exc.message)
    except ServiceError as exc:  # QueryFailed, SourceUnavailable, ...
        return _Replayed(Verdict.error_running, error=exc.message)
    except (PacketError, SensitiveColumnMissing, OSError) as exc:
        return _Replayed(Verdict.error_running, error=_message(exc))
    return _Replayed(Verdict.ran_clean, written=written, engine_version=version)


def _rows(
    runtime: Runtime, result: QueryResult, entry: QueryEntry, path: str, *, masked: bool
) -> tuple[Iterable[Sequence[RowValue]] | EncodedRows, Sequence[ColumnType | None]]:
    """Private: the rows to write, masked as the call masked them, and their column types."""
    rows: Iterable[Sequence[RowValue]] | EncodedRows = (
        result.encoded if result.encoded is not None else result.rows
    )
    key = runtime.masking_key
    if not masked or key is None or result.encoded is not None:
        return rows, result.column_types
    positions = mask_positions(result.columns, entry.sensitive_columns)
    masked_rows: Iterator[list[RowValue]] = mask_rows(
        result.rows, positions, key, columns=result.columns, path=path
    )
    types = tuple(
        None if position in positions else kind for position, kind in enumerate(result.column_types)
    )
    return masked_rows, types


def _compared(line: ReplayLine, finished: Mapping[str, Any], replayed: _Replayed) -> ReplayLine:
    """Private: the line with the replay's result and the judgement."""
    recorded = ResultFacts(
        verdict=str(finished.get("verdict")),
        digest=_digest(finished.get("result_digest")),
        rows=line.recorded_rows,
        chunks=_chunks(finished.get("chunks")),
        engine_version=line.recorded_engine_version,
        error=_text(finished.get("error")),
    )
    record = replayed.written.record if replayed.written is not None else None
    now = ResultFacts(
        verdict=replayed.verdict.value,
        digest=record.digest if record is not None else None,
        rows=record.rows if record is not None else None,
        chunks=record.chunks if record is not None else None,
        engine_version=replayed.engine_version,
        error=replayed.error,
    )
    judged: Judgement = judge(recorded, now)
    difference = judged.difference
    return line.model_copy(
        update={
            "outcome": judged.outcome,
            "drift": judged.drift,
            "reason": judged.reason,
            "replay_sha256": record.digest.sha256 if record is not None else None,
            "replay_blake3": record.digest.blake3 if record is not None else None,
            "replay_rows": now.rows,
            "replay_engine_version": replayed.engine_version,
            "replay_duration_ms": replayed.duration_ms,
            "diff_chunk": difference.chunk if difference else None,
            "diff_offset": difference.offset if difference else None,
            "diff_bytes": difference.bytes if difference else None,
            "diff_first_row": difference.first_row if difference else None,
            "diff_rows": difference.rows if difference else None,
        }
    )


def _digest(value: Any) -> DigestSet | None:  # noqa: ANN401 - JSON from the ledger
    try:
        return DigestSet.model_validate(value) if isinstance(value, dict) else None
    except ValueError:
        return None


def _chunks(value: Any) -> tuple[Chunk, ...] | None:  # noqa: ANN401 - JSON from the ledger
    """Private: the chunks ``call.finished`` recorded; None when it recorded none."""
    if not isinstance(value, list):
        return None
    try:
        return tuple(Chunk.model_validate(item) for item in value)
    except ValueError:
        return None
