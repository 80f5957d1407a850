from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

import pytest

from ledger.errors import KeyFormatError
from ledger.keys import (
    SignerKey,
    VerifierKey,
    decode_base64,
    encode_base64,
    is_valid_key_name,
    key_id,
    parse_signer_key,
    parse_verifier_key,
)

if TYPE_CHECKING:
    from pathlib import Path

# The example key pair in the package documentation of golang.org/x/mod/sumdb/note (note.go).
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"

SEED = bytes(range(32))
ED25519 = bytes([1])
OTHER_ALGORITHM = bytes([2])


def _vectors(vectors_dir: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(
        (vectors_dir / "note" / "signed-notes.json").read_text(encoding="utf-8")
    )
    assert cases, "no signed-note vectors"
    return cases


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_seeds_give_the_vectors_verifier_keys(vectors_dir: Path) -> None:
    for case in _vectors(vectors_dir):
        for name, seed_hex, expected in zip(
            case["key_names"], case["ed25519_seeds_hex"], case["verifier_keys"], strict=True
        ):
            signer = SignerKey.from_seed(name, bytes.fromhex(seed_hex))
            assert signer.verifier_key.text() == expected, case["desc"]
            assert parse_verifier_key(expected) == signer.verifier_key, case["desc"]


def test_key_id_is_the_first_four_bytes_of_sha256_of_name_newline_type_and_key() -> None:
    verifier = SignerKey.from_seed("example.com/log", SEED).verifier_key
    material = b"example.com/log\n\x01" + verifier.public_key
    assert verifier.key_id == hashlib.sha256(material).digest()[:4]
    assert key_id("example.com/log", verifier.public_key) == verifier.key_id
    assert verifier.text().split("+")[1] == verifier.key_id.hex()


def test_go_documentation_signer_key_gives_its_verifier_key() -> None:
    signer = parse_signer_key(GO_SIGNER_KEY)
    assert signer.name == "PeterNeumann"
    assert signer.key_id == bytes.fromhex("c74f20a3")
    assert signer.verifier_key.text() == GO_VERIFIER_KEY
    assert signer.text() == GO_SIGNER_KEY


def test_signer_key_text_is_go_form_with_type_byte_and_seed() -> None:
    signer = SignerKey.from_seed("govex.example/ledger/test", SEED)
    prefix, key, name, hex_id, data = signer.text().split("+", 4)
    assert (prefix, key, name, hex_id) == (
        "PRIVATE",
        "KEY",
        "govex.example/ledger/test",
        signer.key_id.hex(),
    )
    assert base64.b64decode(data) == b"\x01" + SEED


def test_verifier_key_text_is_name_id_and_type_byte_with_public_key() -> None:
    verifier = SignerKey.from_seed("n", SEED).verifier_key
    assert verifier.text() == f"n+{verifier.key_id.hex()}+{_b64(ED25519 + verifier.public_key)}"


def test_text_forms_round_trip() -> None:
    signer = SignerKey.generate("witness.example/w1")
    assert parse_signer_key(signer.text()) == signer
    assert parse_verifier_key(signer.verifier_key.text()) == signer.verifier_key


def test_equal_seeds_give_equal_hashable_keys() -> None:
    first, second = SignerKey.from_seed("a", SEED), SignerKey.from_seed("a", SEED)
    assert first == second
    assert len({first, second}) == 1
    assert SignerKey.from_seed("b", SEED) != first


def test_signatures_verify_only_for_the_same_message_and_key() -> None:
    signer = SignerKey.generate("a")
    signature = signer.sign(b"message")
    assert len(signature) == 64
    assert signer.verifier_key.verify(b"message", signature)
    assert not signer.verifier_key.verify(b"messagE", signature)
    assert not signer.verifier_key.verify(b"message", bytes([signature[0] ^ 1]) + signature[1:])
    assert not signer.verifier_key.verify(b"message", signature[:-1])
    assert not SignerKey.generate("a").verifier_key.verify(b"message", signature)


def test_signing_is_deterministic() -> None:
    signer = SignerKey.from_seed("a", SEED)
    assert signer.sign(b"m") == SignerKey.from_seed("a", SEED).sign(b"m")


def test_repr_never_shows_the_private_key() -> None:
    signer = SignerKey.from_seed("a", SEED)
    secret = signer.text().rsplit("+", 1)[1]
    for shown in (repr(signer), str(signer)):
        assert secret not in shown
        assert SEED.hex() not in shown
        assert "PRIVATE" not in shown


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        pytest.param("example.com/log", True, id="url"),
        pytest.param("ünïcode.example/日志", True, id="non-ascii"),
        pytest.param("zero\u200bwidth", True, id="u200b-is-not-a-space-in-go"),
        pytest.param("", False, id="empty"),
        pytest.param("a b", False, id="space"),
        pytest.param("a+b", False, id="plus"),
        pytest.param("a\tb", False, id="tab"),
        pytest.param("a\nb", False, id="newline"),
        pytest.param("a\x85b", False, id="next-line"),
        pytest.param("a\xa0b", False, id="no-break-space"),
        pytest.param("a\u2003b", False, id="em-space"),
        pytest.param("a\u3000b", False, id="ideographic-space"),
        pytest.param("a\x1cb", False, id="control-u001c"),
        pytest.param("a\x00b", False, id="nul"),
        pytest.param("a\ud800b", False, id="lone-surrogate"),
    ],
)
def test_key_names_follow_the_signed_note_rule(name: str, valid: bool) -> None:
    assert is_valid_key_name(name) is valid
    if valid:
        assert SignerKey.from_seed(name, SEED).name == name
    else:
        with pytest.raises(KeyFormatError) as raised:
            SignerKey.from_seed(name, SEED)
        assert raised.value.field == "name"


def test_from_seed_refuses_a_seed_that_is_not_32_bytes() -> None:
    with pytest.raises(KeyFormatError) as raised:
        SignerKey.from_seed("a", SEED[:31])
    assert raised.value.field == "key data"


def test_verifier_key_refuses_a_public_key_that_is_not_32_bytes() -> None:
    with pytest.raises(KeyFormatError) as raised:
        VerifierKey("a", b"\x00" * 33)
    assert raised.value.field == "key data"


_NAME, _ID, _DATA = GO_VERIFIER_KEY.split("+")
_PUBLIC = base64.b64decode(_DATA)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param("", "name", id="empty"),
        pytest.param(GO_SIGNER_KEY, "prefix", id="private-key"),
        pytest.param(f"+{_ID}+{_DATA}", "name", id="no-name"),
        pytest.param(f"{_NAME}", "key id", id="name-only"),
        pytest.param(f"{_NAME}+{_ID[:7]}+{_DATA}", "key id", id="short-id"),
        pytest.param(f"{_NAME}+{_ID}0+{_DATA}", "key id", id="long-id"),
        pytest.param(f"{_NAME}+c74f20ag+{_DATA}", "key id", id="non-hex-id"),
        pytest.param(f"{_NAME}+c74f20a4+{_DATA}", "key id", id="wrong-id"),
        pytest.param(f"Peter+{_ID}+{_DATA}", "key id", id="other-name"),
        pytest.param(f"{_NAME}+{_ID}+", "key data", id="no-data"),
        pytest.param(f"{_NAME}+{_ID}+{_DATA[:-1]}", "key data", id="unpadded"),
        pytest.param(f"{_NAME}+{_ID}+{_DATA} ", "key data", id="trailing-space"),
        pytest.param(f"{_NAME}+{_ID}+{_DATA}\n", "key data", id="trailing-newline"),
        pytest.param(
            f"{_NAME}+{_ID}+{_b64(OTHER_ALGORITHM + _PUBLIC[1:])}", "algorithm", id="algo-2"
        ),
        pytest.param(f"{_NAME}+{_ID}+{_b64(_PUBLIC + bytes(1))}", "key data", id="33-byte-key"),
        pytest.param(f"{_NAME}+{_ID}+{_b64(_PUBLIC[:-1])}", "key data", id="31-byte-key"),
        pytest.param(f"a b+{_ID}+{_DATA}", "name", id="space-in-name"),
    ],
)
def test_parse_verifier_key_names_the_wrong_field(text: str, field: str) -> None:
    with pytest.raises(KeyFormatError) as raised:
        parse_verifier_key(text)
    assert raised.value.field == field
    assert raised.value.where == f"key {field}"


def test_parse_verifier_key_accepts_an_upper_case_key_id_as_go_does() -> None:
    upper = f"{_NAME}+{_ID.upper()}+{_DATA}"
    assert parse_verifier_key(upper).text() == GO_VERIFIER_KEY


_SECRET = GO_SIGNER_KEY.split("+", 4)[4]
_SEED = base64.b64decode(_SECRET)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param(GO_VERIFIER_KEY, "prefix", id="verifier-key"),
        pytest.param(f"PRIVATE+KEY+{_SECRET}", "key id", id="no-name-or-id"),
        pytest.param(f"private+key+PeterNeumann+{_ID}+{_SECRET}", "prefix", id="lower-prefix"),
        pytest.param(f"PRIVATE+KEY+Peter+{_ID}+{_SECRET}", "key id", id="other-name"),
        pytest.param(f"PRIVATE+KEY+PeterNeumann+c74f20a4+{_SECRET}", "key id", id="wrong-id"),
        pytest.param(f"PRIVATE+KEY+PeterNeumann+{_ID}+{_SECRET}=", "key data", id="bad-base64"),
        pytest.param(
            f"PRIVATE+KEY+PeterNeumann+{_ID}+{_b64(OTHER_ALGORITHM + _SEED[1:])}",
            "algorithm",
            id="algo-2",
        ),
        pytest.param(
            f"PRIVATE+KEY+PeterNeumann+{_ID}+{_b64(_SEED[:-1])}", "key data", id="short-seed"
        ),
        pytest.param(f"PRIVATE+KEY+a b+{_ID}+{_SECRET}", "name", id="space-in-name"),
    ],
)
def test_parse_signer_key_names_the_wrong_field_without_the_secret(text: str, field: str) -> None:
    with pytest.raises(KeyFormatError) as raised:
        parse_signer_key(text)
    assert raised.value.field == field
    for secret_part in (_SECRET, _SECRET[:12], _SECRET[-12:], _SEED.hex()[:16]):
        assert secret_part not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        pytest.param("", b"", id="empty"),
        pytest.param("AAAA", b"\x00\x00\x00", id="no-padding-needed"),
        pytest.param("AAE=", b"\x00\x01", id="one-pad"),
        pytest.param("AQ==", b"\x01", id="two-pads"),
        pytest.param("AQ", None, id="missing-padding"),
        pytest.param("AQ=", None, id="short-padding"),
        pytest.param("AAAA=", None, id="extra-padding"),
        pytest.param("AR==", None, id="non-zero-unused-bits"),
        pytest.param("AA-_", None, id="url-alphabet"),
        pytest.param("AA AA", None, id="space"),
        pytest.param("AAAA\n", None, id="newline"),
        pytest.param("ÄAAA", None, id="non-ascii"),
    ],
)
def test_decode_base64_takes_only_canonical_standard_base64(
    text: str, decoded: bytes | None
) -> None:
    assert decode_base64(text) == decoded
    if decoded is not None:
        assert encode_base64(decoded) == text
