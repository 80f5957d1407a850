"""What a verified chain proves, and how a broken link is reported. Pure, and light to import.

The sequential verifier (:mod:`ledger.verify`), the integrity scan
(:mod:`ledger.chain_scan`) and the store share these; the scan's worker
processes import nothing heavier.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import LedgerVerifyError


@dataclass(frozen=True)
class LedgerReport:
    """What a verified stream proves: its size, its RFC 9162 root and its last leaf hash."""

    size: int
    root: bytes
    head_leaf_hash: bytes | None  # None for an empty ledger

    @property
    def root_hex(self) -> str:
        return self.root.hex()


def broken_link(seq: int, prev: str, expected: str) -> LedgerVerifyError:
    """The error for entry ``seq`` whose ``prev`` is not ``expected``.

    A mismatch at entry ``k + 1`` is reported at seq ``k``: the entry whose
    bytes no longer hash to what its successor recorded (or else ``k + 1``'s
    ``prev`` was edited; the detail says both). A mismatch at seq 0 names seq 0.
    """
    if seq == 0:
        return LedgerVerifyError(
            seq=0, check="prev", detail=f"entry 0 has prev {prev}, want 64 zeros"
        )
    return LedgerVerifyError(
        seq=seq - 1,
        check="prev",
        detail=(
            f"entry {seq} has prev {prev} but leaf_hash(entry {seq - 1}) is "
            f"{expected}: entry {seq - 1} was altered, or entry {seq}'s prev was"
        ),
    )
