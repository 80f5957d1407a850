r"""C2SP tlog-checkpoints (https://c2sp.org/tlog-checkpoint): signed tree heads. Pure: no I/O.

A checkpoint is a signed note (:mod:`ledger.note`) whose text is (FORMATS
section 3)::

    <origin>\n<tree size, decimal>\n<base64 (std, padded) of the 32-byte root>\n

optionally followed by non-empty extension lines. The origin identifies the
log; govex signs with a key named after it, and :func:`open_checkpoint`
verifies first (STYLE G6), then parses, then requires the origin to be the
verifying key's name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.errors import MalformedCheckpoint, OriginMismatch
from ledger.keys import decode_base64, encode_base64
from ledger.merkle import HASH_SIZE
from ledger.note import open_note, sign_note

if TYPE_CHECKING:
    from ledger.keys import SignerKey, VerifierKey

MAX_TREE_SIZE = 2**64 - 1
"""The largest tree size a checkpoint may state (Go parses it as a uint64)."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _check_line(value: str, *, line: int, what: str) -> None:
    """Private: refuse an empty line, a newline or another control character in it."""
    if not value:
        raise MalformedCheckpoint(f"the {what} line is empty", line=line)
    for char in value:
        if char < "\x20":
            raise MalformedCheckpoint(
                f"the {what} holds the control character U+{ord(char):04X}", line=line
            )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedCheckpoint(f"the {what} is not valid UTF-8", line=line) from None


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, RFC 9162 root and opaque extension lines.

    Raises :class:`MalformedCheckpoint` (line 1 origin, 2 size, 3 root, 4 on
    extensions) for values that the checkpoint text could not carry.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, line=1, what="origin")
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_TREE_SIZE:
            raise MalformedCheckpoint(
                f"tree size {self.size!r} is not an integer in [0, 2**64)", line=2
            )
        if len(self.root) != HASH_SIZE:
            raise MalformedCheckpoint(
                f"the root hash has {len(self.root)} bytes, want {HASH_SIZE}", line=3
            )
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for offset, extension in enumerate(self.extensions):
            _check_line(extension, line=4 + offset, what="extension")

    def text(self) -> str:
        """The note text: origin, size and base64 root lines, then the extensions."""
        head = f"{self.origin}\n{self.size}\n{encode_base64(self.root)}\n"
        return head + "".join(f"{extension}\n" for extension in self.extensions)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note *text* (not a signed note: see :func:`open_checkpoint`).

    Strict: at least three non-empty lines, each ending in a newline; a
    decimal size with no sign, space or leading zero; a canonical base64
    32-byte root. Raises :class:`MalformedCheckpoint` with the line.
    """
    if not text.endswith("\n"):
        raise MalformedCheckpoint(
            "the checkpoint text does not end in a newline", line=text.count("\n") + 1
        )
    lines = text[:-1].split("\n")
    for number, what in ((2, "tree size"), (3, "root hash")):
        if len(lines) < number:
            raise MalformedCheckpoint(f"the {what} line is missing", line=number)
    origin, size_text, root_text, *extensions = lines
    _check_line(origin, line=1, what="origin")
    if _DECIMAL.fullmatch(size_text) is None:
        raise MalformedCheckpoint(
            f"tree size {size_text!r} is not a decimal with no leading zero", line=2
        )
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise MalformedCheckpoint(f"tree size {size} is larger than 2**64 - 1", line=2)
    root = decode_base64(root_text)
    if root is None or len(root) != HASH_SIZE:
        raise MalformedCheckpoint(
            f"root hash {root_text!r} is not standard padded base64 of {HASH_SIZE} bytes",
            line=3,
        )
    return Checkpoint(origin, size, root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: SignerKey) -> str:
    """The signed note of ``checkpoint`` by ``signer``, whose name must be the origin.

    Raises :class:`OriginMismatch` when the key's name is not the origin.
    """
    if signer.name != checkpoint.origin:
        raise OriginMismatch(origin=checkpoint.origin, key_name=signer.name)
    return sign_note(checkpoint.text(), [signer])


def open_checkpoint(signed: str | bytes, verifier: VerifierKey) -> Checkpoint:
    """Verify ``signed`` with ``verifier``, then parse it and check its origin.

    Raises the :func:`~ledger.note.open_note` errors (the note is malformed,
    not signed by ``verifier``, or its signature does not verify), then
    :class:`MalformedCheckpoint`, then :class:`OriginMismatch` when the origin
    is not the verifier's name. Other signatures (witnesses) are ignored.
    """
    note = open_note(signed, [verifier])
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != verifier.name:
        raise OriginMismatch(origin=checkpoint.origin, key_name=verifier.name)
    return checkpoint
