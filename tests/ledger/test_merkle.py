from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ProofError, RootMismatch
from ledger.merkle import (
    EMPTY_ROOT,
    RootBuilder,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
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
