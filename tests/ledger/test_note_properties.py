"""Signed notes, checkpoints and tlog-proofs: text round trips, and one text per value.

For random values: sign then open gives the text back, a checkpoint parses back from its
text, a tlog-proof from its text. For random one-character edits of a valid text: either
the ledger's own error refuses it, or it means exactly what it says, so formatting the
parsed value gives the edited text back (no second spelling of one proof or signature).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import MAX_TREE_SIZE, Checkpoint, open_checkpoint, parse_checkpoint
from ledger.checkpoint import sign_checkpoint as sign
from ledger.errors import LedgerError, NoteError
from ledger.keys import SignerKey
from ledger.note import open_note, sign_note
from ledger.tlog_proof import TlogProof, format_tlog_proof, parse_tlog_proof

ORIGIN = "govex.test/ledger/notes"
KEYS = [SignerKey.from_seed(f"{ORIGIN}/{n}", bytes([n]) * 32) for n in range(3)]
LOG_KEY = SignerKey.from_seed(ORIGIN, bytes(range(32)))

# Note text: UTF-8 lines without control characters, each ending in a newline.
_line = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=30).filter(
    lambda line: "\n" not in line
)
note_texts = st.lists(_line, min_size=1, max_size=6).map(lambda lines: "\n".join(lines) + "\n")
_name_chars = st.characters(
    codec="utf-8", exclude_categories=["Cc", "Cs", "Zs", "Zl", "Zp"], exclude_characters="+"
)
origins = st.text(_name_chars, min_size=1, max_size=24)
hashes = st.binary(min_size=32, max_size=32)


def _edit(text: str, data: st.DataObject) -> str:
    at = data.draw(st.integers(0, len(text) - 1), label="at")
    char = data.draw(st.characters(codec="utf-8"), label="char")
    return text[:at] + char + text[at + 1 :]


@settings(max_examples=60)
@given(
    text=note_texts, signers=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True)
)
def test_a_signed_note_opens_to_its_text_with_any_one_of_its_keys(
    text: str, signers: list[SignerKey]
) -> None:
    signed = sign_note(text, signers)
    for signer in signers:
        note = open_note(signed, [signer.verifier_key])
        assert note.text == text
        assert note.verified_by == (signer.name,)
    assert open_note(signed, [s.verifier_key for s in signers]).text == text


@settings(max_examples=150)
@given(text=note_texts, data=st.data())
def test_an_edited_signed_note_is_refused_or_keeps_its_text(text: str, data: st.DataObject) -> None:
    _check_edited_note(text, data)


def _check_edited_note(text: str, data: st.DataObject) -> None:
    signed = sign_note(text, [KEYS[0], KEYS[1]])
    edited = _edit(signed, data)
    try:
        note = open_note(edited, [KEYS[0].verifier_key])
    except NoteError:
        return
    assert note.text == text  # only another key's signature line can change unnoticed
    assert note.verified_by == (KEYS[0].name,)


@settings(max_examples=100)
@given(
    origin=origins,
    size=st.integers(0, MAX_TREE_SIZE),
    root=hashes,
    extensions=st.lists(_line.filter(bool), max_size=3),
)
def test_a_checkpoint_parses_back_from_its_text_and_its_signed_note(
    origin: str, size: int, root: bytes, extensions: list[str]
) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint(checkpoint.text()) == checkpoint
    signer = SignerKey.from_seed(origin, bytes(32))
    assert open_checkpoint(sign(checkpoint, signer), signer.verifier_key) == checkpoint


@st.composite
def tlog_proofs(draw: st.DrawFn) -> TlogProof:
    size = draw(st.integers(1, MAX_TREE_SIZE))
    checkpoint = sign(Checkpoint(ORIGIN, size, draw(hashes)), LOG_KEY)
    return TlogProof(
        extra=draw(st.none() | st.binary(min_size=1, max_size=200)),
        index=draw(st.integers(0, size - 1)),
        proof=tuple(draw(st.lists(hashes, max_size=64))),
        checkpoint=checkpoint,
    )


@settings(max_examples=100)
@given(proof=tlog_proofs())
def test_a_tlog_proof_parses_back_from_its_text(proof: TlogProof) -> None:
    text = format_tlog_proof(proof)
    assert parse_tlog_proof(text) == proof
    assert parse_tlog_proof(text.encode("utf-8")) == proof


@settings(max_examples=200)
@given(proof=tlog_proofs(), data=st.data())
def test_an_edited_tlog_proof_is_refused_or_has_exactly_that_text(
    proof: TlogProof, data: st.DataObject
) -> None:
    _check_edited_tlog_proof(proof, data)


def _check_edited_tlog_proof(proof: TlogProof, data: st.DataObject) -> None:
    edited = _edit(format_tlog_proof(proof), data)
    try:
        parsed = parse_tlog_proof(edited)
    except LedgerError:
        return
    assert format_tlog_proof(parsed) == edited


# --- the soak twins (`make soak`): the same properties, many more examples --------------------


@pytest.mark.soak
@settings(max_examples=10_000)
@given(text=note_texts, data=st.data())
def test_soak_an_edited_signed_note_is_refused_or_keeps_its_text(
    text: str, data: st.DataObject
) -> None:
    _check_edited_note(text, data)


@pytest.mark.soak
@settings(max_examples=10_000)
@given(proof=tlog_proofs(), data=st.data())
def test_soak_an_edited_tlog_proof_is_refused_or_has_exactly_that_text(
    proof: TlogProof, data: st.DataObject
) -> None:
    _check_edited_tlog_proof(proof, data)
