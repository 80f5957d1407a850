"""The ``ledger_inclusion`` check (FORMATS section 4, "Inclusion proof file"). Pure: no I/O.

With a C2SP tlog-proof and a trusted verifier key (and optionally a checkpoint
the consumer already trusts): the proof's ``extra`` is the ``packet.issued``
entry of this packet id and manifest hash, at the proof's index; its checkpoint
is signed by the key for the packet's origin; the inclusion proof holds; and,
with a trusted checkpoint, the proof is against that very tree. Each refusal
raises :class:`PacketCheckFailed` naming the place (``proof line N``,
``proof extra#/body/...``, ``proof index N``, ``checkpoint file``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ledger.checkpoint import open_checkpoint
from ledger.entry import Kind
from ledger.errors import LedgerVerifyError, MalformedProof, NoteError, ProofError, RootMismatch
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.tlog_proof import parse_tlog_proof
from ledger.verify import parse_leaf_input
from service.packets.errors import PacketCheckFailed

if TYPE_CHECKING:
    from catalog.digest import DigestSet
    from ledger.checkpoint import Checkpoint
    from ledger.keys import VerifierKey


@dataclass(frozen=True)
class InclusionEvidence:
    """What the ``ledger_inclusion`` check runs on.

    ``proof`` is the tlog-proof file's bytes, ``key`` the trusted verifier key
    of the ledger (its name is the origin), ``checkpoint`` a signed checkpoint
    the consumer already trusts: the proof must then be against that very tree.
    ``key_source`` says where the key came from, for the report: ``given`` by the
    consumer, or the verifying ``service``'s own key (offered only on request).
    """

    proof: bytes
    key: VerifierKey
    checkpoint: bytes | None = None
    key_source: Literal["given", "service"] = "given"


def _opened(signed: str | bytes, key: VerifierKey, where: str) -> Checkpoint:
    """Private: a checkpoint verified with ``key``, or a failure at ``where``."""
    try:
        return open_checkpoint(signed, key)
    except NoteError as exc:
        place = f"{where} {exc.where}" if exc.where else where
        raise PacketCheckFailed(place, f"checkpoint refused: {exc.message}") from exc


def _issued_entry(
    extra: bytes | None, index: int, packet_id: str, manifest_hash: DigestSet
) -> None:
    """Private: the proof's extra is the packet.issued entry of this packet and manifest hash."""
    if extra is None:
        raise PacketCheckFailed(
            "proof line 2", "no extra line: the proof does not carry the ledger entry"
        )
    try:
        entry = parse_leaf_input(extra, seq=index)
    except LedgerVerifyError as exc:
        raise PacketCheckFailed(
            "proof extra", f"not a ledger entry: {exc.check}: {exc.detail}"
        ) from exc
    if entry.seq != index:
        raise PacketCheckFailed(
            "proof extra#/seq", "the entry is not at the proof's index", str(index), str(entry.seq)
        )
    if entry.kind is not Kind.packet_issued:
        raise PacketCheckFailed(
            "proof extra#/kind",
            "the entry does not issue a packet",
            "packet.issued",
            entry.kind.value,
        )
    if entry.body.get("packet_id") != packet_id:
        raise PacketCheckFailed(
            "proof extra#/body/packet_id",
            "the entry issued another packet",
            packet_id,
            str(entry.body.get("packet_id")),
        )
    recorded = entry.body.get("manifest_hash")
    if not isinstance(recorded, dict):  # pragma: no cover - parse_leaf_input checked the body
        raise PacketCheckFailed("proof extra#/body/manifest_hash", "no manifest hash to compare")
    for algorithm in ("sha256", "blake3"):
        if recorded.get(algorithm) != manifest_hash.hex(algorithm):
            raise PacketCheckFailed(
                f"proof extra#/body/manifest_hash/{algorithm}",
                "the ledger recorded another manifest hash for this packet",
                manifest_hash.text(algorithm),
                f"{algorithm}:{recorded.get(algorithm)}",
            )


def _same_tree(trusted: Checkpoint, proved: Checkpoint) -> None:
    """Private: the proof must be against the consumer's own checkpoint."""
    expected = f"size {trusted.size} root {trusted.root.hex()}"
    actual = f"size {proved.size} root {proved.root.hex()}"
    if trusted.size == proved.size and trusted.root != proved.root:
        raise PacketCheckFailed(
            "checkpoint file",
            "your checkpoint and the proof's are two trees of one size: the log signed a fork",
            expected,
            actual,
        )
    if trusted.size != proved.size:
        raise PacketCheckFailed(
            "checkpoint file",
            f"the proof is against the tree of size {proved.size}, not your checkpoint's: fetch "
            f"a proof against it (govex ledger prove --packet ID --size {trusted.size})",
            expected,
            actual,
        )


def check_inclusion(
    evidence: InclusionEvidence, *, packet_id: str, origin: str, manifest_hash: DigestSet
) -> str:
    """Run ``ledger_inclusion`` for the packet ``packet_id`` of ledger ``origin``.

    Returns what passed; raises :class:`PacketCheckFailed` at the first refusal.
    """
    try:
        proof = parse_tlog_proof(evidence.proof)
    except MalformedProof as exc:
        raise PacketCheckFailed(f"proof line {exc.line}", exc.detail) from exc
    _issued_entry(proof.extra, proof.index, packet_id, manifest_hash)
    checkpoint = _opened(proof.checkpoint, evidence.key, "proof checkpoint")
    if origin != checkpoint.origin:
        raise PacketCheckFailed(
            "packet.json#/ledger/origin",
            "the packet names another ledger than the proof's checkpoint",
            checkpoint.origin,
            origin,
        )
    leaf = leaf_hash(proof.extra or b"")
    place = f"proof index {proof.index}"
    try:
        verify_inclusion(proof.index, checkpoint.size, leaf, proof.proof, checkpoint.root)
    except RootMismatch as exc:
        detail = f"the inclusion proof gives another root than the checkpoint of size {exc.size}"
        raise PacketCheckFailed(place, detail, exc.expected.hex(), exc.calculated.hex()) from exc
    except ProofError as exc:
        raise PacketCheckFailed(place, exc.message) from exc
    against = "the proof's checkpoint"
    if evidence.checkpoint is not None:
        trusted = _opened(evidence.checkpoint, evidence.key, "checkpoint file")
        _same_tree(trusted, checkpoint)
        against = "your checkpoint"
    return (
        f"entry seq {proof.index} (packet.issued) is in the tree of size {checkpoint.size}, "
        f"{against}, signed by {evidence.key.name}"
    )
