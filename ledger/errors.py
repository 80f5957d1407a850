"""Errors of the ledger package.

LedgerError                  every ledger failure; ``where`` names the place
├── CanonicalizationError    a value RFC 8785 cannot encode (``where`` = JSON pointer)
├── InvalidTimestamp         a naive datetime, or text that is not a FORMATS time
├── AppendRefused            ``append`` refused an entry: unknown kind or invalid body (kind)
├── EntryNotFound            no entry at ``seq`` in the store
├── CorruptEntry             stored bytes at ``seq`` that are not an entry (``verify`` says more)
├── LedgerVerifyError        the first bad entry of a stream (seq, check, detail)
└── ProofError               an inclusion proof that cannot be evaluated (index, size)
    └── RootMismatch         a proof evaluates to another root (expected, calculated)
"""

from __future__ import annotations


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
    (the stored hash column disagrees with the stored bytes).
    """

    def __init__(self, *, seq: int, check: str, detail: str) -> None:
        super().__init__(
            f"ledger entry seq {seq}: check {check} failed: {detail}", where=f"seq {seq}"
        )
        self.seq = seq
        self.check = check
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
