"""What the ledger proves to a reader: checkpoints, inclusion and consistency proofs. No policy.

Checkpoints are made on demand: asking for the latest one signs a new
checkpoint first when the ledger grew since the last (the checkpointer refuses
a tree that does not extend it). Proofs are RFC 9162 proofs from the store's
tree; an inclusion proof is against a stored checkpoint, so a reader gets the
signed note the proof verifies against, and can ask for the C2SP tlog-proof
text (FORMATS section 4, "Inclusion proof file"). :mod:`service.reads` checks
policy before calling these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.tlog_proof import TlogProof, format_tlog_proof
from service.errors import OutOfRange

if TYPE_CHECKING:
    from ledger.store import StoredCheckpoint
    from service.runtime import Runtime


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``seq`` (its stored bytes) is in the tree of the signed checkpoint of ``size``."""

    size: int
    proof_file: TlogProof  # the entry's leaf input as its extra data

    @property
    def seq(self) -> int:
        return self.proof_file.index

    @property
    def leaf_input(self) -> bytes:
        return self.proof_file.extra or b""  # always set: the store puts the entry there

    @property
    def proof(self) -> tuple[bytes, ...]:
        return self.proof_file.proof

    @property
    def checkpoint(self) -> str:
        return self.proof_file.checkpoint

    def tlog_proof(self) -> str:
        """The C2SP tlog-proof text."""
        return format_tlog_proof(self.proof_file)


def latest_checkpoint(runtime: Runtime) -> StoredCheckpoint:
    """The checkpoint of the ledger as stored now, signed first if the ledger grew.

    Raises :class:`~service.errors.SigningKeyMissing` without a signing key and
    :class:`~ledger.errors.CheckpointRefused` when the ledger does not extend
    the last checkpoint.
    """
    return runtime.require_checkpointer().checkpoint()


def checkpoint_of_size(runtime: Runtime, size: int | None) -> StoredCheckpoint:
    """The stored checkpoint of tree ``size``; the latest (made on demand) when None."""
    if size is None:
        return latest_checkpoint(runtime)
    stored = runtime.ledger.checkpoint_at(size)
    if stored is None:
        raise OutOfRange(
            f"no checkpoint of tree size {size} is stored; the latest is at "
            "GET /v1/ledger/checkpoint",
            where=f"size {size}",
        )
    return stored


def inclusion_proof(runtime: Runtime, seq: int, size: int | None = None) -> InclusionProof:
    """The proof that entry ``seq`` is in the checkpoint of ``size`` (the latest when None)."""
    checkpoint = checkpoint_of_size(runtime, size)
    if not 0 <= seq < checkpoint.size:
        raise OutOfRange(
            f"seq {seq} is not in the checkpoint of tree size {checkpoint.size}",
            where=f"seq {seq}",
        )
    return InclusionProof(
        size=checkpoint.size, proof_file=runtime.ledger.tlog_proof(seq, checkpoint)
    )


def consistency_proof(runtime: Runtime, old: int, new: int) -> list[bytes]:
    """The RFC 9162 proof that the tree of ``new`` entries extends that of ``old`` ones.

    Empty when ``old`` is 0 (every tree extends the empty one) or equals ``new``.
    """
    if not 0 <= old <= new:
        raise OutOfRange(
            f"a consistency proof goes from a smaller tree to a larger one, not {old} to {new}",
            where=f"old {old}",
        )
    size = runtime.ledger.size()
    if new > size:
        raise OutOfRange(f"the ledger has {size} entries, not {new}", where=f"new {new}")
    if old == 0:
        return []
    return runtime.ledger.consistency_proof(old, new)
