r"""Ledger export (FORMATS section 3): JSON Lines, line ``i`` = ``leaf_input(i) + b"\n"``."""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator


class LeafInputSource(Protocol):
    """Anything that streams stored entry bytes in seq order (a ``LedgerStore``)."""

    def iter_leaf_inputs(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]: ...


def export_lines(
    store: LeafInputSource, out: BinaryIO, *, start: int = 0, stop: int | None = None
) -> int:
    """Write entries ``[start, stop)`` of ``store`` to ``out`` as JSON Lines; return how many.

    Writes the stored bytes unchanged, one entry at a time (never the whole
    ledger in memory). Flushing and closing ``out`` is the caller's job.
    """
    count = 0
    for data in store.iter_leaf_inputs(start, stop):
        out.write(data + b"\n")
        count += 1
    return count
