"""Read paths (calls, packets, ledger) with their policy checks; no FastAPI here.

A read that policy denies raises :class:`PolicyDenied`; an unknown id raises
:class:`NotFound` whether or not the caller could have read it, so ids do not leak.
"""

from __future__ import annotations

from pathlib import Path

from catalog.ids import is_opaque_id
from ledger.entry import Entry as LedgerEntry
from service.call_index import CallRecord
from service.errors import NotFound, PolicyDenied
from service.identity import PLATFORM_TENANT, Principal
from service.policy import LEDGER_ENTITY, Action, entry_entity
from service.runtime import Runtime

MAX_LEDGER_PAGE = 1000


def call_record(runtime: Runtime, principal: Principal, call_id: str) -> CallRecord:
    """A call's record, for its own caller or for whoever may read the ledger."""
    record = runtime.calls.get(call_id) if is_opaque_id(call_id) else None
    if record is None:
        raise NotFound("call", call_id)
    if record.principal != principal.id:
        _require_ledger_reader(runtime, principal)
    return record


def packet_path(runtime: Runtime, principal: Principal, packet_id: str) -> Path:
    """The published zip of ``packet_id``, after policy ``read_packet`` allowed it."""
    record = runtime.calls.by_packet(packet_id) if is_opaque_id(packet_id) else None
    path = runtime.settings.packet_root / f"{packet_id}.zip"
    if record is None or not path.is_file():
        raise NotFound("packet", packet_id)
    entry, _ = runtime.sealed.runnable_entry(record.entry_id)
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
            f"policy denies read_packet of {packet_id} for {principal.id}",
            action=Action.read_packet.value,
            resource=packet_id,
            policies=decision.determining,
        )
    return path


def ledger_entries(
    runtime: Runtime, principal: Principal, start: int, limit: int
) -> tuple[int, list[LedgerEntry]]:
    """Ledger size and up to ``limit`` entries from ``start``, for ledger readers."""
    _require_ledger_reader(runtime, principal)
    size = runtime.ledger.size()
    return size, runtime.ledger.list_entries(start, min(limit, MAX_LEDGER_PAGE))


def _require_ledger_reader(runtime: Runtime, principal: Principal) -> None:
    decision = runtime.policy.decide(principal, Action.read_ledger, LEDGER_ENTITY, {})
    if not decision.allowed:
        raise PolicyDenied(
            f"policy denies read_ledger for {principal.id}",
            action=Action.read_ledger.value,
            resource="ledger",
            policies=decision.determining,
        )
