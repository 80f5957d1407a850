from __future__ import annotations

import base64
import subprocess
import sys
from typing import Any

import pytest

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import (
    BadSignature,
    MalformedProof,
    OriginMismatch,
    ProofError,
    RootMismatch,
    UnverifiedNote,
)
from ledger.keys import SignerKey
from ledger.merkle import inclusion_proof, leaf_hash, root_from_leaf_hashes
from ledger.note import sign_note
from ledger.tlog_proof import (
    HEADER,
    MAX_PROOF_HASHES,
    TlogProof,
    format_tlog_proof,
    parse_tlog_proof,
    verify_tlog_proof,
)

ORIGIN = "govex.example/ledger/test"
LOG_KEY = SignerKey.from_seed(ORIGIN, bytes(range(32)))
LEAVES = [f'{{"seq":{i}}}'.encode() for i in range(13)]

# The example in c2sp.org/tlog-proof (its signatures are elided, so it only parses).
C2SP_EXAMPLE = """c2sp.org/tlog-proof@v1
extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ
index 73894
gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=
EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=
RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=
AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=

example.com/fancylog
109482
sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=

— example.com/fancylog hI2DJw[...]1roloI=
— witness1.example mJirIklj[...]qY9v2B/5bg==
— witness2.example TnKKVHLX[...]xwYwrSjgow==
— witness3.example S4X82uH5[...]3oEcROGLFQ==
"""


def _signed_checkpoint(size: int, key: SignerKey = LOG_KEY) -> str:
    root = root_from_leaf_hashes([leaf_hash(leaf) for leaf in LEAVES[:size]])
    return sign_checkpoint(Checkpoint(key.name, size, root), key)


def _proof(index: int, size: int, *, extra: bytes | None = None) -> TlogProof:
    hashes = [leaf_hash(leaf) for leaf in LEAVES[:size]]
    return TlogProof(
        extra=LEAVES[index] if extra is None else extra,
        index=index,
        proof=tuple(inclusion_proof(index, hashes)),
        checkpoint=_signed_checkpoint(size),
    )


def test_every_leaf_of_every_tree_size_verifies_after_a_text_round_trip() -> None:
    for size in range(1, len(LEAVES) + 1):
        for index in range(size):
            proof = _proof(index, size)
            parsed = parse_tlog_proof(format_tlog_proof(proof))
            assert parsed == proof, (index, size)
            checkpoint = verify_tlog_proof(parsed, LOG_KEY.verifier_key)
            assert (checkpoint.origin, checkpoint.size) == (ORIGIN, size)


def test_format_is_header_extra_index_hashes_blank_line_checkpoint() -> None:
    proof = _proof(2, 5)
    lines = format_tlog_proof(proof).split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1" == HEADER
    assert lines[1] == "extra " + base64.b64encode(LEAVES[2]).decode()
    assert lines[2] == "index 2"
    assert lines[3 : 3 + len(proof.proof)] == [base64.b64encode(h).decode() for h in proof.proof]
    assert lines[3 + len(proof.proof)] == ""
    assert "\n".join(lines[4 + len(proof.proof) :]) == proof.checkpoint


def test_without_extra_the_index_is_the_second_line() -> None:
    proof = TlogProof(None, 0, (), _signed_checkpoint(1))
    text = format_tlog_proof(proof)
    assert text == f"{HEADER}\nindex 0\n\n{proof.checkpoint}"
    assert parse_tlog_proof(text) == proof
    assert parse_tlog_proof(text.encode()) == proof


def test_the_c2sp_example_parses_and_formats_back() -> None:
    proof = parse_tlog_proof(C2SP_EXAMPLE)
    assert proof.index == 73894
    assert len(proof.proof) == 5
    assert proof.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert proof.checkpoint.startswith("example.com/fancylog\n109482\n")
    assert format_tlog_proof(proof) == C2SP_EXAMPLE


def test_a_given_leaf_input_is_checked_instead_of_the_extra() -> None:
    proof = TlogProof(None, 3, _proof(3, 8).proof, _signed_checkpoint(8))
    assert verify_tlog_proof(proof, LOG_KEY.verifier_key, leaf_input=LEAVES[3]).size == 8
    with pytest.raises(RootMismatch):
        verify_tlog_proof(proof, LOG_KEY.verifier_key, leaf_input=LEAVES[4])
    forged_extra = _proof(3, 8, extra=b"forged")
    assert verify_tlog_proof(forged_extra, LOG_KEY.verifier_key, leaf_input=LEAVES[3]).size == 8


def test_no_extra_and_no_leaf_input_is_refused() -> None:
    proof = TlogProof(None, 0, (), _signed_checkpoint(1))
    with pytest.raises(MalformedProof) as raised:
        verify_tlog_proof(proof, LOG_KEY.verifier_key)
    assert raised.value.line == 2


def test_a_tampered_extra_gives_another_root() -> None:
    with pytest.raises(RootMismatch) as raised:
        verify_tlog_proof(_proof(4, 9, extra=LEAVES[4] + b" "), LOG_KEY.verifier_key)
    assert (raised.value.index, raised.value.size) == (4, 9)


def test_another_leafs_index_gives_another_root() -> None:
    proof = _proof(4, 8)
    moved = TlogProof(proof.extra, 5, proof.proof, proof.checkpoint)
    with pytest.raises(RootMismatch):
        verify_tlog_proof(moved, LOG_KEY.verifier_key)


def test_an_index_outside_the_checkpointed_tree_is_refused() -> None:
    proof = _proof(3, 4)
    beyond = TlogProof(proof.extra, 4, proof.proof, proof.checkpoint)
    with pytest.raises(ProofError) as raised:
        verify_tlog_proof(beyond, LOG_KEY.verifier_key)
    assert not isinstance(raised.value, RootMismatch)


def test_a_tampered_or_truncated_path_is_refused() -> None:
    proof = _proof(6, 11)
    flipped = (bytes([proof.proof[1][0] ^ 1]) + proof.proof[1][1:],)
    tampered = TlogProof(
        proof.extra, 6, proof.proof[:1] + flipped + proof.proof[2:], proof.checkpoint
    )
    with pytest.raises(RootMismatch):
        verify_tlog_proof(tampered, LOG_KEY.verifier_key)
    truncated = TlogProof(proof.extra, 6, proof.proof[:-1], proof.checkpoint)
    with pytest.raises(ProofError):
        verify_tlog_proof(truncated, LOG_KEY.verifier_key)


def test_a_proof_against_a_smaller_or_larger_checkpoint_is_refused() -> None:
    proof = _proof(2, 6)
    with pytest.raises(ProofError):
        verify_tlog_proof(
            TlogProof(proof.extra, 2, proof.proof, _signed_checkpoint(7)), LOG_KEY.verifier_key
        )


def test_the_checkpoint_must_be_signed_by_the_trusted_log_key() -> None:
    proof = _proof(0, 3)
    with pytest.raises(UnverifiedNote):
        verify_tlog_proof(proof, SignerKey.generate(ORIGIN).verifier_key)
    tampered = TlogProof(proof.extra, 0, proof.proof, proof.checkpoint.replace("\n3\n", "\n4\n"))
    with pytest.raises(BadSignature):
        verify_tlog_proof(tampered, LOG_KEY.verifier_key)


def test_a_checkpoint_of_another_origin_is_refused() -> None:
    other = SignerKey.from_seed("other.example/log", bytes(32))
    proof = _proof(0, 3)
    foreign = TlogProof(proof.extra, 0, proof.proof, _signed_checkpoint(3, other))
    with pytest.raises(UnverifiedNote):
        verify_tlog_proof(foreign, LOG_KEY.verifier_key)
    assert verify_tlog_proof(foreign, other.verifier_key).origin == "other.example/log"


def test_a_checkpoint_signed_by_a_key_not_named_after_its_origin_is_refused() -> None:
    other = SignerKey.from_seed("other.example/log", bytes(32))
    proof = _proof(0, 3)
    checkpoint_text = proof.checkpoint.split("\n\n")[0] + "\n"
    misnamed = TlogProof(proof.extra, 0, proof.proof, sign_note(checkpoint_text, [other]))
    with pytest.raises(OriginMismatch) as raised:
        verify_tlog_proof(misnamed, other.verifier_key)
    assert (raised.value.origin, raised.value.key_name) == (ORIGIN, "other.example/log")


_H = base64.b64encode(bytes(32)).decode()
_CP = "o\n1\n" + _H + "\n\n\u2014 o AAAAAAE=\n"  # a checkpoint note; parsing does not check it


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("", 1, id="empty"),
        pytest.param(f"c2sp.org/tlog-proof@v2\nindex 0\n\n{_CP}", 1, id="other-version"),
        pytest.param(f" {HEADER}\nindex 0\n\n{_CP}", 1, id="leading-space"),
        pytest.param(f"{HEADER}\n", 2, id="header-only"),
        pytest.param(f"{HEADER}\nextra \nindex 0\n\n{_CP}", 2, id="empty-extra"),
        pytest.param(f"{HEADER}\nextra AAE\nindex 0\n\n{_CP}", 2, id="unpadded-extra"),
        pytest.param(f"{HEADER}\nextra AAF=\nindex 0\n\n{_CP}", 2, id="non-canonical-extra"),
        pytest.param(f"{HEADER}\nextra\nindex 0\n\n{_CP}", 2, id="extra-without-space"),
        pytest.param(f"{HEADER}\nextra AAE=\n\n{_CP}", 3, id="no-index-after-extra"),
        pytest.param(f"{HEADER}\nextra AAE=\nextra AAE=\nindex 0\n\n{_CP}", 3, id="two-extras"),
        pytest.param(f"{HEADER}\n\n{_CP}", 2, id="no-index"),
        pytest.param(f"{HEADER}\nindex\n\n{_CP}", 2, id="index-without-number"),
        pytest.param(f"{HEADER}\nindex \n\n{_CP}", 2, id="index-empty"),
        pytest.param(f"{HEADER}\nindex 01\n\n{_CP}", 2, id="leading-zero"),
        pytest.param(f"{HEADER}\nindex -1\n\n{_CP}", 2, id="negative"),
        pytest.param(f"{HEADER}\nindex  1\n\n{_CP}", 2, id="two-spaces"),
        pytest.param(f"{HEADER}\nindex 1 \n\n{_CP}", 2, id="trailing-space"),
        pytest.param(f"{HEADER}\nindex {2**64}\n\n{_CP}", 2, id="over-uint64"),
        pytest.param(f"{HEADER}\nINDEX 1\n\n{_CP}", 2, id="upper-case"),
        pytest.param(f"{HEADER}\nindex 0\n{_H[:-1]}\n\n{_CP}", 3, id="unpadded-hash"),
        pytest.param(f"{HEADER}\nindex 0\n{_H}\nAAAA\n\n{_CP}", 4, id="short-hash"),
        pytest.param(f"{HEADER}\nindex 0\n{_H} \n\n{_CP}", 3, id="space-after-hash"),
        pytest.param(f"{HEADER}\nindex 0", 3, id="ends-after-index"),
        pytest.param(f"{HEADER}\nindex 0\n", 3, id="no-blank-line"),
        pytest.param(f"{HEADER}\nindex 0\n{_H}\n", 4, id="no-blank-line-after-hash"),
        pytest.param(f"{HEADER}\nindex 0\n\n", 4, id="no-checkpoint"),
        pytest.param(f"{HEADER}\nindex 0\n\n\n{_CP}", 4, id="two-blank-lines"),
        pytest.param(f"{HEADER}\nindex 0\n\no\n1", 4, id="checkpoint-without-newline"),
        pytest.param(f"{HEADER}\r\nindex 0\n\n{_CP}", 1, id="crlf"),
        pytest.param(f"{HEADER}\nindex 0\n\n{_CP}\t", 9, id="tab-in-checkpoint"),
        pytest.param(f"{HEADER}\nindex 0\n".encode() + b"\xff\n\n" + _CP.encode(), 3, id="utf8"),
        pytest.param(
            f"{HEADER}\nindex 0\n" + f"{_H}\n" * (MAX_PROOF_HASHES + 1) + f"\n{_CP}",
            3 + MAX_PROOF_HASHES,
            id="65-hashes",
        ),
    ],
)
def test_parse_refuses_malformed_proofs_at_their_line(text: str | bytes, line: int) -> None:
    with pytest.raises(MalformedProof) as raised:
        parse_tlog_proof(text)
    assert raised.value.line == line
    assert raised.value.where == f"line {line}"


def test_64_proof_hashes_parse() -> None:
    text = f"{HEADER}\nindex 0\n" + f"{_H}\n" * MAX_PROOF_HASHES + f"\n{_CP}"
    assert len(parse_tlog_proof(text).proof) == MAX_PROOF_HASHES


@pytest.mark.parametrize(
    ("kwargs", "line"),
    [
        pytest.param({"extra": b""}, 2, id="empty-extra"),
        pytest.param({"index": -1}, 3, id="negative-index"),
        pytest.param({"extra": None, "index": 2**64}, 2, id="huge-index-no-extra"),
        pytest.param({"index": False}, 3, id="bool-index"),
        pytest.param({"proof": (bytes(32), bytes(31))}, 5, id="short-hash"),
        pytest.param({"proof": (bytes(32),) * (MAX_PROOF_HASHES + 1)}, 68, id="65-hashes"),
        pytest.param({"checkpoint": ""}, 6, id="empty-checkpoint"),
        pytest.param({"checkpoint": "\no\n"}, 6, id="checkpoint-starts-blank"),
        pytest.param({"checkpoint": "o\n1"}, 6, id="checkpoint-without-newline"),
    ],
)
def test_tlog_proof_refuses_values_its_text_cannot_carry(kwargs: dict[str, Any], line: int) -> None:
    values: dict[str, Any] = {"extra": b"x", "index": 0, "proof": (bytes(32),), "checkpoint": _CP}
    with pytest.raises(MalformedProof) as raised:
        TlogProof(**(values | kwargs))
    assert raised.value.line == line


def test_a_proof_list_is_kept_as_a_tuple() -> None:
    proof = TlogProof(b"x", 0, [bytes(32)], _CP)  # type: ignore[arg-type]
    assert proof.proof == (bytes(32),)
    assert hash(proof) == hash(TlogProof(b"x", 0, (bytes(32),), _CP))


def test_offline_verification_modules_load_no_database_or_web_code() -> None:
    code = (
        "import sys, ledger.tlog_proof, ledger.checkpoint, ledger.note, ledger.keys; "
        "print(sorted(m for m in ('sqlalchemy', 'fastapi', 'psycopg', 'ledger.store') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
