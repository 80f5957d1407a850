from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest

from ledger.checkpoint import (
    Checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from ledger.errors import (
    BadSignature,
    CheckpointError,
    MalformedCheckpoint,
    MalformedNote,
    OriginMismatch,
    UnverifiedNote,
)
from ledger.keys import SignerKey, parse_verifier_key
from ledger.merkle import EMPTY_ROOT, leaf_hash, root_from_leaf_hashes
from ledger.note import open_note, sign_note

if TYPE_CHECKING:
    from pathlib import Path

ORIGIN = "govex.example/ledger/test"
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()
URL_SAFE_ROOT = base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode()  # "-" and "_", not "+" "/"

# The C2SP tlog-checkpoint example text (its signature cannot be checked: no key is published).
C2SP_EXAMPLE_TEXT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


def _checkpoint_vectors(vectors_dir: Path) -> dict[str, dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(
        (vectors_dir / "note" / "signed-notes.json").read_text(encoding="utf-8")
    )
    found = {case["desc"]: case for case in cases if case["text"].startswith(ORIGIN + "\n")}
    assert len(found) >= 3, "expected the checkpoint vectors"
    return found


@pytest.fixture
def log_key() -> SignerKey:
    return SignerKey.from_seed(ORIGIN, bytes(range(32)))


def test_checkpoint_vectors_open_to_their_size_and_root(vectors_dir: Path) -> None:
    cases = _checkpoint_vectors(vectors_dir)
    five = [leaf_hash(str(i).encode()) for i in range(5)]
    expected = {
        "checkpoint of an empty tree": (0, EMPTY_ROOT),
        'checkpoint over leaf inputs "0".."4"': (5, root_from_leaf_hashes(five)),
    }
    for desc, (size, root) in expected.items():
        case = cases[desc]
        checkpoint = open_checkpoint(
            case["signed_note"], parse_verifier_key(case["verifier_keys"][0])
        )
        assert (checkpoint.origin, checkpoint.size, checkpoint.root) == (ORIGIN, size, root), desc
        assert checkpoint.extensions == (), desc


def test_every_checkpoint_vector_opens_with_the_log_key_and_re_signs_byte_exactly(
    vectors_dir: Path,
) -> None:
    for desc, case in _checkpoint_vectors(vectors_dir).items():
        log_verifier = parse_verifier_key(case["verifier_keys"][0])
        checkpoint = open_checkpoint(case["signed_note"], log_verifier)
        assert checkpoint == parse_checkpoint(case["text"]), desc
        assert checkpoint.text() == case["text"], desc
        log_signer = SignerKey.from_seed(ORIGIN, bytes.fromhex(case["ed25519_seeds_hex"][0]))
        signed = sign_checkpoint(checkpoint, log_signer)
        if len(case["key_names"]) == 1:
            assert signed == case["signed_note"], desc
        else:  # cosigned by a witness: the log's own line comes first
            assert case["signed_note"].startswith(signed), desc


def test_a_witness_cosignature_is_ignored_by_open_checkpoint(vectors_dir: Path) -> None:
    case = _checkpoint_vectors(vectors_dir)["note signed by two keys"]
    log_verifier, witness = (parse_verifier_key(text) for text in case["verifier_keys"])
    assert open_checkpoint(case["signed_note"], log_verifier).size == 5
    with pytest.raises(OriginMismatch) as raised:  # a witness is not the log
        open_checkpoint(case["signed_note"], witness)
    assert (raised.value.origin, raised.value.key_name) == (ORIGIN, "witness.example/w1")


def test_text_is_origin_size_and_base64_root_lines() -> None:
    checkpoint = Checkpoint(ORIGIN, 7, ROOT)
    assert checkpoint.text() == f"{ORIGIN}\n7\n{ROOT_B64}\n"


def test_extension_lines_follow_the_root_and_round_trip() -> None:
    checkpoint = Checkpoint(ORIGIN, 7, ROOT, ("ext one", "ext two"))
    assert checkpoint.text() == f"{ORIGIN}\n7\n{ROOT_B64}\next one\next two\n"
    assert parse_checkpoint(checkpoint.text()) == checkpoint


def test_the_c2sp_example_text_parses() -> None:
    checkpoint = parse_checkpoint(C2SP_EXAMPLE_TEXT)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.text() == C2SP_EXAMPLE_TEXT


def test_sign_then_open_round_trips(log_key: SignerKey) -> None:
    checkpoint = Checkpoint(ORIGIN, 2**64 - 1, ROOT)
    assert open_checkpoint(sign_checkpoint(checkpoint, log_key), log_key.verifier_key) == (
        checkpoint
    )


def test_signing_with_a_key_not_named_after_the_origin_is_refused() -> None:
    other = SignerKey.from_seed("other.example/log", bytes(32))
    with pytest.raises(OriginMismatch) as raised:
        sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), other)
    assert (raised.value.origin, raised.value.key_name) == (ORIGIN, "other.example/log")
    assert raised.value.where == "origin"


def test_a_checkpoint_signed_by_a_key_with_another_name_is_refused() -> None:
    other = SignerKey.from_seed("other.example/log", bytes(32))
    signed = sign_note(Checkpoint(ORIGIN, 1, ROOT).text(), [other])
    with pytest.raises(OriginMismatch):
        open_checkpoint(signed, other.verifier_key)


def test_a_checkpoint_by_another_key_is_unverified(log_key: SignerKey) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), log_key)
    with pytest.raises(UnverifiedNote):
        open_checkpoint(signed, SignerKey.generate(ORIGIN).verifier_key)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("\n1\n", "\n2\n", id="size"),
        pytest.param(ROOT_B64[:4], "BBBB", id="root"),
        pytest.param(ORIGIN + "\n", ORIGIN + "2\n", id="origin"),
    ],
)
def test_a_tampered_checkpoint_is_a_bad_signature(log_key: SignerKey, old: str, new: str) -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), log_key)
    tampered = signed.replace(old, new, 1)
    assert tampered != signed
    with pytest.raises(BadSignature):
        open_checkpoint(tampered, log_key.verifier_key)


def test_signature_is_checked_before_the_text_is_parsed(log_key: SignerKey) -> None:
    stranger = SignerKey.from_seed(ORIGIN + "/x", bytes(32))
    with pytest.raises(UnverifiedNote):  # not MalformedCheckpoint: the text is not read
        open_checkpoint(sign_note("not a checkpoint\n", [stranger]), log_key.verifier_key)
    with pytest.raises(MalformedNote):
        open_checkpoint(Checkpoint(ORIGIN, 1, ROOT).text(), log_key.verifier_key)


def test_a_verified_note_that_is_not_a_checkpoint_is_malformed(log_key: SignerKey) -> None:
    signed = sign_note(f"{ORIGIN}\n", [log_key])
    assert open_note(signed, [log_key.verifier_key]).text == f"{ORIGIN}\n"
    with pytest.raises(MalformedCheckpoint) as raised:
        open_checkpoint(signed, log_key.verifier_key)
    assert raised.value.line == 2
    assert isinstance(raised.value, CheckpointError)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("", 1, id="empty"),
        pytest.param(f"{ORIGIN}\n1\n{ROOT_B64}", 3, id="no-final-newline"),
        pytest.param(f"{ORIGIN}\n", 2, id="origin-only"),
        pytest.param(f"{ORIGIN}\n1\n", 3, id="no-root"),
        pytest.param(f"\n1\n{ROOT_B64}\n", 1, id="empty-origin"),
        pytest.param(f"{ORIGIN}\n\n{ROOT_B64}\n", 2, id="empty-size"),
        pytest.param(f"{ORIGIN}\n01\n{ROOT_B64}\n", 2, id="leading-zero"),
        pytest.param(f"{ORIGIN}\n00\n{ROOT_B64}\n", 2, id="double-zero"),
        pytest.param(f"{ORIGIN}\n+1\n{ROOT_B64}\n", 2, id="plus-sign"),
        pytest.param(f"{ORIGIN}\n-1\n{ROOT_B64}\n", 2, id="negative"),
        pytest.param(f"{ORIGIN}\n 1\n{ROOT_B64}\n", 2, id="space"),
        pytest.param(f"{ORIGIN}\n1_0\n{ROOT_B64}\n", 2, id="underscore"),
        pytest.param(f"{ORIGIN}\n\u0661\n{ROOT_B64}\n", 2, id="arabic-digit"),
        pytest.param(f"{ORIGIN}\n0x1\n{ROOT_B64}\n", 2, id="hex"),
        pytest.param(f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n", 2, id="over-uint64"),
        pytest.param(f"{ORIGIN}\n1\n\n", 3, id="empty-root"),
        pytest.param(f"{ORIGIN}\n1\n{ROOT_B64[:-1]}\n", 3, id="unpadded-root"),
        pytest.param(f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", 3, id="short-root"),
        pytest.param(f"{ORIGIN}\n1\n{base64.b64encode(ROOT * 2).decode()}\n", 3, id="long-root"),
        pytest.param(f"{ORIGIN}\n1\n{URL_SAFE_ROOT}\n", 3, id="url-safe-base64"),
        pytest.param(f"{ORIGIN}\n1\n{ROOT_B64}\n\n", 4, id="empty-extension"),
        pytest.param(f"{ORIGIN}\n1\n{ROOT_B64}\next\n\n", 5, id="empty-second-extension"),
        pytest.param(f"{ORIGIN}\r\n1\n{ROOT_B64}\n", 1, id="carriage-return"),
    ],
)
def test_parse_refuses_malformed_text_at_its_line(text: str, line: int) -> None:
    with pytest.raises(MalformedCheckpoint) as raised:
        parse_checkpoint(text)
    assert raised.value.line == line
    assert raised.value.where == f"line {line}"


@pytest.mark.parametrize(
    ("kwargs", "line"),
    [
        pytest.param({"origin": ""}, 1, id="empty-origin"),
        pytest.param({"origin": "a\nb"}, 1, id="newline-in-origin"),
        pytest.param({"size": -1}, 2, id="negative-size"),
        pytest.param({"size": 2**64}, 2, id="huge-size"),
        pytest.param({"size": True}, 2, id="bool-size"),
        pytest.param({"root": ROOT[:31]}, 3, id="short-root"),
        pytest.param({"extensions": ("",)}, 4, id="empty-extension"),
        pytest.param({"extensions": ("a", "b\nc")}, 5, id="newline-in-extension"),
    ],
)
def test_checkpoint_refuses_values_its_text_cannot_carry(kwargs: dict[str, Any], line: int) -> None:
    values: dict[str, Any] = {"origin": ORIGIN, "size": 1, "root": ROOT, **kwargs}
    with pytest.raises(MalformedCheckpoint) as raised:
        Checkpoint(**values)
    assert raised.value.line == line
