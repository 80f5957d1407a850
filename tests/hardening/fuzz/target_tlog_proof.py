"""Fuzz target: any bytes as a C2SP tlog-proof, parsed and verified with the log's key.

Documented failures only: :func:`parse_tlog_proof` raises ``MalformedProof``, and
:func:`verify_tlog_proof` the note and checkpoint errors (``NoteError``) or a Merkle
``ProofError``. A text that parses is in its one canonical spelling (formatting it again
gives the same text), and a proof that verifies puts the leaf in the signed tree.
"""

from __future__ import annotations

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import MalformedProof, NoteError, ProofError
from ledger.keys import SignerKey
from ledger.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes, verify_inclusion
from ledger.tlog_proof import TlogProof, format_tlog_proof, parse_tlog_proof, verify_tlog_proof

ORIGIN = "govex.fuzz/ledger"
LOG_KEY = SignerKey.from_seed(ORIGIN, bytes(range(32)))
LEAVES = [f'{{"seq":{i}}}'.encode() for i in range(21)]


def prepare() -> None:
    """Nothing to build: the key and leaves are constants."""


def seeds() -> list[bytes]:
    """Valid proofs of several leaves in several tree sizes, with and without extra data."""
    hashes = [leaf_hash(leaf) for leaf in LEAVES]
    found = []
    for size in (1, 2, 3, 7, 8, 13, 21):
        checkpoint = sign_checkpoint(
            Checkpoint(ORIGIN, size, root_from_leaf_hashes(hashes[:size])), LOG_KEY
        )
        for index in {0, size // 2, size - 1}:
            proof = tuple(inclusion_proof(index, hashes[:size]))
            extra = LEAVES[index] if index % 2 == 0 else None
            found.append(format_tlog_proof(TlogProof(extra, index, proof, checkpoint)).encode())
    return found


def test_one_input(data: bytes) -> None:
    try:
        proof = parse_tlog_proof(data)
    except MalformedProof:
        return
    assert format_tlog_proof(proof).encode("utf-8") == data, "a second spelling of one proof"
    try:
        checkpoint = verify_tlog_proof(proof, LOG_KEY.verifier_key)
    except (NoteError, ProofError):
        return
    assert proof.extra is not None
    verify_inclusion(
        proof.index, checkpoint.size, leaf_hash(proof.extra), list(proof.proof), checkpoint.root
    )
