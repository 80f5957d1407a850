"""What the packet pages show: the packets one may see, and one packet's manifest and proof.

The list is the call index's (calls with a packet), visible as calls are. A packet page
reads ``packet.json`` through :func:`service.reads.packet_path` (policy ``read_packet``,
ledgered as ``access.read`` ``packet.manifest``), as ``GET /v1/packets/{id}/manifest``
does; the zip and the proof downloads are ledgered reads too (``packet.zip``,
``packet.proof``). The page gives the exact ``govex packet verify`` command that checks
the downloaded zip offline against what the service recorded.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from catalog.authority import AuthorityStatus
from catalog.digest import DigestSet
from service import reads
from service.call_index import CallQuery
from service.console.view_calls import PAGE, may_read_ledger
from service.packets.manifest import PacketManifest
from service.packets.readers import ZipPacketReader

if TYPE_CHECKING:
    from service.call_index import CallRecord
    from service.identity import Principal
    from service.runtime import Runtime

MANIFEST = "packet.json"


@dataclass(frozen=True)
class PacketsPage:
    packets: tuple[CallRecord, ...]
    next_before: str | None
    own_only: bool


@dataclass(frozen=True)
class PacketView:
    packet_id: str
    record: CallRecord
    manifest: PacketManifest | None  # None: packet.json does not parse as a govex manifest
    manifest_json: dict[str, Any]
    issued_hash: DigestSet | None  # as recorded when the packet was issued
    verify_command: str
    notes: tuple[str, ...]  # what the command leaves out, and why
    proof_available: bool
    zip_name: str
    proof_name: str


def packets_page(runtime: Runtime, principal: Principal, before: str) -> PacketsPage:
    """Completed calls with a packet, newest first (a page of calls, so maybe fewer packets)."""
    records = reads.list_calls(
        runtime, principal, CallQuery(state="completed", before=before or None, limit=PAGE)
    )
    return PacketsPage(
        packets=tuple(r for r in records if r.packet_id),
        next_before=records[-1].call_id if len(records) == PAGE else None,
        own_only=not may_read_ledger(runtime, principal),
    )


def packet_view(runtime: Runtime, principal: Principal, packet_id: str) -> PacketView:
    """The packet's manifest (a ledgered read) and how to verify it.

    Raises ``NotFound``, ``PolicyDenied`` or ``PacketRemoved`` as the API does.
    """
    path = reads.packet_path(runtime, principal, packet_id, read="packet.manifest")
    record = runtime.calls.by_packet(packet_id)
    if record is None:  # pragma: no cover - packet_path found it
        raise LookupError(packet_id)
    with ZipPacketReader(path) as reader:
        data = reader.read(MANIFEST)
    try:
        manifest: PacketManifest | None = PacketManifest.model_validate_json(data)
    except ValidationError:
        manifest = None
    issued = (
        DigestSet(sha256=record.manifest_sha256, blake3=record.manifest_blake3)
        if record.manifest_sha256 and record.manifest_blake3
        else None
    )
    command, notes = verify_command(runtime, packet_id, manifest, issued)
    return PacketView(
        packet_id=packet_id,
        record=record,
        manifest=manifest,
        manifest_json=json.loads(data),
        issued_hash=issued,
        verify_command=command,
        notes=notes,
        proof_available=runtime.checkpointer is not None and record.packet_seq is not None,
        zip_name=f"{packet_id}.zip",
        proof_name=f"{packet_id}.tlog-proof",
    )


def verify_command(
    runtime: Runtime,
    packet_id: str,
    manifest: PacketManifest | None,
    issued: DigestSet | None,
) -> tuple[str, tuple[str, ...]]:
    """``govex packet verify`` with every pin the service can give, and notes on the rest.

    Pins the manifest hash recorded at issue (not one computed from the file), the catalog
    the service serves (when the packet was made under it), the packet's authority when it
    is not the default ``sealed``, and, with a ledger signing key, the inclusion proof
    with the ledger's verifier key.
    """
    argv = ["govex", "packet", "verify", f"{packet_id}.zip"]
    notes: list[str] = []
    if issued is not None:
        argv += ["--expect-manifest-hash", issued.text("sha256")]
    served = runtime.sealed.digest
    if manifest is not None and not manifest.catalog.catalog_digest.mismatches(served):
        argv += ["--trust-catalog", served.text("sha256")]
    else:
        notes.append(
            "no --trust-catalog: the packet was not made under the catalog this service "
            f"serves now ({served.text('sha256')})"
        )
    authority = manifest.authority_status if manifest is not None else None
    if authority is not None and authority is not AuthorityStatus.sealed:
        argv += ["--require-authority", authority.value]
        if authority is AuthorityStatus.provisional:
            notes.append("the packet is provisional: made from an unsealed or edited catalog")
    checkpointer = runtime.checkpointer
    if checkpointer is not None:
        argv += ["--proof", f"{packet_id}.tlog-proof", "--key", checkpointer.verifier_key.text()]
    else:
        notes.append("no --proof: this service has no ledger signing key, so no checkpoint")
    return shlex.join(argv), tuple(notes)
