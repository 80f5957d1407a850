r"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys. Pure: no I/O.

A signed note is the note *text* (ending in a newline), a blank line, then one
or more signature lines ``— <key name> <base64(4-byte key id || signature)>``
(U+2014 em dash, a space, the name, a space, the base64, a newline). The
whole note is UTF-8 with no ASCII control character other than the newline;
the text may hold empty lines, and ends at the *last* empty line. Each
signature is over the text bytes, final newline included.

:func:`sign_note` writes the same bytes as Go's ``golang.org/x/mod/sumdb/note``
``Sign``; :func:`open_note` follows its ``Open`` and verifies before it
returns any text (STYLE G6):

1. the note is UTF-8 without control characters other than ``\n``;
2. it splits at its last ``\n\n`` into text and a non-empty block of
   newline-terminated signature lines;
3. each line is ``— <valid key name> <canonical base64 of at least 5 bytes>``,
   and there are at most :data:`MAX_SIGNATURES` of them;
4. a signature by a trusted key (same name *and* key id) must verify, else
   :class:`~ledger.errors.BadSignature`; repeats by the same key are dropped
   unchecked, as Go does; signatures by unknown keys are kept, not counted;
5. at least one trusted key must have signed, else
   :class:`~ledger.errors.UnverifiedNote`.

Malformed input raises :class:`~ledger.errors.MalformedNote` with the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.errors import BadSignature, MalformedNote, NoteError, UnverifiedNote
from ledger.keys import KEY_ID_SIZE, decode_base64, encode_base64, is_valid_key_name

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ledger.keys import SignerKey, VerifierKey

MAX_SIGNATURES = 100
"""Most signature lines a note may carry (Go's limit; the spec asks for at least 16)."""

CONTROL_CHARACTER = re.compile("[\x00-\x09\x0b-\x1f]")
"""An ASCII control character other than the newline: no signed note holds one."""

SIGNATURE_PREFIX = "\u2014 "
"""An em dash (U+2014) and a space: how every signature line starts."""


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, 4-byte key id, signature bytes, and whether it verified.

    ``verified`` is false for a signature by a key the caller did not trust.
    """

    name: str
    key_id: bytes
    signature: bytes
    verified: bool

    def line(self) -> str:
        """The signature line, newline included: ``— <name> <base64(key id || signature)>``."""
        return f"{SIGNATURE_PREFIX}{self.name} {encode_base64(self.key_id + self.signature)}\n"


@dataclass(frozen=True)
class Note:
    """A note whose signatures :func:`open_note` checked.

    ``signatures`` lists every distinct signature in note order, unknown keys'
    included (``verified=False``); ``verified_by`` names the trusted keys that
    signed, in note order.
    """

    text: str
    signatures: tuple[NoteSignature, ...]
    verified_by: tuple[str, ...]


def _check_characters(data: bytes, *, context: str) -> str:
    """Private: ``data`` as text, or :class:`MalformedNote` at the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MalformedNote(f"{context} is not valid UTF-8", line=line) from None
    control = CONTROL_CHARACTER.search(text)
    if control is not None:
        line = text.count("\n", 0, control.start()) + 1
        raise MalformedNote(
            f"{context} holds the control character U+{ord(control.group()):04X}", line=line
        )
    return text


def _encode(text: str, *, context: str) -> bytes:
    """Private: the UTF-8 of ``text``; a lone surrogate is :class:`MalformedNote`."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        line = text.count("\n", 0, exc.start) + 1
        raise MalformedNote(f"{context} is not valid UTF-8", line=line) from None


def sign_note(text: str, signers: Sequence[SignerKey]) -> str:
    """The signed note: ``text``, a blank line, one signature line per signer, in order.

    Raises :class:`MalformedNote` when ``text`` does not end in a newline, is
    not UTF-8, or holds a control character other than the newline (a note
    with them could not be opened), and :class:`NoteError` (``where`` =
    ``signers``) for no signer, more than :data:`MAX_SIGNATURES`, or one key
    twice.
    """
    message = _encode(text, context="note text")
    _check_characters(message, context="note text")
    if not text.endswith("\n"):
        raise MalformedNote("note text must end in a newline", line=text.count("\n") + 1)
    if not signers:
        raise NoteError("a signed note needs at least one signer", where="signers")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(
            f"{len(signers)} signers, at most {MAX_SIGNATURES} signatures fit a note",
            where="signers",
        )
    seen: set[tuple[str, bytes]] = set()
    lines: list[str] = []
    for signer in signers:
        if (signer.name, signer.key_id) in seen:
            raise NoteError(
                f"key {signer.name}+{signer.key_id.hex()} is listed twice", where="signers"
            )
        seen.add((signer.name, signer.key_id))
        signature = NoteSignature(signer.name, signer.key_id, signer.sign(message), verified=True)
        lines.append(signature.line())
    return text + "\n" + "".join(lines)


def _trusted_keys(verifiers: Sequence[VerifierKey]) -> dict[tuple[str, bytes], VerifierKey]:
    """Private: verifiers by (name, key id); two different keys with one pair are refused."""
    trusted: dict[tuple[str, bytes], VerifierKey] = {}
    for verifier in verifiers:
        pair = (verifier.name, verifier.key_id)
        known = trusted.setdefault(pair, verifier)
        if known != verifier:
            raise NoteError(
                f"two different verifier keys share the name and key id "
                f"{verifier.name}+{verifier.key_id.hex()}",
                where="verifiers",
            )
    return trusted


def _parse_signature_line(line: str, *, number: int) -> tuple[str, bytes, bytes]:
    """Private: (name, key id, signature) of one signature line, or :class:`MalformedNote`."""
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNote(
            "a signature line starts with an em dash (U+2014) and a space", line=number
        )
    name, _, data = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
    if not is_valid_key_name(name):
        raise MalformedNote(f"signature key name {name!r} is not a valid key name", line=number)
    raw = decode_base64(data)
    if raw is None or len(raw) <= KEY_ID_SIZE:
        raise MalformedNote(
            "the signature is not standard padded base64 of a key id and a signature",
            line=number,
        )
    return name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]


def _split_note(whole: str) -> tuple[str, list[str], int]:
    """Private: the text, its signature lines and the first one's line number.

    The text ends at the last blank line; the signature block after it must be
    non-empty and end in a newline.
    """
    split = whole.rfind("\n\n")
    if split < 0:
        last_line = whole.count("\n", 0, len(whole) - 1) + 1
        raise MalformedNote("no blank line between the text and the signatures", line=last_line)
    text, block = whole[: split + 1], whole[split + 2 :]
    first_line = text.count("\n") + 2  # the text's lines, then the blank line
    if not block:
        raise MalformedNote("no signature line after the last blank line", line=first_line - 1)
    if not block.endswith("\n"):
        raise MalformedNote(
            "the last signature line does not end in a newline",
            line=first_line + block.count("\n"),
        )
    return text, block[:-1].split("\n"), first_line


def open_note(signed: str | bytes, verifiers: Sequence[VerifierKey]) -> Note:
    """Check ``signed`` against the trusted ``verifiers`` and return its text and signatures.

    Raises :class:`MalformedNote` (with the line), :class:`BadSignature` (a
    trusted key's signature that does not verify), :class:`UnverifiedNote` (no
    trusted key signed; always so for an empty ``verifiers``) or
    :class:`NoteError` (two different verifiers with one name and key id).
    """
    trusted = _trusted_keys(verifiers)
    message = signed if isinstance(signed, bytes) else _encode(signed, context="note")
    text, block, first_line = _split_note(_check_characters(message, context="note"))
    text_bytes = text.encode("utf-8")
    signatures: list[NoteSignature] = []
    verified_by: list[str] = []
    seen_lines: set[str] = set()
    seen_keys: set[tuple[str, bytes]] = set()
    for offset, line in enumerate(block):
        number = first_line + offset
        name, key_id, signature = _parse_signature_line(line, number=number)
        if offset >= MAX_SIGNATURES:
            raise MalformedNote(f"more than {MAX_SIGNATURES} signatures", line=number)
        verifier = trusted.get((name, key_id))
        if verifier is None:
            if line not in seen_lines:  # keep each unknown signature once
                seen_lines.add(line)
                signatures.append(NoteSignature(name, key_id, signature, verified=False))
            continue
        if (name, key_id) in seen_keys:  # Go drops a trusted key's repeats unchecked
            continue
        seen_keys.add((name, key_id))
        if not verifier.verify(text_bytes, signature):
            raise BadSignature(key_name=name, key_id=key_id, line=number)
        signatures.append(NoteSignature(name, key_id, signature, verified=True))
        verified_by.append(name)
    if not verified_by:
        raise UnverifiedNote(
            trusted=tuple(f"{name}+{key_id.hex()}" for name, key_id in trusted),
            signed_by=tuple(f"{sig.name}+{sig.key_id.hex()}" for sig in signatures),
        )
    return Note(text=text, signatures=tuple(signatures), verified_by=tuple(verified_by))
