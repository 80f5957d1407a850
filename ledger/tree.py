"""An incremental RFC 9162 Merkle tree that keeps every level. Pure: no I/O.

Level ``L`` holds, 32 bytes each in one ``bytearray``, the roots of the
perfect subtrees ``[j * 2**L, (j + 1) * 2**L)`` complete so far: level 0 is
the leaf hashes, and each level has half as many nodes as the one below
(about 64 bytes per leaf in all). Nodes never change once stored, so every
prefix of the tree reads the same ones: a root or proof for any size up to
:attr:`MerkleTree.size` hashes only its ragged right edge, ``O(log n)`` nodes.
The proof shapes come from :mod:`ledger.merkle`, so this tree and the list
functions there cannot disagree.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ledger.errors import ConsistencyProofError, ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    build_consistency_proof,
    build_inclusion_proof,
    node_hash,
)

if TYPE_CHECKING:
    from collections.abc import Iterable


class MerkleTree:
    """Leaf hashes appended in ``O(1)`` amortized; roots and proofs of any prefix in ``O(log n)``.

    Not thread-safe: one writer, and readers that do not overlap ``append``.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Add the next leaf hash (``ledger.merkle.leaf_hash(leaf_input)``).

        Raises :class:`ValueError` for a hash that is not 32 bytes.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash has {len(leaf_hash)} bytes, want {HASH_SIZE}")
        levels = self._levels
        levels[0] += leaf_hash
        index, level, node = self._size, 0, bytes(leaf_hash)
        self._size += 1
        while index & 1:  # a right child completes its parent
            offset = (index - 1) * HASH_SIZE
            node = hashlib.sha256(
                b"\x01" + levels[level][offset : offset + HASH_SIZE] + node
            ).digest()
            index, level = index >> 1, level + 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += node

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes, hashing the new parents level by level.

        Raises :class:`ValueError`, before anything is added, for a hash that
        is not 32 bytes.
        """
        added = bytearray()
        for position, leaf in enumerate(leaf_hashes):
            if len(leaf) != HASH_SIZE:
                raise ValueError(f"leaf hash {position} has {len(leaf)} bytes, want {HASH_SIZE}")
            added += leaf
        if not added:
            return
        levels = self._levels
        levels[0] += added
        self._size += len(added) // HASH_SIZE
        level = 0
        while len(levels[level]) >= 2 * HASH_SIZE:
            if level + 1 == len(levels):
                levels.append(bytearray())
            below, above = levels[level], levels[level + 1]
            have, want = len(above) // HASH_SIZE, len(below) // (2 * HASH_SIZE)
            above += b"".join(
                hashlib.sha256(
                    b"\x01" + below[2 * j * HASH_SIZE : (2 * j + 2) * HASH_SIZE]
                ).digest()
                for j in range(have, want)
            )
            level += 1

    def leaf_hash(self, index: int) -> bytes:
        """The hash of leaf ``index``; :class:`IndexError` outside ``[0, size)``."""
        if not 0 <= index < self._size:
            raise IndexError(f"leaf {index} is not in a tree of size {self._size}")
        return bytes(self._levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        """``MTH`` of the first ``size`` leaves (all by default; ``SHA-256("")`` for none).

        Raises :class:`ValueError` unless ``0 <= size <= self.size``.
        """
        size = self._size if size is None else size
        if not 0 <= size <= self._size:
            raise ValueError(f"no tree of size {size}: this tree has {self._size} leaves")
        return EMPTY_ROOT if size == 0 else self._subtree_root(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 ``PATH(index, D[size])`` (``size`` defaults to the whole tree).

        Raises :class:`ProofError` when ``size`` exceeds the tree or ``index``
        is not a leaf of the tree of ``size``.
        """
        size = self._size if size is None else size
        if size > self._size:
            raise ProofError(
                f"no tree of size {size}: this tree has {self._size} leaves", index=index, size=size
            )
        return build_inclusion_proof(index, size, self._subtree_root)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 ``PROOF(old_size, D[new_size])`` (``new_size`` defaults to the whole tree).

        ``[]`` when ``old_size`` is 0 or ``new_size``. Raises
        :class:`ConsistencyProofError` unless ``0 <= old_size <= new_size <= size``.
        """
        new_size = self._size if new_size is None else new_size
        if new_size > self._size:
            raise ConsistencyProofError(
                f"no tree of size {new_size}: this tree has {self._size} leaves",
                size1=old_size,
                size2=new_size,
            )
        return build_consistency_proof(old_size, new_size, self._subtree_root)

    def _subtree_root(self, start: int, stop: int) -> bytes:
        """Private: ``MTH(D[start:stop])`` for ``start`` aligned as in the RFC recursion.

        ``start`` must be a multiple of a power of two at least ``stop - start``,
        so the binary pieces of the range are stored nodes; a ragged range
        folds them from the right, as ``MTH`` splits at the largest power of two.
        """
        pieces: list[bytes] = []
        remaining = stop - start
        while remaining:
            level = remaining.bit_length() - 1
            index = start >> level
            pieces.append(bytes(self._levels[level][index * HASH_SIZE : (index + 1) * HASH_SIZE]))
            start += 1 << level
            remaining -= 1 << level
        node = pieces.pop()
        while pieces:
            node = node_hash(pieces.pop(), node)
        return node
