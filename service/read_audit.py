"""Auditing the auditors: every read of evidence through the service is ledgered (``access.read``).

What is recorded, one entry per request (never per row or per entry read):

- ``ledger.entries`` (``target``: ``start``, ``limit``), ``ledger.inclusion_proof``
  (``seq``, ``size``), ``ledger.consistency_proof`` (``old``, ``new``): :mod:`service.reads`;
- ``packet.zip``, ``packet.manifest``, ``packet.proof``: the packet id and the manifest
  hash it was issued with, from :mod:`service.reads`;
- ``packet.verify``: a verification through ``POST /v1/packets/verify``: the packet id
  and manifest hash of the uploaded packet (as the verifier computed them), whether it
  passed, and what was pinned (``target``);
- ``call.status``, ``call.events`` (``target``: ``call_id`` and its ``principal``) and
  ``call.list`` (``target``: the filters and how many calls were returned): a read of
  other principals' calls, which the call index answers from what the ledger recorded
  (who called which entry, verdict, seqs, manifest hash, claim verdict). A principal
  following their own call (status, events, a list of their own) is not recorded:
  that is the answer to their own request, polled while it runs, and the ledger holds
  it already in the call's own entries.

Each body names the reader (principal record, never a credential) and the request id.
The entry is appended after policy allowed the read and before the answer is returned,
so a read that the ledger cannot record fails (fail closed). A page of entries is read
after its entry is appended: the size a reader sees counts the reader's own entry, so
paging ``GET /v1/ledger/entries`` to its end terminates. A proof is computed before its
entry is appended: it is against the latest checkpoint as the reader found it (the one
``GET /v1/ledger/checkpoint`` just gave), not one its own entry made the ledger
outgrow. "Who relied on which packet" is every ``access.read`` whose ``packet_id``
names it.

``GET /v1/ledger/checkpoint`` is not recorded: a checkpoint is the signed tree head the
ledger shows everyone, it reveals no entry, and it must stay the same for every reader
until the ledger grows (witnesses and auditors compare them). Were each fetch ledgered,
every fetch would grow the ledger and a new checkpoint would be signed for the next one.
Proofs reveal entries (their leaf inputs) and are recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from catalog.ids import is_opaque_id
from ledger.entry import AccessRead
from service.context import request_id_var

if TYPE_CHECKING:
    from collections.abc import Mapping

    from catalog.digest import DigestSet
    from service.identity import Principal
    from service.packets.report import VerifyReport
    from service.runtime import Runtime

Read = AccessRead  # the reads an access.read entry may name


def record_read(
    runtime: Runtime,
    principal: Principal,
    read: Read,
    *,
    target: Mapping[str, Any] | None = None,
    packet_id: str | None = None,
    manifest_hash: DigestSet | None = None,
) -> int:
    """Append the ``access.read`` entry of one read; returns its seq (ledger errors go up)."""
    body: dict[str, Any] = {
        "principal": principal.model_dump(mode="json"),
        "read": read,
        "request_id": request_id_var.get(),
        "target": dict(target or {}),
    }
    if packet_id is not None and is_opaque_id(packet_id):
        body["packet_id"] = packet_id
    if manifest_hash is not None:
        body["manifest_hash"] = manifest_hash.model_dump()
    return runtime.ledger.append("access.read", body, runtime.clock()).seq


def record_verification(runtime: Runtime, principal: Principal, report: VerifyReport) -> int:
    """``access.read`` of a verification: the packet as verified, and the verdict."""
    enforced = report.enforced
    return record_read(
        runtime,
        principal,
        "packet.verify",
        target={
            "ok": report.ok,
            "mode": enforced.mode,
            "pinned_manifest_hash": enforced.manifest_hash is not None,
            "proof": enforced.proof,
            "trusted_catalogs": len(enforced.trusted_catalogs),
        },
        packet_id=report.packet_id,
        manifest_hash=report.manifest_hash,
    )
