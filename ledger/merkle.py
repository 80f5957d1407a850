"""RFC 9162 section 2.1 Merkle tree hashes, root and inclusion proofs. Pure: no I/O.

Every function takes *leaf hashes* (``leaf_hash(leaf_input)``), not leaf
inputs, so a ledger of any size is handled 32 bytes per entry, or in
``O(log n)`` memory with :class:`RootBuilder`. Proofs come as compute/compare
pairs (STYLE G4): :func:`root_from_inclusion_proof` computes, and
:func:`verify_inclusion` compares, so a report can show both roots.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING

from ledger.errors import ProofError, RootMismatch

if TYPE_CHECKING:
    from collections.abc import Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf_input: bytes) -> bytes:
    """``SHA-256(0x00 || leaf_input)``."""
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class RootBuilder:
    """The RFC 9162 root of a growing list of leaf hashes, in ``O(log n)`` memory.

    Keeps the roots of the perfect subtrees that make up the tree so far
    (sizes are distinct powers of two, largest first); the root folds them
    from the right, which is exactly ``MTH`` with ``k`` the largest power of
    two smaller than ``n``.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        """Add the next leaf hash."""
        size, node = 1, leaf
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, node = left_size + size, node_hash(left, node)
        self._stack.append((size, node))
        self.size += 1

    def root(self) -> bytes:
        """Return the tree head of the leaves so far (``SHA-256("")`` for none)."""
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """``MTH`` of the tree whose leaves have these hashes."""
    builder = RootBuilder()
    for leaf in leaf_hashes:
        builder.append(leaf)
    return builder.root()


def _largest_power_of_two_below(n: int) -> int:
    """Private: ``k`` of RFC 9162 (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, stop: int) -> bytes:
    """Private: ``MTH(D[start:stop])`` without copying the list."""
    if stop - start == 1:
        return leaf_hashes[start]
    k = _largest_power_of_two_below(stop - start)
    return node_hash(
        _subtree_root(leaf_hashes, start, start + k), _subtree_root(leaf_hashes, start + k, stop)
    )


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 ``PATH(index, D[n])``, leaf side first.

    Raises :class:`ProofError` when ``index`` is not a leaf of the tree.
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}", index=index, size=size)
    proof: list[bytes] = []
    start, stop, m = 0, size, index
    while stop - start > 1:
        k = _largest_power_of_two_below(stop - start)
        if m < k:
            proof.append(_subtree_root(leaf_hashes, start + k, stop))
            stop = start + k
        else:
            proof.append(_subtree_root(leaf_hashes, start, start + k))
            start, m = start + k, m - k
    proof.reverse()
    return proof


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Compute the root that ``proof`` gives for leaf hash ``leaf`` at ``index`` (RFC 9162 2.1.3.2).

    Raises :class:`ProofError` when the proof cannot be evaluated: ``index``
    outside ``[0, size)``, a leaf or proof hash that is not 32 bytes, or a
    proof of the wrong length for ``(index, size)``.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}", index=index, size=size)
    if len(leaf) != HASH_SIZE:
        raise ProofError(
            f"leaf hash has {len(leaf)} bytes, want {HASH_SIZE}", index=index, size=size
        )
    for position, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise ProofError(
                f"proof hash {position} has {len(node)} bytes, want {HASH_SIZE}",
                index=index,
                size=size,
            )
    # The path splits into the part inside the perfect subtree holding the leaf ("inner", the
    # bits where index and size - 1 differ) and the right border above it (one hash per 1 bit
    # left in index), as in transparency-dev/merkle proof/verify.go.
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    if len(proof) != inner + border:
        raise ProofError(
            f"proof has {len(proof)} hashes, a leaf {index} of size {size} needs {inner + border}",
            index=index,
            size=size,
        )
    node = leaf
    for level, sibling in enumerate(proof[:inner]):
        node = node_hash(node, sibling) if (index >> level) & 1 == 0 else node_hash(sibling, node)
    for sibling in proof[inner:]:
        node = node_hash(sibling, node)
    return node


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` places leaf hash ``leaf`` at ``index`` in the tree with ``root``.

    Raises :class:`ProofError` for a proof that cannot be evaluated and
    :class:`RootMismatch` (with both roots) for one that gives another root.
    """
    calculated = root_from_inclusion_proof(index, size, leaf, proof)
    if not hmac.compare_digest(calculated, root):
        raise RootMismatch(index=index, size=size, expected=root, calculated=calculated)
