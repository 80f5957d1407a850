"""Errors of the ledger package.

LedgerError                  every ledger failure; ``where`` names the place
├── CanonicalizationError    a value RFC 8785 cannot encode (``where`` = JSON pointer)
├── InvalidTimestamp         a naive datetime, or text that is not a FORMATS time
├── AppendRefused            ``append`` refused an entry: unknown kind or invalid body (kind)
├── EntryNotFound            no entry at ``seq`` in the store
├── CorruptEntry             stored bytes at ``seq`` that are not an entry (``verify`` says more)
├── LedgerVerifyError        the first bad entry of a stream (seq, check, detail)
│   ├── LedgerTruncated      fewer entries than a trusted checkpoint covers (size, checkpoint_size)
│   └── LedgerForked         entries whose root is not a trusted checkpoint's (start, stop, roots)
├── SchemaNotCurrent         the database is not at the code's schema revision (schema)
├── LedgerUnavailable        the store could not make an append durable: none acknowledged
│   └── LedgerStorageFull    ... because its storage is full (operation)
├── CheckpointRefused        no checkpoint for a tree that does not extend the last one (size)
├── NoteError                a C2SP key, signed note, checkpoint or tlog-proof refused (where)
│   ├── KeyFormatError       a signer or verifier key text not in signed-note form (field)
│   ├── MalformedNote        text that breaks the signed-note format (line)
│   ├── UnverifiedNote       no signature by a trusted key (trusted, signed_by)
│   ├── BadSignature         a signature by a trusted key that does not verify (key, line)
│   ├── CheckpointError      a note that is not the expected tlog-checkpoint
│   │   ├── MalformedCheckpoint  note text that is not a tlog-checkpoint (line)
│   │   └── OriginMismatch   the origin line is not the key's name (origin, key_name)
│   └── MalformedProof       a tlog-proof text that breaks the format (line)
└── ProofError               a Merkle proof that cannot be evaluated (index, size)
    ├── RootMismatch         an inclusion proof evaluates to another root (expected, calculated)
    └── ConsistencyProofError  a consistency proof that cannot be evaluated (size1, size2)
        └── ConsistencyMismatch  it gives another old or new root (which, expected, calculated)
"""

from __future__ import annotations

from typing import Literal


class LedgerError(Exception):
    """Base of every ledger error. ``where`` is a short machine-readable place."""

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class CanonicalizationError(LedgerError):
    """A value that RFC 8785 cannot encode: not JSON, a non-finite float, a huge integer."""


class InvalidTimestamp(LedgerError):
    """A datetime without a timezone, or text that is not ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""


class AppendRefused(LedgerError):
    """``append`` refused an entry before writing anything: unknown kind or invalid body."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message, where=f"kind {kind}")
        self.kind = kind


class EntryNotFound(LedgerError):
    """The store holds no entry at ``seq``."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"no ledger entry at seq {seq}", where=f"seq {seq}")
        self.seq = seq


class CorruptEntry(LedgerError):
    """The store holds bytes at ``seq`` that do not parse as an entry; ``verify`` says more."""

    def __init__(self, *, seq: int, detail: str) -> None:
        super().__init__(f"ledger entry seq {seq} is corrupt: {detail}", where=f"seq {seq}")
        self.seq = seq
        self.detail = detail


class LedgerVerifyError(LedgerError):
    """Verification stopped at the first bad entry.

    ``check`` is one of ``json``, ``canonical``, ``schema``, ``seq``, ``prev``
    (the order in which each line is checked) or, for a store, ``leaf_hash``
    (the stored hash column disagrees with the stored bytes); against trusted
    checkpoints, ``truncated`` and ``fork`` (the subclasses below).
    """

    def __init__(self, *, seq: int, check: str, detail: str) -> None:
        super().__init__(
            f"ledger entry seq {seq}: check {check} failed: {detail}", where=f"seq {seq}"
        )
        self.seq = seq
        self.check = check
        self.detail = detail


class LedgerTruncated(LedgerVerifyError):
    """The entries end before a trusted checkpoint's tree size; ``seq`` is the first missing one.

    A truncated tail, or a ledger rolled back to an older (consistent) prefix:
    ``size`` entries are present, the checkpoint covers ``checkpoint_size``.
    """

    def __init__(self, *, size: int, checkpoint_size: int, detail: str = "") -> None:
        super().__init__(
            seq=size,
            check="truncated",
            detail=detail
            or (
                f"a trusted checkpoint covers {checkpoint_size} entries but only {size} are "
                f"present: seq {size} is the first missing (the tail was truncated, or the "
                "ledger rolled back to an older prefix)"
            ),
        )
        self.size = size
        self.checkpoint_size = checkpoint_size


class LedgerForked(LedgerVerifyError):
    """The root of the first ``stop`` entries is not that of a trusted checkpoint of that size.

    Some entry in seq ``start`` .. ``stop - 1`` differs from the tree the
    checkpoint signed (``start`` is the largest size a trusted checkpoint
    matched, else 0): an entry changed and the chain recomputed after it, or a
    fork. ``expected`` is the checkpoint's root, ``calculated`` the entries'.
    ``start == stop`` means two trusted checkpoints of one size disagree.
    """

    def __init__(
        self, *, start: int, stop: int, expected: bytes, calculated: bytes, detail: str = ""
    ) -> None:
        super().__init__(
            seq=start,
            check="fork",
            detail=detail
            or (
                f"the first {stop} entries give root {calculated.hex()} but the trusted "
                f"checkpoint of size {stop} has root {expected.hex()}: an entry in seq "
                f"{start}..{stop - 1} differs from the tree it signed (changed and the chain "
                "recomputed, or a fork)"
            ),
        )
        self.where = f"seq {start}..{stop - 1}" if start < stop else f"tree size {stop}"
        self.start = start
        self.stop = stop
        self.expected = expected
        self.calculated = calculated


class NoteError(LedgerError):
    """A C2SP text (key, signed note, tlog-checkpoint, tlog-proof) that cannot be trusted or made.

    Raised as itself for a list of signers or verifiers that cannot work
    (``where`` = ``signers`` or ``verifiers``); the subclasses say more.
    """


class KeyFormatError(NoteError):
    """A signer or verifier key (text or parts) not in the signed-note form; never shows a secret.

    ``field`` is ``prefix``, ``name``, ``key id``, ``key data`` or ``algorithm``.
    """

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, where=f"key {field}")
        self.field = field


class MalformedNote(NoteError):
    """Text that breaks the signed-note format; ``line`` counts from 1 in the whole note."""

    def __init__(self, detail: str, *, line: int) -> None:
        super().__init__(f"signed note line {line}: {detail}", where=f"line {line}")
        self.line = line
        self.detail = detail


class UnverifiedNote(NoteError):
    """A well-formed note with no signature by any trusted key (``signed_by``: who did sign)."""

    def __init__(self, *, trusted: tuple[str, ...], signed_by: tuple[str, ...]) -> None:
        super().__init__(
            f"no signature by a trusted key (trusted: {', '.join(trusted) or 'none'}; "
            f"signed by: {', '.join(signed_by) or 'nobody'})",
            where="signatures",
        )
        self.trusted = trusted
        self.signed_by = signed_by


class BadSignature(NoteError):
    """A signature line by a trusted key (name and key id) that does not verify."""

    def __init__(self, *, key_name: str, key_id: bytes, line: int) -> None:
        super().__init__(
            f"signed note line {line}: the signature by key {key_name}+{key_id.hex()} "
            "does not verify",
            where=f"line {line}",
        )
        self.key_name = key_name
        self.key_id = key_id
        self.line = line


class CheckpointError(NoteError):
    """A note that is not the expected tlog-checkpoint."""


class MalformedCheckpoint(CheckpointError):
    """Note text that is not a tlog-checkpoint; ``line`` counts from 1 (1 = origin)."""

    def __init__(self, detail: str, *, line: int) -> None:
        super().__init__(f"checkpoint line {line}: {detail}", where=f"line {line}")
        self.line = line
        self.detail = detail


class OriginMismatch(CheckpointError):
    """A checkpoint whose origin line is not the name of the key that signs or verifies it."""

    def __init__(self, *, origin: str, key_name: str) -> None:
        super().__init__(
            f"checkpoint origin {origin!r} is not the key name {key_name!r}", where="origin"
        )
        self.origin = origin
        self.key_name = key_name


class MalformedProof(NoteError):
    """A tlog-proof text that breaks the format, or lacks the leaf a check needs (``line``)."""

    def __init__(self, detail: str, *, line: int) -> None:
        super().__init__(f"tlog-proof line {line}: {detail}", where=f"line {line}")
        self.line = line
        self.detail = detail


class ProofError(LedgerError):
    """An inclusion proof that cannot be evaluated: index out of range, bad length or hash size."""

    def __init__(self, message: str, *, index: int, size: int) -> None:
        super().__init__(message, where=f"leaf {index} of tree size {size}")
        self.index = index
        self.size = size


class RootMismatch(ProofError):
    """A well-formed proof that evaluates to a root other than the expected one."""

    def __init__(self, *, index: int, size: int, expected: bytes, calculated: bytes) -> None:
        super().__init__(
            f"inclusion proof for leaf {index} of tree size {size} gives root "
            f"{calculated.hex()}, expected {expected.hex()}",
            index=index,
            size=size,
        )
        self.expected = expected
        self.calculated = calculated


class ConsistencyProofError(ProofError):
    """A consistency proof that cannot be evaluated: sizes out of order, bad length or hash size.

    ``size1``/``size2`` are the old and new tree sizes; the inherited ``index``
    and ``size`` hold the same two numbers, so a handler of any
    :class:`ProofError` still reads a place.
    """

    def __init__(self, message: str, *, size1: int, size2: int) -> None:
        super().__init__(message, index=size1, size=size2)
        self.where = f"tree size {size1} to {size2}"
        self.size1 = size1
        self.size2 = size2


class ConsistencyMismatch(ConsistencyProofError):
    """A well-formed consistency proof that gives another old (``which="old"``) or new root."""

    def __init__(
        self,
        *,
        size1: int,
        size2: int,
        which: Literal["old", "new"],
        expected: bytes,
        calculated: bytes,
    ) -> None:
        super().__init__(
            f"consistency proof from tree size {size1} to {size2} gives {which} root "
            f"{calculated.hex()}, expected {expected.hex()}",
            size1=size1,
            size2=size2,
        )
        self.which = which
        self.expected = expected
        self.calculated = calculated


class SchemaNotCurrent(LedgerError):
    """The database's schema is not at the revision this code needs (``govex db upgrade``)."""

    def __init__(self, message: str, *, schema: str) -> None:
        super().__init__(message, where=f"schema {schema}")
        self.schema = schema


class LedgerUnavailable(LedgerError):
    """The store could not make an append durable; nothing was acknowledged (fail closed)."""

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(message, where=operation)
        self.operation = operation


class LedgerStorageFull(LedgerUnavailable):
    """The ledger's storage is full: appends are refused until space returns."""


class CheckpointRefused(LedgerError):
    """A checkpoint was not signed or stored: the tree is not an extension of the last one."""

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message, where=f"checkpoint size {size}")
        self.size = size
