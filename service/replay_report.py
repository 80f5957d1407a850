"""The replay report packet: a packet like any other, whose data is the report of a replay.

Built with the same :class:`~service.packets.build.PacketBuilder` as a call's packet, and
verifiable the same way (``govex packet verify``). Its payload is ``data/replay.jsonl``:
one JSON Lines row per replayed call (:class:`~service.replay_compare.ReplayLine`, columns
:data:`~service.replay_compare.REPORT_COLUMNS`), in ``call.started`` order. Its
``packet.json``:

- ``entry``: the built-in report definition :data:`REPORT_ENTRY_ID` (kind ``query``: a
  table), whose ``entry_digest`` is the digest of :func:`report_definition` (the report's
  format name and columns), the same for every replay of this format;
- ``catalog`` and ``authority_status``: the sealed catalog the calls were replayed under;
- ``contract``: mode ``replay``, the replay id, who replayed (principal record), the
  filters and the seq range, and the counts per outcome;
- ``ledger.call_seq``: the ``replay.started`` entry; the ``packet.issued`` entry that
  follows ``replay.finished`` names the packet and its manifest hash (``call_id`` is the
  replay id), so ``govex ledger prove --packet`` and the inclusion check work as for calls.

The call index names the report packet as it names a call's (:func:`index_report`, a row
of mode ``replay`` whose call id is the replay id), so the service serves it like any
other: ``GET /v1/packets/{id}``, its manifest and its proof, ledgered as reads. Whoever
may read the ledger may read it (policy ``read_ledger``, not ``read_packet``: its rows are
the ledger's calls, of every entry and caller).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalog.canonical import jcs
from catalog.digest import DigestSet, digest_bytes
from service.packets.manifest import CatalogRef, EntryRef, LedgerRef, ServiceRef
from service.replay_compare import REPORT_COLUMN_TYPES, REPORT_COLUMNS

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ledger.entry import Entry
    from service.call_index import CallRecord
    from service.identity import Principal
    from service.packets.build import PacketBuilder, StagedPacket
    from service.packets.tables import TableWritten
    from service.replay_compare import ReplayLine
    from service.runtime import Runtime

REPORT_FORMAT = "govex.replay-report/v1"
REPORT_ENTRY_ID = "govex.replay_report"
REPORT_PATH = "data/replay.jsonl"
REPORT_MODE = "replay"
"""The call index's ``mode`` of a replay's row (a call's is its contract's, ``run``)."""


def report_definition() -> dict[str, Any]:
    """What a replay report is: its format name and columns (hashed as its entry digest)."""
    return {"format": REPORT_FORMAT, "path": REPORT_PATH, "columns": list(REPORT_COLUMNS)}


def report_entry_digest() -> DigestSet:
    return digest_bytes(jcs(report_definition(), "replay report definition"))


def build_report(  # noqa: PLR0913 - the replay's whole record, keyword-only
    runtime: Runtime,
    builder: PacketBuilder,
    *,
    replay_id: str,
    principal: Principal,
    started_seq: int,
    scope: Mapping[str, Any],
    lines: Sequence[ReplayLine],
    counts: Mapping[str, int],
) -> tuple[StagedPacket, TableWritten]:
    """Write the report table into ``builder`` and stage the packet (not published).

    ``scope`` holds the filters and the seq range, as ``replay.started`` recorded them.
    """
    written = builder.write_table(
        path=REPORT_PATH,
        fmt="jsonl",
        columns=REPORT_COLUMNS,
        rows=(line.row() for line in lines),
        max_bytes=None,
        column_types=REPORT_COLUMN_TYPES,
    )
    sealed = runtime.sealed
    contract: dict[str, Any] = {
        "mode": "replay",
        "replay_id": replay_id,
        "identity": principal.model_dump(mode="json"),
        **dict(scope),
        "outcome": {"calls": len(lines), "counts": dict(counts)},
    }
    staged = builder.finish(
        created_at=runtime.clock(),
        authority_status=sealed.authority,
        catalog=CatalogRef(
            name=sealed.catalog.name, version=sealed.catalog.version, catalog_digest=sealed.digest
        ),
        entry=EntryRef(id=REPORT_ENTRY_ID, kind="query", entry_digest=report_entry_digest()),
        contract=contract,
        complete=True,
        claim=None,
        ledger=LedgerRef(origin=runtime.settings.origin, call_seq=started_seq),
        service=ServiceRef(
            version=runtime.build.version, module_sha256=runtime.build.module_sha256
        ),
    )
    return staged, written


def index_report(
    runtime: Runtime,
    *,
    replay_id: str,
    principal: Principal,
    entries: tuple[Entry, Entry, Entry],
    staged: StagedPacket,
    written: TableWritten,
    clean: bool,
) -> None:
    """Name the report packet in the call index, as a finished call's packet is named.

    ``entries`` are the replay's ``replay.started``, ``replay.finished`` and
    ``packet.issued``. The row's call id is the replay id (``packet.issued`` says so too,
    so the index can be rebuilt from the ledger), its entry :data:`REPORT_ENTRY_ID`, its
    verdict ``ran_clean`` when every replayed call ran clean and ``ran_with_drift``
    otherwise (``govex ledger replay``'s exit codes, 0 and 1). Called before the packet is
    published: once visible, the service finds it.
    """
    started, finished, issued = entries
    runtime.calls.insert(
        call_id=replay_id,
        entry_id=REPORT_ENTRY_ID,
        principal=principal.id,
        mode=REPORT_MODE,
        state="completed",
        verdict="ran_clean" if clean else "ran_with_drift",
        started_seq=started.seq,
        finished_seq=finished.seq,
        packet_id=staged.packet_id,
        packet_seq=issued.seq,
        manifest_sha256=staged.manifest_hash.sha256,
        manifest_blake3=staged.manifest_hash.blake3,
        rows=written.record.rows,
        bytes=written.record.bytes,
        created_at=started.ts,
        finished_at=finished.ts,
    )


def is_report(record: CallRecord) -> bool:
    """Whether a call index row is a replay's (its packet a replay report), not a call's."""
    return record.mode == REPORT_MODE
