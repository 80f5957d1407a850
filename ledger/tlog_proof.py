"""C2SP tlog-proofs (https://c2sp.org/tlog-proof): offline inclusion proofs. Pure: no I/O.

A ``.tlog-proof`` file (FORMATS section 4, "Inclusion proof file") is::

    c2sp.org/tlog-proof@v1
    extra <base64 of opaque data>          optional; govex puts the entry's leaf_input here
    index <zero-based leaf index, decimal>
    <base64 proof hash>                    zero or more lines, leaf side first (RFC 6962 2.1.1)

    <the signed checkpoint, verbatim>

The extra data is not authenticated: :func:`verify_tlog_proof` trusts it only
because its leaf hash must verify against a checkpoint signed by a trusted
key. Parsing is strict and raises :class:`~ledger.errors.MalformedProof` with
the line (counted from 1 in the file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.checkpoint import MAX_TREE_SIZE, open_checkpoint
from ledger.errors import MalformedProof
from ledger.keys import decode_base64, encode_base64
from ledger.merkle import HASH_SIZE, leaf_hash, verify_inclusion
from ledger.note import CONTROL_CHARACTER

if TYPE_CHECKING:
    from ledger.checkpoint import Checkpoint
    from ledger.keys import VerifierKey

HEADER = "c2sp.org/tlog-proof@v1"
"""The first line of every tlog-proof."""

MAX_PROOF_HASHES = 64
"""An inclusion proof in a tree of fewer than 2**64 leaves has at most 64 hashes."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class TlogProof:
    """The parts of a tlog-proof; ``checkpoint`` is the signed checkpoint note, verbatim.

    ``extra`` is ``None`` when there is no extra line (never empty bytes).
    Raises :class:`MalformedProof` (at the line the value would take) for
    values the text could not carry.
    """

    extra: bytes | None
    index: int
    proof: tuple[bytes, ...]
    checkpoint: str

    def __post_init__(self) -> None:
        index_line = 2 if self.extra is None else 3
        if self.extra is not None and not self.extra:
            raise MalformedProof("extra data is empty: leave the extra line out", line=2)
        if isinstance(self.index, bool) or not 0 <= self.index <= MAX_TREE_SIZE:
            raise MalformedProof(
                f"index {self.index!r} is not an integer in [0, 2**64)", line=index_line
            )
        object.__setattr__(self, "proof", tuple(self.proof))
        if len(self.proof) > MAX_PROOF_HASHES:
            raise MalformedProof(
                f"{len(self.proof)} proof hashes, at most {MAX_PROOF_HASHES}",
                line=index_line + MAX_PROOF_HASHES + 1,
            )
        for offset, node in enumerate(self.proof):
            if len(node) != HASH_SIZE:
                raise MalformedProof(
                    f"proof hash has {len(node)} bytes, want {HASH_SIZE}",
                    line=index_line + 1 + offset,
                )
        if not self.checkpoint.endswith("\n") or self.checkpoint.startswith("\n"):
            raise MalformedProof(
                "the checkpoint must be a signed note: non-empty, starting with its origin "
                "and ending in a newline",
                line=index_line + len(self.proof) + 2,
            )


def format_tlog_proof(proof: TlogProof) -> str:
    """The tlog-proof text of ``proof``."""
    lines = [HEADER]
    if proof.extra is not None:
        lines.append(f"extra {encode_base64(proof.extra)}")
    lines.append(f"index {proof.index}")
    lines.extend(encode_base64(node) for node in proof.proof)
    return "\n".join(lines) + "\n\n" + proof.checkpoint


def _as_text(data: str | bytes) -> str:
    """Private: ``data`` as text, refusing bad UTF-8 and control characters but the newline."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise MalformedProof("not valid UTF-8", line=line) from None
    else:
        text = data
    control = CONTROL_CHARACTER.search(text)
    if control is not None:
        line = text.count("\n", 0, control.start()) + 1
        raise MalformedProof(f"control character U+{ord(control.group()):04X}", line=line)
    return text


def _decimal(text: str, *, line: int) -> int:
    """Private: a leaf index with no sign, space or leading zero, below 2**64."""
    if _DECIMAL.fullmatch(text) is None or int(text) > MAX_TREE_SIZE:
        raise MalformedProof(
            f"index {text!r} is not a decimal below 2**64 with no leading zero", line=line
        )
    return int(text)


def parse_tlog_proof(text: str | bytes) -> TlogProof:
    """Parse a tlog-proof; the checkpoint is kept verbatim, checked by :func:`verify_tlog_proof`.

    Raises :class:`MalformedProof` with the line for: text that is not UTF-8
    or holds control characters, a wrong first line, an empty or
    non-canonical ``extra``, a missing or malformed ``index`` line, a proof
    line that is not base64 of 32 bytes, more than 64 of them, or no blank
    line and checkpoint after them.
    """
    # lines[n - 1] is line n; the last item is what follows the last newline.
    lines = _as_text(text).split("\n")
    if lines[0] != HEADER:
        raise MalformedProof(f"the first line must be {HEADER!r}", line=1)
    number = 2
    extra: bytes | None = None
    if number <= len(lines) and lines[number - 1].startswith("extra "):
        extra = decode_base64(lines[number - 1].removeprefix("extra "))
        if not extra:
            raise MalformedProof("extra data is not non-empty standard padded base64", line=2)
        number += 1
    if number > len(lines) or not lines[number - 1].startswith("index "):
        raise MalformedProof("expected the line 'index <decimal>'", line=number)
    index = _decimal(lines[number - 1].removeprefix("index "), line=number)
    number += 1
    proof: list[bytes] = []
    while number <= len(lines) and lines[number - 1]:
        if len(proof) == MAX_PROOF_HASHES:
            raise MalformedProof(f"more than {MAX_PROOF_HASHES} proof hashes", line=number)
        node = decode_base64(lines[number - 1])
        if node is None or len(node) != HASH_SIZE:
            raise MalformedProof(
                f"a proof line is standard padded base64 of {HASH_SIZE} bytes", line=number
            )
        proof.append(node)
        number += 1
    # Line `number` is now the blank line (or there is none); the checkpoint follows it verbatim.
    if len(lines) <= number:
        raise MalformedProof("no blank line and checkpoint after the proof", line=number)
    checkpoint = "\n".join(lines[number:])
    return TlogProof(extra=extra, index=index, proof=tuple(proof), checkpoint=checkpoint)


def verify_tlog_proof(
    proof: TlogProof, verifier: VerifierKey, leaf_input: bytes | None = None
) -> Checkpoint:
    """Check that the leaf is at ``proof.index`` in the tree of a checkpoint ``verifier`` signed.

    The leaf is ``leaf_input`` when given (the extra data is then ignored),
    else the extra data. Steps, each raising: open the checkpoint with
    ``verifier`` (:func:`~ledger.checkpoint.open_checkpoint` errors), take the
    leaf (:class:`MalformedProof` when there is none), hash it and verify the
    inclusion proof against the checkpoint's size and root
    (:class:`~ledger.errors.ProofError`, :class:`~ledger.errors.RootMismatch`).
    Returns the verified checkpoint.
    """
    checkpoint = open_checkpoint(proof.checkpoint, verifier)
    leaf = leaf_input if leaf_input is not None else proof.extra
    if leaf is None:
        raise MalformedProof(
            "no extra line holds the leaf, and no leaf input was given to check", line=2
        )
    verify_inclusion(proof.index, checkpoint.size, leaf_hash(leaf), proof.proof, checkpoint.root)
    return checkpoint
