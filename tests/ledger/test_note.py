from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest

from ledger.errors import BadSignature, MalformedNote, NoteError, UnverifiedNote
from ledger.keys import SignerKey, VerifierKey, parse_signer_key, parse_verifier_key
from ledger.note import MAX_SIGNATURES, NoteSignature, open_note, sign_note

if TYPE_CHECKING:
    from pathlib import Path

# The examples in the package documentation of golang.org/x/mod/sumdb/note (note.go).
GO_SIGNER_KEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
GO_SIGNED = GO_TEXT + "\n" + GO_PETER


def _vectors(vectors_dir: Path) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads(
        (vectors_dir / "note" / "signed-notes.json").read_text(encoding="utf-8")
    )
    assert cases, "no signed-note vectors"
    return cases


def _signers(case: dict[str, Any]) -> list[SignerKey]:
    return [
        SignerKey.from_seed(name, bytes.fromhex(seed))
        for name, seed in zip(case["key_names"], case["ed25519_seeds_hex"], strict=True)
    ]


@pytest.fixture
def signer() -> SignerKey:
    return SignerKey.from_seed("example.com/log", bytes(range(32)))


@pytest.fixture
def signed(signer: SignerKey) -> str:
    return sign_note("hello, world\n", [signer])


def test_every_vector_verifies_with_its_verifier_keys(vectors_dir: Path) -> None:
    for case in _vectors(vectors_dir):
        verifiers = [parse_verifier_key(text) for text in case["verifier_keys"]]
        for signed in (case["signed_note"], case["signed_note"].encode("utf-8")):
            note = open_note(signed, verifiers)
            assert note.text == case["text"], case["desc"]
            assert note.verified_by == tuple(case["key_names"]), case["desc"]
            assert all(signature.verified for signature in note.signatures), case["desc"]


def test_every_vector_verifies_with_each_of_its_keys_alone(vectors_dir: Path) -> None:
    for case in _vectors(vectors_dir):
        for name, text in zip(case["key_names"], case["verifier_keys"], strict=True):
            note = open_note(case["signed_note"], [parse_verifier_key(text)])
            assert note.verified_by == (name,), case["desc"]
            assert len(note.signatures) == len(case["key_names"]), case["desc"]


def test_signing_each_vector_text_gives_the_go_bytes(vectors_dir: Path) -> None:
    for case in _vectors(vectors_dir):
        assert sign_note(case["text"], _signers(case)) == case["signed_note"], case["desc"]


def test_signing_the_go_documentation_example_gives_its_bytes() -> None:
    signer = parse_signer_key(GO_SIGNER_KEY)
    assert sign_note(GO_TEXT, [signer]) == GO_SIGNED
    note = open_note(GO_SIGNED, [parse_verifier_key(GO_VERIFIER_KEY)])
    assert note.text == GO_TEXT
    assert note.verified_by == ("PeterNeumann",)
    assert note.signatures[0].key_id == bytes.fromhex("c74f20a3")


def test_unknown_keys_signatures_are_kept_but_not_counted() -> None:
    note = open_note(GO_SIGNED + GO_ENOCH, [parse_verifier_key(GO_VERIFIER_KEY)])
    assert note.verified_by == ("PeterNeumann",)
    assert [(s.name, s.verified) for s in note.signatures] == [
        ("PeterNeumann", True),
        ("EnochRoot", False),
    ]


def test_signature_lines_re_emit_the_signature_block(vectors_dir: Path) -> None:
    for case in _vectors(vectors_dir):
        note = open_note(case["signed_note"], [parse_verifier_key(case["verifier_keys"][0])])
        block = "".join(signature.line() for signature in note.signatures)
        assert note.text + "\n" + block == case["signed_note"], case["desc"]


def test_a_signature_is_the_key_id_then_ed25519_over_the_text(signer: SignerKey) -> None:
    signed = sign_note("x\n", [signer])
    line = signed.split("\n")[2]
    raw = base64.b64decode(line.split(" ")[2])
    assert line.startswith("\u2014 example.com/log ")
    assert raw[:4] == signer.key_id
    assert raw[4:] == signer.sign(b"x\n")


def test_no_signature_by_a_trusted_key_is_unverified(signed: str) -> None:
    stranger = SignerKey.generate("example.com/log").verifier_key  # same name, other key id
    with pytest.raises(UnverifiedNote) as raised:
        open_note(signed, [stranger])
    assert raised.value.trusted == (f"example.com/log+{stranger.key_id.hex()}",)
    assert len(raised.value.signed_by) == 1
    assert raised.value.where == "signatures"


def test_no_trusted_keys_at_all_is_unverified(signed: str) -> None:
    with pytest.raises(UnverifiedNote):
        open_note(signed, [])


def test_same_key_id_under_another_name_is_an_unknown_key(signer: SignerKey) -> None:
    renamed = VerifierKey("example.com/other", signer.verifier_key.public_key)
    with pytest.raises(UnverifiedNote):
        open_note(sign_note("x\n", [signer]), [renamed])


def test_tampered_text_is_a_bad_signature(signed: str, signer: SignerKey) -> None:
    with pytest.raises(BadSignature) as raised:
        open_note(signed.replace("hello", "Hello"), [signer.verifier_key])
    assert (raised.value.key_name, raised.value.key_id) == ("example.com/log", signer.key_id)
    assert raised.value.line == 3
    assert raised.value.where == "line 3"


def test_tampered_signature_is_a_bad_signature(signed: str, signer: SignerKey) -> None:
    text, line = signed[: signed.index("\u2014")], signed[signed.index("\u2014") :]
    name, data = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(data))
    raw[10] ^= 0x01
    forged = f"{text}{name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(BadSignature):
        open_note(forged, [signer.verifier_key])


def test_blank_line_added_before_the_signatures_changes_the_text(
    signed: str, signer: SignerKey
) -> None:
    with pytest.raises(BadSignature):
        open_note(signed.replace("\n\n", "\n\n\n"), [signer.verifier_key])


def test_blank_line_added_after_the_signatures_is_malformed(signed: str, signer: SignerKey) -> None:
    with pytest.raises(MalformedNote) as raised:
        open_note(signed + "\n", [signer.verifier_key])
    assert raised.value.line == 4


def test_blank_line_between_signatures_moves_one_into_the_text(vectors_dir: Path) -> None:
    case = next(c for c in _vectors(vectors_dir) if len(c["key_names"]) == 2)
    first, second = case["signed_note"].split("\n\n")[1].splitlines(keepends=True)
    spliced = case["text"] + "\n" + first + "\n" + second
    with pytest.raises(BadSignature) as raised:
        open_note(spliced, [parse_verifier_key(k) for k in case["verifier_keys"]])
    assert raised.value.key_name == "witness.example/w1"


def test_a_trusted_keys_repeated_signature_is_dropped_unchecked(
    signed: str, signer: SignerKey
) -> None:
    other = sign_note("other text\n", [signer]).split("\n\n")[1]
    note = open_note(signed + other, [signer.verifier_key])
    assert note.verified_by == ("example.com/log",)
    assert len(note.signatures) == 1


def test_a_repeated_unknown_signature_is_kept_once() -> None:
    note = open_note(GO_SIGNED + GO_ENOCH + GO_ENOCH, [parse_verifier_key(GO_VERIFIER_KEY)])
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]


def test_two_different_verifiers_with_one_name_and_key_id_are_refused(
    signed: str, signer: SignerKey
) -> None:
    impostor = SignerKey.generate("example.com/log").verifier_key
    object.__setattr__(impostor, "key_id", signer.key_id)  # a 32-bit collision, forced
    with pytest.raises(NoteError) as raised:
        open_note(signed, [signer.verifier_key, impostor])
    assert raised.value.where == "verifiers"


def test_the_same_verifier_twice_is_harmless(signed: str, signer: SignerKey) -> None:
    assert open_note(signed, [signer.verifier_key, signer.verifier_key]).verified_by == (
        "example.com/log",
    )


_SIG = "\u2014 example.com/log AAAAAAE=\n"  # a well-formed line by a key nobody trusts


@pytest.mark.parametrize(
    ("signed", "line"),
    [
        pytest.param("hello\n", 1, id="no-blank-line"),
        pytest.param("hello\n\n", 2, id="no-signature"),
        pytest.param("hello\n\n" + _SIG.rstrip("\n"), 3, id="no-final-newline"),
        pytest.param("hello\n\n- example.com/log AAAAAAE=\n", 3, id="hyphen-not-em-dash"),
        pytest.param("hello\n\n\u2014example.com/log AAAAAAE=\n", 3, id="no-space-after-dash"),
        pytest.param("hello\n\n\u2014 example.com/log\n", 3, id="no-signature-data"),
        pytest.param("hello\n\n\u2014 example.com/log \n", 3, id="empty-signature-data"),
        pytest.param("hello\n\n\u2014 a+b AAAAAAE=\n", 3, id="plus-in-name"),
        pytest.param("hello\n\n\u2014  AAAAAAE=\n", 3, id="empty-name"),
        pytest.param("hello\n\n\u2014 example.com/log AAAAAA==\n", 3, id="four-bytes"),
        pytest.param("hello\n\n\u2014 example.com/log AAAAAAE\n", 3, id="unpadded"),
        pytest.param("hello\n\n\u2014 example.com/log AAAAAAF=\n", 3, id="non-canonical"),
        pytest.param("hello\n\n\u2014 example.com/log AAAAAAE= \n", 3, id="trailing-space"),
        pytest.param("hello\n\n" + _SIG + "junk\n", 4, id="junk-after-signatures"),
        pytest.param("hel\rlo\n\n" + _SIG, 1, id="carriage-return"),
        pytest.param("hello\r\n\r\n" + _SIG, 1, id="crlf"),
        pytest.param("a\nb\tc\n\n" + _SIG, 2, id="tab"),
        pytest.param("a\n\x00\n\n" + _SIG, 2, id="nul"),
        pytest.param("a\n\ud800\n\n" + _SIG, 2, id="lone-surrogate"),
        pytest.param(b"a\nb\n\xff\n\n" + _SIG.encode(), 3, id="invalid-utf8"),
        pytest.param(b"a\n\xed\xa0\x80\n\n" + _SIG.encode(), 2, id="encoded-surrogate"),
        pytest.param(b"a\n\xc0\xaf\n\n" + _SIG.encode(), 2, id="overlong"),
    ],
)
def test_malformed_notes_name_the_line(signed: str | bytes, line: int, signer: SignerKey) -> None:
    with pytest.raises(MalformedNote) as raised:
        open_note(signed, [signer.verifier_key])
    assert raised.value.line == line
    assert raised.value.where == f"line {line}"


def _unknown_lines(count: int) -> str:
    return "".join(f"\u2014 witness{i}.example AAAAAAE=\n" for i in range(count))


def test_at_most_100_signatures(signed: str, signer: SignerKey) -> None:
    full = signed + _unknown_lines(MAX_SIGNATURES - 1)
    assert open_note(full, [signer.verifier_key]).verified_by == ("example.com/log",)
    with pytest.raises(MalformedNote) as raised:
        open_note(full + _unknown_lines(1), [signer.verifier_key])
    assert raised.value.line == 3 + MAX_SIGNATURES


def test_note_text_may_hold_and_end_in_blank_lines(signer: SignerKey) -> None:
    for text in ("\n", "a\n\nb\n", "a\n\n", "\n\n\n", "Ognuno sta solo\n\ned è subito sera.\n"):
        note = open_note(sign_note(text, [signer]), [signer.verifier_key])
        assert note.text == text


def test_a_text_line_that_looks_like_a_signature_stays_text(signer: SignerKey) -> None:
    text = "a\n\n\u2014 example.com/log AAAAAAE=\nb\n"
    assert open_note(sign_note(text, [signer]), [signer.verifier_key]).text == text


def test_multi_key_signatures_follow_the_signers_order(signer: SignerKey) -> None:
    witness = SignerKey.from_seed("witness.example/w1", bytes(32))
    signed = sign_note("x\n", [witness, signer])
    names = [line.split(" ")[1] for line in signed.split("\n\n")[1].splitlines()]
    assert names == ["witness.example/w1", "example.com/log"]
    note = open_note(signed, [signer.verifier_key, witness.verifier_key])
    assert note.verified_by == ("witness.example/w1", "example.com/log")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        pytest.param("", 1, id="empty"),
        pytest.param("no newline", 1, id="no-final-newline"),
        pytest.param("a\nb", 2, id="last-line-open"),
        pytest.param("a\nb\rc\n", 2, id="carriage-return"),
        pytest.param("a\x1b[31m\n", 1, id="escape"),
        pytest.param("a\n\udc80\n", 2, id="lone-surrogate"),
    ],
)
def test_sign_note_refuses_text_a_note_cannot_carry(
    text: str, line: int, signer: SignerKey
) -> None:
    with pytest.raises(MalformedNote) as raised:
        sign_note(text, [signer])
    assert raised.value.line == line


def test_sign_note_refuses_no_signer() -> None:
    with pytest.raises(NoteError) as raised:
        sign_note("x\n", [])
    assert raised.value.where == "signers"


def test_sign_note_refuses_a_key_twice(signer: SignerKey) -> None:
    with pytest.raises(NoteError) as raised:
        sign_note("x\n", [signer, SignerKey.from_seed(signer.name, bytes(range(32)))])
    assert raised.value.where == "signers"


def test_sign_note_refuses_more_signers_than_a_note_may_carry() -> None:
    signers = [SignerKey.from_seed(f"w{i}", bytes(32)) for i in range(MAX_SIGNATURES + 1)]
    with pytest.raises(NoteError) as raised:
        sign_note("x\n", signers)
    assert raised.value.where == "signers"
    assert len(sign_note("x\n", signers[:MAX_SIGNATURES]).splitlines()) == 2 + MAX_SIGNATURES


def test_note_signature_line_is_em_dash_name_and_base64() -> None:
    line = NoteSignature("n", b"\x01\x02\x03\x04", b"\xff", verified=False).line()
    assert line == "\u2014 n AQIDBP8=\n"
