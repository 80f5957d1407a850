from __future__ import annotations

import base64
import hashlib
import itertools
import json
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ConsistencyProofError, ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from ledger.tree import MerkleTree

if TYPE_CHECKING:
    from pathlib import Path

# transparency-dev/merkle testonly/constants.go LeafInputs, the tree of its proof vectors.
REFERENCE_LEAF_INPUTS = [
    bytes.fromhex(text)
    for text in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]


def _mth(leaf_inputs: list[bytes]) -> bytes:
    """Independent oracle: MTH exactly as RFC 9162 section 2.1.1 writes it, over leaf inputs."""
    n = len(leaf_inputs)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaf_inputs[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaf_inputs[:k]) + _mth(leaf_inputs[k:])).digest()


def _inputs(size: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(size)]


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def test_an_empty_tree_has_the_empty_root_and_no_leaves() -> None:
    tree = MerkleTree()
    assert (tree.size, tree.root(), tree.root(0)) == (0, EMPTY_ROOT, EMPTY_ROOT)
    assert tree.consistency_proof(0) == []
    with pytest.raises(IndexError, match="leaf 0 is not in a tree of size 0"):
        tree.leaf_hash(0)
    with pytest.raises(ProofError, match="leaf 0 is not in a tree of size 0"):
        tree.inclusion_proof(0)


@settings(deadline=None, max_examples=100)
@given(leaf_inputs=st.lists(st.binary(max_size=8), max_size=70))
def test_every_prefix_root_equals_the_rfc_definition(leaf_inputs: list[bytes]) -> None:
    tree = MerkleTree()
    for data in leaf_inputs:
        tree.append(leaf_hash(data))
    assert tree.size == len(leaf_inputs)
    for size in range(len(leaf_inputs) + 1):
        assert tree.root(size) == _mth(leaf_inputs[:size])
    assert tree.root() == _mth(leaf_inputs)


@settings(deadline=None, max_examples=100)
@given(
    size=st.integers(min_value=0, max_value=300),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
)
def test_extend_in_any_chunks_stores_what_append_stores(size: int, cuts: list[int]) -> None:
    hashes = [leaf_hash(data) for data in _inputs(size)]
    one_by_one = MerkleTree()
    for leaf in hashes:
        one_by_one.append(leaf)
    chunked = MerkleTree()
    bounds = [0, *sorted(min(cut, size) for cut in cuts), size]
    for start, stop in itertools.pairwise(bounds):
        chunked.extend(hashes[start:stop])
    assert chunked._levels == one_by_one._levels
    assert MerkleTree(hashes)._levels == one_by_one._levels
    assert [one_by_one.leaf_hash(i) for i in range(size)] == hashes


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 9, 1000, 1023, 1024, 1025])
def test_every_level_is_kept_at_about_64_bytes_per_leaf(size: int) -> None:
    tree = MerkleTree(leaf_hash(data) for data in _inputs(size))
    # Level L holds floor(size / 2**L) nodes: 2 * size - popcount(size) nodes in all.
    assert [len(level) // 32 for level in tree._levels if level] == [
        size >> level for level in range(size.bit_length())
    ]
    assert sum(len(level) for level in tree._levels) == 32 * (2 * size - size.bit_count())


@settings(deadline=None, max_examples=200)
@given(data=st.data(), size=st.integers(min_value=1, max_value=300))
def test_proofs_of_any_prefix_equal_the_list_functions(data: st.DataObject, size: int) -> None:
    hashes = [leaf_hash(d) for d in _inputs(size)]
    tree = MerkleTree(hashes)
    prefix = data.draw(st.integers(min_value=1, max_value=size), label="prefix")
    index = data.draw(st.integers(min_value=0, max_value=prefix - 1), label="index")
    old = data.draw(st.integers(min_value=0, max_value=prefix), label="old")
    root = tree.root(prefix)
    assert root == root_from_leaf_hashes(hashes[:prefix])

    proof = tree.inclusion_proof(index, prefix)
    assert proof == inclusion_proof(index, hashes[:prefix])
    verify_inclusion(index, prefix, tree.leaf_hash(index), proof, root)

    consistency = tree.consistency_proof(old, prefix)
    assert consistency == consistency_proof(old, hashes[:prefix])
    if old > 0:
        verify_consistency(old, prefix, tree.root(old), root, consistency)


def test_whole_tree_defaults_equal_an_explicit_size() -> None:
    tree = MerkleTree(leaf_hash(data) for data in _inputs(13))
    assert tree.root() == tree.root(13)
    assert tree.inclusion_proof(5) == tree.inclusion_proof(5, 13)
    assert tree.consistency_proof(6) == tree.consistency_proof(6, 13)


def test_proofs_against_an_old_size_do_not_change_as_the_tree_grows() -> None:
    hashes = [leaf_hash(data) for data in _inputs(100)]
    tree = MerkleTree(hashes[:37])
    before = (tree.root(), tree.inclusion_proof(20), tree.consistency_proof(11))
    tree.extend(hashes[37:])
    assert (tree.root(37), tree.inclusion_proof(20, 37), tree.consistency_proof(11, 37)) == before


def test_the_tree_gives_the_published_proofs_of_the_reference_tree(vectors_dir: Path) -> None:
    tree = MerkleTree(leaf_hash(data) for data in REFERENCE_LEAF_INPUTS)
    folder = vectors_dir / "merkle" / "testdata"
    inclusion = json.loads((folder / "inclusion" / "1" / "happy-path.json").read_text())
    size, index = inclusion["treeSize"], inclusion["leafIdx"]
    assert tree.root(size) == _b64(inclusion["root"])
    assert tree.inclusion_proof(index, size) == [_b64(p) for p in inclusion["proof"]]
    for case in "01234":
        vector = json.loads((folder / "consistency" / case / "happy-path.json").read_text())
        size1, size2 = vector["size1"], vector["size2"]
        assert (tree.root(size1), tree.root(size2)) == (
            _b64(vector["root1"]),
            _b64(vector["root2"]),
        )
        expected = [_b64(p) for p in vector["proof"] or []]
        assert tree.consistency_proof(size1, size2) == expected, case


def test_sizes_beyond_the_tree_are_refused() -> None:
    tree = MerkleTree(leaf_hash(data) for data in _inputs(5))
    with pytest.raises(ValueError, match="no tree of size 6: this tree has 5 leaves"):
        tree.root(6)
    with pytest.raises(ValueError, match="no tree of size -1"):
        tree.root(-1)
    with pytest.raises(ProofError, match="no tree of size 6") as inclusion:
        tree.inclusion_proof(0, 6)
    assert (inclusion.value.index, inclusion.value.size) == (0, 6)
    with pytest.raises(ProofError, match="leaf 3 is not in a tree of size 3"):
        tree.inclusion_proof(3, 3)
    with pytest.raises(ConsistencyProofError, match="no tree of size 6") as beyond:
        tree.consistency_proof(2, 6)
    assert (beyond.value.size1, beyond.value.size2) == (2, 6)
    with pytest.raises(ConsistencyProofError, match="from tree size 4 to 3"):
        tree.consistency_proof(4, 3)
    with pytest.raises(IndexError, match="leaf 5 is not in a tree of size 5"):
        tree.leaf_hash(5)


def test_a_leaf_hash_that_is_not_32_bytes_is_refused_and_nothing_is_added() -> None:
    tree = MerkleTree([leaf_hash(b"a")])
    with pytest.raises(ValueError, match="leaf hash has 31 bytes, want 32"):
        tree.append(b"\x00" * 31)
    with pytest.raises(ValueError, match="leaf hash 1 has 33 bytes, want 32"):
        tree.extend([leaf_hash(b"b"), b"\x00" * 33])
    assert (tree.size, tree.root()) == (1, leaf_hash(b"a"))
