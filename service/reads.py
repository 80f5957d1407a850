"""Read paths (calls, packets, ledger) with their policy checks; no FastAPI here.

A read that policy denies raises :class:`PolicyDenied`; an unknown id raises
:class:`NotFound` whether or not the caller could have read it, so ids do not leak.
Reads of evidence (ledger pages, proofs, packets, other principals' calls; not the
checkpoint) are ledgered as ``access.read`` once policy allowed them
(:mod:`service.read_audit`).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

from catalog.digest import DigestSet
from catalog.errors import UnknownEntry
from catalog.ids import is_opaque_id
from ledger.entry import Entry as LedgerEntry
from ledger.store import StoredCheckpoint
from service import proofs
from service.call_index import CallQuery, CallRecord
from service.errors import NotFound, PacketRemoved, PolicyDenied
from service.identity import PLATFORM_TENANT, Principal
from service.policy import Action, entry_entity, require_ledger_reader
from service.proofs import InclusionProof
from service.read_audit import Read, record_read
from service.replay_report import is_report
from service.retention import removed_seq
from service.runtime import Runtime

MAX_LEDGER_PAGE = 1000
MAX_SEQ = 2**53 - 1
"""The largest seq or tree size a request may name: a ledger entry is JCS, whose integers end
there, so no ledger reaches it, and a read's ``access.read`` entry can record what was asked."""


def call_record(
    runtime: Runtime, principal: Principal, call_id: str, *, read: Read = "call.status"
) -> CallRecord:
    """A call's record, for its own caller or for whoever may read the ledger.

    Another principal's call is a read of what the ledger recorded: ``access.read``
    (``read``: ``call.status`` or ``call.events``). One's own call is not recorded.
    """
    record = runtime.calls.get(call_id) if is_opaque_id(call_id) else None
    if record is None:
        raise NotFound("call", call_id)
    if record.principal != principal.id:
        _require_ledger_reader(runtime, principal)
        target = {"call_id": record.call_id, "principal": record.principal}
        record_read(runtime, principal, read, target=target)
    return record


def list_calls(runtime: Runtime, principal: Principal, query: CallQuery) -> list[CallRecord]:
    """Calls matching ``query``: one's own; anyone's for whoever may read the ledger.

    A principal who may not read the ledger and names no principal sees their own calls;
    naming another is a :class:`PolicyDenied`. A list that may hold other principals'
    calls is ledgered (``access.read``, ``call.list``: the filters and the count).
    """
    if query.principal == principal.id:
        return runtime.calls.search(query)
    try:
        _require_ledger_reader(runtime, principal)
    except PolicyDenied:
        if query.principal is not None:
            raise
        return runtime.calls.search(replace(query, principal=principal.id))
    found = runtime.calls.search(query)
    filters = {k: v for k, v in asdict(query).items() if v is not None}
    record_read(runtime, principal, "call.list", target={**filters, "returned": len(found)})
    return found


def packet_path(
    runtime: Runtime,
    principal: Principal,
    packet_id: str,
    *,
    read: Read = "packet.zip",
) -> Path:
    """The published zip of ``packet_id``, after policy ``read_packet`` allowed it.

    Raises :class:`PacketRemoved` (its ``packet.removed`` seq) once retention removed it.
    ``read`` names what is read of it (``packet.zip``, ``packet.manifest``) in its
    ``access.read`` entry.
    """
    record, path = _readable_packet(runtime, principal, packet_id)
    _record_packet_read(runtime, principal, read, record)
    return path


def packet_proof(runtime: Runtime, principal: Principal, packet_id: str) -> InclusionProof:
    """The inclusion proof of the ``packet.issued`` entry of ``packet_id`` (latest checkpoint).

    For whoever may read the packet; the checkpoint is made on demand. A packet removed by
    retention still has its proof: the entry stays.
    """
    record, _ = _readable_packet(runtime, principal, packet_id, removed_ok=True)
    if record.packet_seq is None:  # pragma: no cover - a published packet has its entry
        raise NotFound("packet", packet_id)
    # Proven first, recorded after: the proof is against the checkpoint the reader may
    # already hold, not one that its own access.read entry made the ledger outgrow.
    proof = proofs.inclusion_proof(runtime, record.packet_seq)
    _record_packet_read(runtime, principal, "packet.proof", record)
    return proof


def _record_packet_read(
    runtime: Runtime, principal: Principal, read: Read, record: CallRecord
) -> None:
    """Private: ledger a read of the packet of ``record``, with the manifest hash it was issued."""
    issued = (
        DigestSet(sha256=record.manifest_sha256, blake3=record.manifest_blake3)
        if record.manifest_sha256 and record.manifest_blake3
        else None
    )
    record_read(
        runtime,
        principal,
        read,
        target={"call_id": record.call_id, "packet_seq": record.packet_seq},
        packet_id=record.packet_id,
        manifest_hash=issued,
    )


def _readable_packet(
    runtime: Runtime, principal: Principal, packet_id: str, *, removed_ok: bool = False
) -> tuple[CallRecord, Path]:
    """Private: the index record and zip of a published packet that ``principal`` may read.

    A packet retention removed raises :class:`PacketRemoved` after the policy check, unless
    ``removed_ok`` (then the path returned does not exist). A replay's report packet is
    for ledger readers (policy ``read_ledger``); a call's, policy ``read_packet`` decides.
    """
    record = runtime.calls.by_packet(packet_id) if is_opaque_id(packet_id) else None
    path = runtime.settings.packet_root / f"{packet_id}.zip"
    if record is None:
        raise NotFound("packet", packet_id)
    removal = None if path.is_file() else removed_seq(runtime.settings.packet_root, packet_id)
    if removal is None and not path.is_file():
        raise NotFound("packet", packet_id)
    if is_report(record):  # a replay's report: its rows are the ledger's calls
        _require_ledger_reader(runtime, principal)
    else:
        _require_packet_reader(runtime, principal, record)
    if removal is not None and not removed_ok:
        raise PacketRemoved(packet_id, seq=removal)
    return record, path


def _require_packet_reader(runtime: Runtime, principal: Principal, record: CallRecord) -> None:
    """Private: policy ``read_packet`` of the packet of the call ``record``, on its entry.

    An entry that left the catalog since took with it the attributes policy reads: its
    packets stay readable by those who may read the ledger (``read_ledger``), by no one else.
    """
    try:
        entry, _ = runtime.sealed.runnable_entry(record.entry_id)
    except UnknownEntry:
        _require_ledger_reader(runtime, principal)
        return
    owner = record.principal == principal.id
    relation = "platform" if principal.tenant == PLATFORM_TENANT else "own"
    decision = runtime.policy.decide(
        principal,
        Action.read_packet,
        entry_entity(entry),
        {"owner": owner, "tenant_relation": relation},
    )
    if not decision.allowed:
        raise PolicyDenied(
            f"policy denies read_packet of {record.packet_id} for {principal.id}",
            action=Action.read_packet.value,
            resource=record.packet_id or record.call_id,
            policies=decision.determining,
        )


def ledger_entries(
    runtime: Runtime, principal: Principal, start: int, limit: int
) -> tuple[int, list[LedgerEntry]]:
    """Ledger size and up to ``limit`` entries from ``start``, for ledger readers."""
    _require_ledger_reader(runtime, principal)
    page = min(limit, MAX_LEDGER_PAGE)
    record_read(runtime, principal, "ledger.entries", target={"start": start, "limit": page})
    size = runtime.ledger.size()
    return size, runtime.ledger.list_entries(start, page)


def ledger_checkpoint(runtime: Runtime, principal: Principal) -> StoredCheckpoint:
    """The latest checkpoint (signed first when the ledger grew), for ledger readers.

    Not ledgered (:mod:`service.read_audit` says why): a checkpoint must stay the same for
    every reader until the ledger grows.
    """
    _require_ledger_reader(runtime, principal)
    return proofs.latest_checkpoint(runtime)


def ledger_inclusion_proof(
    runtime: Runtime, principal: Principal, seq: int, size: int | None
) -> InclusionProof:
    """Entry ``seq`` in the checkpoint of ``size`` (the latest when None), for ledger readers."""
    _require_ledger_reader(runtime, principal)
    proof = proofs.inclusion_proof(runtime, seq, size)  # then recorded, as packet_proof says
    record_read(runtime, principal, "ledger.inclusion_proof", target={"seq": seq, "size": size})
    return proof


def ledger_consistency_proof(
    runtime: Runtime, principal: Principal, old: int, new: int
) -> list[bytes]:
    """The proof that the tree of ``new`` entries extends that of ``old``, for ledger readers."""
    _require_ledger_reader(runtime, principal)
    proof = proofs.consistency_proof(runtime, old, new)
    record_read(runtime, principal, "ledger.consistency_proof", target={"old": old, "new": new})
    return proof


def _require_ledger_reader(runtime: Runtime, principal: Principal) -> None:
    require_ledger_reader(runtime.policy, principal)
