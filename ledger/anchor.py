"""Anchored verification: a ledger's entries against checkpoints the auditor trusts. Pure: no I/O.

The chain checks of :mod:`ledger.verify` prove that the entries link up, not
that they are the entries the log signed: a ledger truncated, rolled back to
an older prefix, or rewritten and recomputed from an entry on, still links up.
Only a signed checkpoint the auditor already holds tells those apart, so
:func:`verify_anchored` reports ``unanchored`` (never a plain "OK") when it
was given none. For each trusted checkpoint, smallest tree first, once the
stream reaches its size:

1. ``fork``       the RFC 9162 root of the first ``size`` entries must be the
                  checkpoint's: else some entry in seq ``start .. size - 1``
                  differs from the tree it signed, ``start`` being the largest
                  size a trusted checkpoint matched (0 if none)
2. ``truncated``  the stream must reach every checkpoint's size: else seq
                  ``n`` (the number of entries present) is the first missing

Entries past the largest checkpoint are the unanchored tail: verified as a
chain, but not yet covered by a signature the auditor holds.

:func:`check_consistency` adds the RFC 9162 consistency proof between two
trusted checkpoints, computed from the entries and verified against both roots.
Checkpoints come in already verified (:func:`ledger.checkpoint.open_checkpoint`).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ledger.chain import LedgerReport
from ledger.chain_scan import ScanReport
from ledger.errors import LedgerForked, LedgerTruncated
from ledger.merkle import leaf_hash, verify_consistency
from ledger.tree import MerkleTree
from ledger.verify import ChainVerifier

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ledger.checkpoint import Checkpoint

AnchorStatus = Literal["anchored", "unanchored"]


@dataclass(frozen=True)
class AnchoredReport:
    """A verified chain and the trusted checkpoints it matched.

    ``anchor`` is the largest trusted checkpoint the entries match, None when
    none was given (``unanchored``); ``matched`` holds the size of each one
    matched, ascending. Entries ``anchored_size .. size - 1`` are the
    unanchored tail.
    """

    chain: LedgerReport
    anchor: Checkpoint | None
    matched: tuple[int, ...]

    @property
    def status(self) -> AnchorStatus:
        return "unanchored" if self.anchor is None else "anchored"

    @property
    def size(self) -> int:
        return self.chain.size

    @property
    def root(self) -> bytes:
        return self.chain.root

    @property
    def anchored_size(self) -> int:
        """How many entries, from seq 0, a trusted checkpoint covers."""
        return 0 if self.anchor is None else self.anchor.size

    @property
    def unanchored_tail(self) -> int:
        """How many entries follow the largest trusted checkpoint (all of them when unanchored)."""
        return self.size - self.anchored_size


def _trusted_in_order(checkpoints: Iterable[Checkpoint]) -> list[Checkpoint]:
    """Private: the checkpoints by size, one per size; two of one size that differ are a fork."""
    by_size: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:
        seen = by_size.setdefault(checkpoint.size, checkpoint)
        if not hmac.compare_digest(seen.root, checkpoint.root):
            raise LedgerForked(
                start=checkpoint.size,
                stop=checkpoint.size,
                expected=seen.root,
                calculated=checkpoint.root,
                detail=(
                    f"two trusted checkpoints of tree size {checkpoint.size} have different "
                    f"roots ({seen.root.hex()} and {checkpoint.root.hex()}): the log signed a fork"
                ),
            )
    return [by_size[size] for size in sorted(by_size)]


def _match(checkpoint: Checkpoint, calculated: bytes, matched: list[Checkpoint]) -> None:
    """Private: add ``checkpoint`` to ``matched`` if the entries give its root; else a fork.

    The fork spans the seqs after the last checkpoint matched up to this one's size.
    """
    if not hmac.compare_digest(calculated, checkpoint.root):
        raise LedgerForked(
            start=matched[-1].size if matched else 0,
            stop=checkpoint.size,
            expected=checkpoint.root,
            calculated=calculated,
        )
    matched.append(checkpoint)


def verify_anchored(
    leaf_inputs: Iterable[bytes], checkpoints: Iterable[Checkpoint] = ()
) -> AnchoredReport:
    """Verify the chain of ``leaf_inputs`` (each without a newline) against trusted checkpoints.

    Streams: ``O(log n)`` memory whatever the ledger's size. Raises
    :class:`~ledger.errors.LedgerVerifyError` at the first bad entry (the
    chain checks of :class:`~ledger.verify.ChainVerifier`),
    :class:`~ledger.errors.LedgerForked` at the first checkpoint whose root the
    entries do not give (or for two trusted checkpoints of one size that
    differ), and :class:`~ledger.errors.LedgerTruncated` when the entries end
    before the largest checkpoint's size. An export file is faster checked with
    :func:`ledger.export_scan.scan_export` and :func:`anchor_scan` (no
    canonical-form or schema check).
    """
    pending = _trusted_in_order(checkpoints)
    verifier = ChainVerifier()
    matched: list[Checkpoint] = []

    def settle() -> None:
        while pending and pending[0].size == verifier.size:
            _match(pending.pop(0), verifier.report().root, matched)

    settle()
    for data in leaf_inputs:
        verifier.feed(data)
        if pending and pending[0].size == verifier.size:
            settle()
    if pending:
        raise LedgerTruncated(size=verifier.size, checkpoint_size=pending[-1].size)
    return AnchoredReport(
        chain=verifier.report(),
        anchor=matched[-1] if matched else None,
        matched=tuple(checkpoint.size for checkpoint in matched),
    )


def anchor_scan(scanned: ScanReport, checkpoints: Iterable[Checkpoint] = ()) -> AnchoredReport:
    """Anchor a finished scan (:func:`ledger.export_scan.scan_export`) to trusted checkpoints.

    The scan must carry the root at each checkpoint's size it reached (its
    ``root_sizes``). Same verdicts, in the same order, as :func:`verify_anchored`
    on the same entries: the first checkpoint (smallest first) whose root the
    entries do not give is a :class:`~ledger.errors.LedgerForked`; entries
    ending before the largest checkpoint are a :class:`~ledger.errors.LedgerTruncated`.
    """
    matched: list[Checkpoint] = []
    pending = _trusted_in_order(checkpoints)
    for checkpoint in pending:
        if checkpoint.size > scanned.size:
            raise LedgerTruncated(size=scanned.size, checkpoint_size=pending[-1].size)
        calculated = scanned.root if checkpoint.size == scanned.size else None
        calculated = scanned.roots.get(checkpoint.size, calculated)
        if calculated is None:
            raise ValueError(f"the scan carries no root at tree size {checkpoint.size}")
        _match(checkpoint, calculated, matched)
    return AnchoredReport(
        chain=LedgerReport(
            size=scanned.size, root=scanned.root, head_leaf_hash=scanned.head_leaf_hash
        ),
        anchor=matched[-1] if matched else None,
        matched=tuple(checkpoint.size for checkpoint in matched),
    )


@dataclass(frozen=True)
class ConsistencyReport:
    """The tree of ``new`` extends that of ``old``: the proof, and the entries' anchored report."""

    old: Checkpoint
    new: Checkpoint
    proof: tuple[bytes, ...]
    entries: AnchoredReport


def check_consistency(
    leaf_inputs: Iterable[bytes], old: Checkpoint, new: Checkpoint
) -> ConsistencyReport:
    """Prove from the entries that trusted checkpoint ``new`` extends trusted checkpoint ``old``.

    Verifies the entries anchored at both checkpoints (:func:`verify_anchored`:
    a fork names the range of seqs, a rollback or truncation the first missing
    seq), then computes the RFC 9162 consistency proof from ``old.size`` to
    ``new.size`` out of the entries and verifies it against both signed roots
    (:class:`~ledger.errors.ConsistencyMismatch`). From size 0, or between
    equal sizes, the proof is empty and nothing is left to verify. Raises
    :class:`~ledger.errors.LedgerTruncated` when ``new`` is smaller than
    ``old``: the log rolled back from a tree the auditor already trusted.
    """
    if new.size < old.size:
        raise LedgerTruncated(
            size=new.size,
            checkpoint_size=old.size,
            detail=(
                f"the new checkpoint covers {new.size} entries, fewer than the old one's "
                f"{old.size}: the log rolled back, seq {new.size} is the first missing"
            ),
        )
    tree = MerkleTree()

    def hashed(items: Iterable[bytes]) -> Iterator[bytes]:
        for data in items:
            if tree.size < new.size:
                tree.append(leaf_hash(data))
            yield data

    report = verify_anchored(hashed(leaf_inputs), (old, new))
    proof = tuple(tree.consistency_proof(old.size, new.size))
    if 0 < old.size < new.size:
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    return ConsistencyReport(old=old, new=new, proof=proof, entries=report)
