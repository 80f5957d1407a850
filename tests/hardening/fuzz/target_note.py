"""Fuzz target: any bytes as a signed note, a checkpoint, and a signer or verifier key text.

Documented failures only: ``open_note`` and ``open_checkpoint`` raise ``NoteError``
(malformed, unverified, bad signature, not a checkpoint, wrong origin),
``parse_checkpoint`` ``MalformedCheckpoint``, the key parsers ``KeyFormatError``. A note
that opens was signed by a trusted key over exactly its text.
"""

from __future__ import annotations

import contextlib
import json
import os
from functools import cache
from pathlib import Path

from ledger.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from ledger.errors import KeyFormatError, MalformedCheckpoint, NoteError
from ledger.keys import SignerKey, VerifierKey, parse_signer_key, parse_verifier_key
from ledger.note import open_note, sign_note

ORIGIN = "govex.fuzz/ledger"
LOG_KEY = SignerKey.from_seed(ORIGIN, bytes(range(32)))
WITNESS = SignerKey.from_seed("witness.fuzz", bytes(range(1, 33)))


@cache
def _vectors() -> list[dict[str, object]]:
    """The shared signed-note vectors, when the test passed their folder in the environment."""
    folder = os.environ.get("GOVEX_FUZZ_VECTORS")
    if not folder:
        return []
    cases: list[dict[str, object]] = json.loads(
        Path(folder, "note", "signed-notes.json").read_bytes()
    )
    return cases


@cache
def _trusted() -> tuple[VerifierKey, ...]:
    keys = [LOG_KEY.verifier_key, WITNESS.verifier_key]
    for case in _vectors():
        keys.extend(parse_verifier_key(str(text)) for text in case["verifier_keys"])  # type: ignore[attr-defined]
    unique = {(key.name, key.key_id): key for key in keys}
    return tuple(unique.values())


def prepare() -> None:
    _trusted()


def seeds() -> list[bytes]:
    checkpoint = Checkpoint(ORIGIN, 7, bytes(range(32)), ("extension line",))
    signed = sign_checkpoint(checkpoint, LOG_KEY)
    found = [
        signed.encode(),
        sign_note(checkpoint.text(), [LOG_KEY, WITNESS]).encode(),
        sign_note("just a note\n\nwith a blank line\n", [WITNESS]).encode(),
        checkpoint.text().encode(),
        LOG_KEY.verifier_key.text().encode(),
        LOG_KEY.text().encode(),
    ]
    found.extend(str(case["signed_note"]).encode() for case in _vectors())
    return found


def test_one_input(data: bytes) -> None:
    trusted = _trusted()
    try:
        note = open_note(data, trusted)
    except NoteError:
        pass
    else:
        by = {(key.name, key.key_id): key for key in trusted}
        verified = [s for s in note.signatures if s.verified]
        assert verified, "opened without a verified signature"
        for signature in verified:
            key = by[(signature.name, signature.key_id)]
            assert key.verify(note.text.encode("utf-8"), signature.signature)
    with contextlib.suppress(NoteError):
        open_checkpoint(data, LOG_KEY.verifier_key)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    with contextlib.suppress(MalformedCheckpoint):
        parse_checkpoint(text)
    with contextlib.suppress(KeyFormatError):
        parse_verifier_key(text)
    with contextlib.suppress(KeyFormatError):
        parse_signer_key(text)
