"""RFC 9162 section 2.1 Merkle tree hashes, root, inclusion and consistency proofs. Pure: no I/O.

Every function takes *leaf hashes* (``leaf_hash(leaf_input)``), not leaf
inputs, so a ledger of any size is handled 32 bytes per entry, or in
``O(log n)`` memory with :class:`RootBuilder`. Proofs come as compute/compare
pairs (STYLE G4): :func:`root_from_inclusion_proof` and
:func:`roots_from_consistency_proof` compute, :func:`verify_inclusion` and
:func:`verify_consistency` compare, so a report can show both roots.

Proof generation is written once, over a ``subtree_root(start, stop)``
callable (:func:`build_inclusion_proof`, :func:`build_consistency_proof`):
the list functions here pass a recursive ``MTH``, and
:class:`ledger.tree.MerkleTree` passes its stored levels.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Literal

from ledger.errors import ConsistencyMismatch, ConsistencyProofError, ProofError, RootMismatch

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    SubtreeRoot = Callable[[int, int], bytes]
    """``subtree_root(start, stop)`` returns ``MTH(D[start:stop])``."""

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


def build_inclusion_proof(index: int, size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 ``PATH(index, D[size])``, leaf side first.

    ``subtree_root(start, stop)`` gives ``MTH(D[start:stop])``; it is only
    asked for ranges of the RFC recursion, whose ``start`` is a multiple of a
    power of two at least ``stop - start``. Raises :class:`ProofError` when
    ``index`` is not a leaf of the tree.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}", index=index, size=size)
    proof: list[bytes] = []
    start, stop, m = 0, size, index
    while stop - start > 1:
        k = _largest_power_of_two_below(stop - start)
        if m < k:
            proof.append(subtree_root(start + k, stop))
            stop = start + k
        else:
            proof.append(subtree_root(start, start + k))
            start, m = start + k, m - k
    proof.reverse()
    return proof


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 ``PATH(index, D[n])``, leaf side first.

    Raises :class:`ProofError` when ``index`` is not a leaf of the tree.
    """
    return build_inclusion_proof(
        index, len(leaf_hashes), lambda start, stop: _subtree_root(leaf_hashes, start, stop)
    )


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


def build_consistency_proof(old_size: int, size: int, subtree_root: SubtreeRoot) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 ``PROOF(old_size, D[size])``, deepest node first.

    ``SUBPROOF`` unrolled: walk down from the root; while the old tree fits in
    the left half, record the right half; otherwise record the (perfect) left
    half and go right. ``[]`` when ``old_size`` is 0 or ``size`` (nothing to
    prove; :func:`verify_consistency` refuses a proof from the empty tree).
    Raises :class:`ConsistencyProofError` unless ``0 <= old_size <= size``.
    """
    if not 0 <= old_size <= size:
        raise ConsistencyProofError(
            f"no consistency proof from tree size {old_size} to {size}", size1=old_size, size2=size
        )
    if old_size in {0, size}:
        return []
    proof: list[bytes] = []
    start, stop, m, whole_old_tree = 0, size, old_size, True
    while m != stop - start:
        k = _largest_power_of_two_below(stop - start)
        if m <= k:
            proof.append(subtree_root(start + k, stop))
            stop = start + k
        else:
            proof.append(subtree_root(start, start + k))
            start, m, whole_old_tree = start + k, m - k, False
    if not whole_old_tree:  # the verifier knows the old root only when it is this very node
        proof.append(subtree_root(start, stop))
    proof.reverse()
    return proof


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 ``PROOF(old_size, D[n])`` with ``n = len(leaf_hashes)``.

    Raises :class:`ConsistencyProofError` (a :class:`ProofError`) unless
    ``0 <= old_size <= n``; ``[]`` for ``old_size`` 0 or ``n``.
    """
    return build_consistency_proof(
        old_size, len(leaf_hashes), lambda start, stop: _subtree_root(leaf_hashes, start, stop)
    )


def _consistency_layout(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bool, int, int]:
    """Private: refuse a proof that cannot be evaluated, else ``(seed_given, shift, inner)``.

    ``shift`` is the level of the last perfect subtree of the old tree, whose
    root starts the chain (the first proof hash when ``seed_given``, else
    ``root1``); ``inner`` hashes follow below the split of the paths to leaves
    ``size1 - 1`` and ``size2 - 1``, then one border hash per 1 bit above it.
    """

    def refuse(message: str) -> ConsistencyProofError:
        return ConsistencyProofError(message, size1=size1, size2=size2)

    if not 0 <= size1 <= size2:
        raise refuse(f"tree size {size1} is not a prefix of tree size {size2}")
    if size1 == 0:
        raise refuse("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        raise refuse(f"proof has {len(proof)} hashes, equal tree sizes need 0")
    if len(root1) != HASH_SIZE:
        raise refuse(f"old root has {len(root1)} bytes, want {HASH_SIZE}")
    split = ((size1 - 1) ^ (size2 - 1)).bit_length()
    border = ((size1 - 1) >> split).bit_count()
    shift = (size1 & -size1).bit_length() - 1
    seed_given = size1 != 1 << shift
    want = int(seed_given) + split - shift + border
    if len(proof) != want:
        raise refuse(f"proof has {len(proof)} hashes, tree sizes {size1} to {size2} need {want}")
    for position, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise refuse(f"proof hash {position} has {len(node)} bytes, want {HASH_SIZE}")
    return seed_given, shift, split - shift


def roots_from_consistency_proof(
    size1: int, size2: int, root1: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Compute ``(old root, new root)`` from a consistency proof (RFC 9162 2.1.4.2).

    As transparency-dev/merkle ``proof/verify.go`` does: the proof is the
    suffix of the inclusion path of leaf ``size1 - 1`` in the tree of
    ``size2``, starting at the root of the largest perfect subtree that ends
    at ``size1`` (``root1`` itself when ``size1`` is a power of two, else the
    first proof hash). Folding in only the left siblings gives the old root,
    all of them the new one. For ``size1 == size2`` the result is
    ``(root1, root1)``.

    Raises :class:`ConsistencyProofError` when the proof cannot be evaluated:
    ``size1 > size2``, ``size1 == 0`` (a proof from the empty tree proves
    nothing, as in verify.go), a non-empty proof for equal sizes, a proof of
    the wrong length, or ``root1`` or a proof hash that is not 32 bytes.
    """
    if size1 == size2 and size1 > 0 and not proof:
        return root1, root1
    seed_given, shift, inner = _consistency_layout(size1, size2, root1, proof)
    seed, path = (proof[0], proof[1:]) if seed_given else (root1, proof)
    mask = (size1 - 1) >> shift
    old = new = seed
    for level, sibling in enumerate(path[:inner]):
        if (mask >> level) & 1:
            old, new = node_hash(sibling, old), node_hash(sibling, new)
        else:  # a right sibling: leaves appended after the old tree
            new = node_hash(new, sibling)
    for sibling in path[inner:]:
        old, new = node_hash(sibling, old), node_hash(sibling, new)
    return old, new


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``.

    Raises :class:`ConsistencyProofError` for a proof that cannot be
    evaluated (see :func:`roots_from_consistency_proof`) and
    :class:`ConsistencyMismatch`, naming the root (``"old"`` or ``"new"``)
    with both values, for one that gives other roots.
    """
    calculated1, calculated2 = roots_from_consistency_proof(size1, size2, root1, proof)
    checks: tuple[tuple[Literal["old", "new"], bytes, bytes], ...] = (
        ("old", root1, calculated1),
        ("new", root2, calculated2),
    )
    for which, expected, calculated in checks:
        if not hmac.compare_digest(calculated, expected):
            raise ConsistencyMismatch(
                size1=size1, size2=size2, which=which, expected=expected, calculated=calculated
            )
