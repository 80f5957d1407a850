from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ConsistencyMismatch, ConsistencyProofError, ProofError, RootMismatch
from ledger.merkle import (
    EMPTY_ROOT,
    RootBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    roots_from_consistency_proof,
    verify_consistency,
    verify_inclusion,
)

if TYPE_CHECKING:
    from pathlib import Path

# The RFC 6962 reference tree that transparency-dev/merkle's vectors are built on
# (testonly/constants.go: LeafInputs); its inclusion vectors give roots of its prefixes.
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


def _subproof(m: int, leaf_inputs: list[bytes], *, whole: bool) -> list[bytes]:
    """Independent oracle: SUBPROOF(m, D[n], b) exactly as RFC 9162 section 2.1.4.1 writes it."""
    n = len(leaf_inputs)
    if m == n:
        return [] if whole else [_mth(leaf_inputs)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*_subproof(m, leaf_inputs[:k], whole=whole), _mth(leaf_inputs[k:])]
    return [*_subproof(m - k, leaf_inputs[k:], whole=False), _mth(leaf_inputs[:k])]


def _b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def _inclusion_vectors(vectors_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    folder = vectors_dir / "merkle" / "testdata" / "inclusion"
    found = [
        (str(path.relative_to(folder)), json.loads(path.read_text()))
        for path in sorted(folder.rglob("*.json"))
    ]
    assert found, f"no inclusion vectors under {folder}"
    return found


def _consistency_vectors(vectors_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    folder = vectors_dir / "merkle" / "testdata" / "consistency"
    found = [
        (str(path.relative_to(folder)), json.loads(path.read_text()))
        for path in sorted(folder.rglob("*.json"))
    ]
    assert found, f"no consistency vectors under {folder}"
    return found


def test_leaf_and_node_hashes_use_the_rfc_9162_prefixes() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )


def test_empty_tree_root_is_sha256_of_nothing() -> None:
    assert root_from_leaf_hashes([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert RootBuilder().root() == EMPTY_ROOT


def test_roots_match_the_signed_checkpoint_vectors(vectors_dir: Path) -> None:
    notes = json.loads((vectors_dir / "note" / "signed-notes.json").read_text())
    checkpoints = {
        note["desc"]: note["text"].split("\n")
        for note in notes
        if note["desc"].startswith("checkpoint")
    }
    _, size, root = checkpoints["checkpoint of an empty tree"][:3]
    assert (int(size), root_from_leaf_hashes([])) == (0, _b64(root))
    _, size, root = checkpoints['checkpoint over leaf inputs "0".."4"'][:3]
    leaves = [leaf_hash(str(i).encode()) for i in range(5)]
    assert (int(size), root_from_leaf_hashes(leaves)) == (5, _b64(root))


def test_roots_and_proofs_match_every_happy_inclusion_vector(vectors_dir: Path) -> None:
    hashes = [leaf_hash(data) for data in REFERENCE_LEAF_INPUTS]
    checked = 0
    for name, case in _inclusion_vectors(vectors_dir):
        size, index = case["treeSize"], case["leafIdx"]
        if (
            case["wantErr"]
            or not 0 < size <= len(hashes)
            or case["leafHash"] != base64.b64encode(hashes[index]).decode()
        ):
            continue  # not a path in the reference tree (e.g. single-entry vectors)
        assert root_from_leaf_hashes(hashes[:size]) == _b64(case["root"]), name
        assert inclusion_proof(index, hashes[:size]) == [_b64(p) for p in case["proof"] or []], name
        checked += 1
    assert checked >= 5


def test_every_inclusion_vector_is_accepted_or_refused_as_published(vectors_dir: Path) -> None:
    failures = []
    cases = _inclusion_vectors(vectors_dir)
    for name, case in cases:
        args = (
            case["leafIdx"],
            case["treeSize"],
            _b64(case["leafHash"]),
            [_b64(p) for p in case["proof"] or []],
            _b64(case["root"]),
        )
        try:
            verify_inclusion(*args)
        except ProofError as exc:
            if not case["wantErr"]:
                failures.append(f"{name} ({case['desc']}): refused a valid proof: {exc}")
        else:
            if case["wantErr"]:
                failures.append(f"{name} ({case['desc']}): accepted a corrupted proof")
    assert failures == [], "\n".join(failures)
    assert sum(not case["wantErr"] for _, case in cases) >= 5


def test_root_mismatch_reports_both_roots() -> None:
    hashes = [leaf_hash(data) for data in REFERENCE_LEAF_INPUTS]
    proof = inclusion_proof(2, hashes)
    with pytest.raises(RootMismatch) as caught:
        verify_inclusion(2, 8, hashes[2], proof, EMPTY_ROOT)
    assert caught.value.expected == EMPTY_ROOT
    assert caught.value.calculated == root_from_leaf_hashes(hashes)
    assert (caught.value.index, caught.value.size) == (2, 8)


@pytest.mark.parametrize(
    ("index", "size", "leaf", "proof", "message"),
    [
        (3, 3, b"\x00" * 32, [], "not in a tree of size 3"),
        (-1, 3, b"\x00" * 32, [], "not in a tree of size 3"),
        (0, 1, b"\x00" * 31, [], "leaf hash has 31 bytes"),
        (0, 2, b"\x00" * 32, [b"\x00" * 33], "proof hash 0 has 33 bytes"),
        (0, 2, b"\x00" * 32, [], "proof has 0 hashes"),
    ],
)
def test_malformed_proofs_are_refused_before_hashing(
    index: int, size: int, leaf: bytes, proof: list[bytes], message: str
) -> None:
    with pytest.raises(ProofError, match=message) as caught:
        root_from_inclusion_proof(index, size, leaf, proof)
    assert not isinstance(caught.value, RootMismatch)


def test_inclusion_proof_refuses_an_index_outside_the_tree() -> None:
    with pytest.raises(ProofError) as caught:
        inclusion_proof(4, [leaf_hash(b"")] * 4)
    assert (caught.value.index, caught.value.size) == (4, 4)


@settings(deadline=None, max_examples=150)
@given(leaf_inputs=st.lists(st.binary(max_size=8), max_size=70))
def test_streaming_root_equals_the_rfc_definition(leaf_inputs: list[bytes]) -> None:
    builder = RootBuilder()
    for data in leaf_inputs:
        builder.append(leaf_hash(data))
    assert builder.size == len(leaf_inputs)
    assert builder.root() == root_from_leaf_hashes([leaf_hash(d) for d in leaf_inputs])
    assert builder.root() == _mth(leaf_inputs)


@settings(deadline=None, max_examples=200)
@given(data=st.data(), size=st.integers(min_value=1, max_value=300))
def test_inclusion_proofs_verify_and_a_flipped_byte_fails(data: st.DataObject, size: int) -> None:
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    root = root_from_leaf_hashes(hashes)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(index, hashes)
    verify_inclusion(index, size, hashes[index], proof, root)

    if proof:
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        offset = data.draw(st.integers(0, 31), label="offset")
        bit = data.draw(st.integers(0, 7), label="bit")
        flipped = bytearray(proof[element])
        flipped[offset] ^= 1 << bit
        tampered = [*proof[:element], bytes(flipped), *proof[element + 1 :]]
        with pytest.raises(RootMismatch):
            verify_inclusion(index, size, hashes[index], tampered, root)
    other = data.draw(
        st.integers(0, size - 1).filter(lambda i: i != index) if size > 1 else st.none()
    )
    if other is not None:
        with pytest.raises(ProofError):  # the right proof for another leaf's hash never verifies
            verify_inclusion(index, size, hashes[other], proof, root)


def test_every_consistency_vector_is_accepted_or_refused_as_published(vectors_dir: Path) -> None:
    failures = []
    cases = _consistency_vectors(vectors_dir)
    for name, case in cases:
        args = (
            case["size1"],
            case["size2"],
            _b64(case["root1"]),
            _b64(case["root2"]),
            [_b64(p) for p in case["proof"] or []],
        )
        try:
            verify_consistency(*args)
        except ProofError as exc:
            if not case["wantErr"]:
                failures.append(f"{name} ({case['desc']}): refused a valid proof: {exc}")
        else:
            if case["wantErr"]:
                failures.append(f"{name} ({case['desc']}): accepted a corrupted proof")
    assert failures == [], "\n".join(failures)
    assert len(cases) >= 98
    assert sum(not case["wantErr"] for _, case in cases) >= 6


def test_generated_consistency_proofs_equal_every_happy_reference_vector(vectors_dir: Path) -> None:
    hashes = [leaf_hash(data) for data in REFERENCE_LEAF_INPUTS]
    checked = 0
    for name, case in _consistency_vectors(vectors_dir):
        size1, size2 = case["size1"], case["size2"]
        if case["wantErr"] or not 0 < size1 <= size2 <= len(hashes):
            continue
        if _b64(case["root1"]) != root_from_leaf_hashes(hashes[:size1]):
            continue  # "additional" vectors use placeholder roots, not the reference tree
        assert root_from_leaf_hashes(hashes[:size2]) == _b64(case["root2"]), name
        expected = [_b64(p) for p in case["proof"] or []]
        assert consistency_proof(size1, hashes[:size2]) == expected, name
        checked += 1
    assert checked == 5  # the happy paths of folders 0 to 4


def test_consistency_proof_is_empty_from_nothing_and_to_itself() -> None:
    hashes = [leaf_hash(data) for data in REFERENCE_LEAF_INPUTS]
    assert consistency_proof(0, hashes) == []
    assert consistency_proof(8, hashes) == []
    assert consistency_proof(0, []) == []


@pytest.mark.parametrize("old_size", [-1, 9])
def test_consistency_proof_refuses_an_old_size_outside_the_tree(old_size: int) -> None:
    hashes = [leaf_hash(data) for data in REFERENCE_LEAF_INPUTS]
    with pytest.raises(ConsistencyProofError) as caught:
        consistency_proof(old_size, hashes)
    assert isinstance(caught.value, ProofError)
    assert (caught.value.size1, caught.value.size2) == (old_size, 8)
    assert caught.value.where == f"tree size {old_size} to 8"


def test_consistency_mismatch_names_the_old_root_with_both_values() -> None:
    hashes = [leaf_hash(data) for data in REFERENCE_LEAF_INPUTS]
    proof = consistency_proof(6, hashes)
    root6, root8 = root_from_leaf_hashes(hashes[:6]), root_from_leaf_hashes(hashes)
    wrong = bytes(32)
    with pytest.raises(ConsistencyMismatch) as caught:
        verify_consistency(6, 8, wrong, root8, proof)
    assert (caught.value.which, caught.value.expected, caught.value.calculated) == (
        "old",
        wrong,
        root6,
    )
    assert (caught.value.size1, caught.value.size2) == (6, 8)
    assert root6.hex() in str(caught.value)


def test_consistency_mismatch_names_the_new_root_with_both_values() -> None:
    hashes = [leaf_hash(data) for data in REFERENCE_LEAF_INPUTS]
    proof = consistency_proof(3, hashes)
    root3, root8 = root_from_leaf_hashes(hashes[:3]), root_from_leaf_hashes(hashes)
    with pytest.raises(ConsistencyMismatch) as caught:
        verify_consistency(3, 8, root3, EMPTY_ROOT, proof)
    assert (caught.value.which, caught.value.expected, caught.value.calculated) == (
        "new",
        EMPTY_ROOT,
        root8,
    )
    assert roots_from_consistency_proof(3, 8, root3, proof) == (root3, root8)


_H = b"\x00" * 32


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "proof", "message"),
    [
        pytest.param(2, 1, _H, [], "not a prefix of tree size 1", id="size1-above-size2"),
        pytest.param(-1, 1, _H, [], "not a prefix of tree size 1", id="negative-size1"),
        pytest.param(0, 3, _H, [], "from the empty tree", id="from-empty-tree"),
        pytest.param(0, 0, _H, [], "from the empty tree", id="empty-to-empty"),
        pytest.param(0, 3, _H, [_H], "from the empty tree", id="from-empty-with-proof"),
        pytest.param(4, 4, _H, [_H], "equal tree sizes need 0", id="equal-sizes-with-proof"),
        pytest.param(3, 8, _H, [_H] * 3, "need 4", id="too-short"),
        pytest.param(4, 8, _H, [_H] * 2, "need 1", id="too-long"),
        pytest.param(3, 8, _H, [], "need 4", id="empty-proof"),
        pytest.param(4, 8, _H[:31], [_H], "old root has 31 bytes", id="short-old-root"),
        pytest.param(4, 8, _H, [_H + b"x"], "proof hash 0 has 33 bytes", id="long-proof-hash"),
    ],
)
def test_malformed_consistency_proofs_are_refused_before_hashing(
    size1: int, size2: int, root1: bytes, proof: list[bytes], message: str
) -> None:
    with pytest.raises(ConsistencyProofError, match=message) as caught:
        roots_from_consistency_proof(size1, size2, root1, proof)
    assert not isinstance(caught.value, ConsistencyMismatch)
    assert (caught.value.size1, caught.value.size2) == (size1, size2)


@settings(deadline=None, max_examples=200)
@given(data=st.data(), size=st.integers(min_value=1, max_value=300))
def test_consistency_proofs_follow_the_rfc_verify_and_a_flipped_bit_fails(
    data: st.DataObject, size: int
) -> None:
    inputs = [i.to_bytes(4, "big") for i in range(size)]
    hashes = [leaf_hash(d) for d in inputs]
    old = data.draw(st.integers(min_value=1, max_value=size), label="old")
    proof = consistency_proof(old, hashes)
    assert proof == (_subproof(old, inputs, whole=True) if old < size else [])
    old_root, new_root = _mth(inputs[:old]), _mth(inputs)
    verify_consistency(old, size, old_root, new_root, proof)

    if proof:
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        offset = data.draw(st.integers(0, 31), label="offset")
        bit = data.draw(st.integers(0, 7), label="bit")
        flipped = bytearray(proof[element])
        flipped[offset] ^= 1 << bit
        tampered = [*proof[:element], bytes(flipped), *proof[element + 1 :]]
        with pytest.raises(ConsistencyMismatch):
            verify_consistency(old, size, old_root, new_root, tampered)


@settings(deadline=None, max_examples=150)
@given(data=st.data(), size=st.integers(min_value=2, max_value=200))
def test_a_rewritten_history_fails_the_consistency_check(data: st.DataObject, size: int) -> None:
    """A log that changed an old entry (a fork) cannot prove it extends the old checkpoint."""
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    old = data.draw(st.integers(min_value=1, max_value=size - 1), label="old")
    changed = data.draw(st.integers(min_value=0, max_value=old - 1), label="changed")
    forked = [*hashes[:changed], leaf_hash(b"rewritten"), *hashes[changed + 1 :]]
    with pytest.raises(ConsistencyMismatch):
        verify_consistency(
            old,
            size,
            root_from_leaf_hashes(hashes[:old]),
            root_from_leaf_hashes(forked),
            consistency_proof(old, forked),
        )
