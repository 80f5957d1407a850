"""Signing checkpoints of a store's ledger, never for a tree that does not extend the last one.

:meth:`Checkpointer.checkpoint` reads the stored tree head, and before it
signs anything it proves, with an RFC 9162 consistency proof computed from the
stored leaf hashes, that the new tree extends the latest stored checkpoint
(same root at the old size; every tree extends the empty one). A ledger that
was rewritten, truncated or forked under a checkpoint gets no new signature:
:class:`~ledger.errors.CheckpointRefused` says where. Several workers may
checkpoint at once: the store keeps one checkpoint per tree size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import CheckpointRefused, ProofError
from ledger.merkle import verify_consistency

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from ledger.keys import SignerKey, VerifierKey
    from ledger.store import LedgerStore, StoredCheckpoint


class Checkpointer:
    """Signs and stores checkpoints of ``store`` with ``signer`` (whose name is the origin)."""

    def __init__(
        self, store: LedgerStore, signer: SignerKey, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._signer = signer
        self._clock = clock

    @property
    def origin(self) -> str:
        return self._signer.name

    @property
    def verifier_key(self) -> VerifierKey:
        """The public key that verifies this checkpointer's signatures (its name is the origin)."""
        return self._signer.verifier_key

    def checkpoint(self) -> StoredCheckpoint:
        """The checkpoint of the ledger as stored now: the latest one when the tree has not grown.

        Raises :class:`CheckpointRefused` when the stored entries no longer
        extend the latest stored checkpoint.
        """
        size, root = self._store.tree_head()
        latest = self._store.latest_checkpoint()
        if latest is not None:
            if latest.size > size:
                raise CheckpointRefused(
                    f"the latest checkpoint covers {latest.size} entries but the ledger has "
                    f"{size}: entries from seq {size} on are gone; refusing to sign",
                    size=size,
                )
            if latest.size == size and latest.root == root:
                return latest
            self._check_extends(latest, size, root)
        signed = sign_checkpoint(Checkpoint(origin=self.origin, size=size, root=root), self._signer)
        return self._store.add_checkpoint(size, root, signed, self._clock())

    def _check_extends(self, latest: StoredCheckpoint, size: int, root: bytes) -> None:
        """Private: refuse unless the tree of ``size`` entries extends ``latest``."""
        if latest.size == 0:
            return  # every tree extends the empty tree
        proof = self._store.consistency_proof(latest.size, size)
        try:
            verify_consistency(latest.size, size, latest.root, root, proof)
        except ProofError as exc:
            raise CheckpointRefused(
                f"the ledger of {size} entries does not extend the checkpoint of size "
                f"{latest.size} (root {latest.root.hex()}): an entry before seq {latest.size} "
                f"was changed; refusing to sign ({exc.message})",
                size=size,
            ) from exc
