r"""Offline verification of a ledger entry stream (FORMATS section 3). Pure: no I/O.

:func:`verify_entries` reads an export line by line (each line is
``leaf_input + b"\n"``), never holding more than one line and ``O(log n)``
tree hashes, and stops at the FIRST bad entry with a
:class:`~ledger.errors.LedgerVerifyError` naming its seq and the check. Each
line is checked in this order:

1. ``json``       the line is complete (ends in ``\n``), UTF-8, and parses as
                  JSON without duplicate keys or NaN/Infinity
2. ``canonical``  its bytes are exactly the JCS bytes of what it parses to
3. ``schema``     it is an :class:`~ledger.entry.Entry` whose body fits its kind
4. ``seq``        its ``seq`` is its position: counting from 0, no gap, no swap
5. ``prev``       its ``prev`` is the hex of ``leaf_hash`` of the entry before it
                  (64 zeros for seq 0)

A ``prev`` mismatch at entry ``k + 1`` is reported at seq ``k``: the entry
whose bytes no longer hash to what its successor recorded (or else ``k + 1``'s
``prev`` was edited; the detail says both). A mismatch at seq 0 names seq 0.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ledger.canonical import jcs, parse_json_int
from ledger.chain import LedgerReport, broken_link
from ledger.entry import ZERO_PREV, Entry, explain
from ledger.errors import CanonicalizationError, LedgerVerifyError
from ledger.merkle import RootBuilder, leaf_hash

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

CHECKS = ("json", "canonical", "schema", "seq", "prev")


class _DuplicateKeyError(ValueError):
    """Private: a JSON object with the same key twice."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Private ``object_pairs_hook``: refuse duplicate keys instead of keeping the last."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _refuse_constant(name: str) -> Any:  # noqa: ANN401 - json's parse_constant hook
    """Private ``parse_constant`` hook: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not JSON")


def _first_difference(a: bytes, b: bytes) -> int:
    """Private: offset of the first byte where ``a`` and ``b`` differ."""
    for offset, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return offset
    return min(len(a), len(b))


def parse_leaf_input(data: bytes, *, seq: int) -> Entry:
    """Checks ``json``, ``canonical`` and ``schema`` of one leaf input (no newline): the entry.

    The checks of a single entry, without its place in a chain; ``seq`` is
    only the place an error names. Raises :class:`LedgerVerifyError`.
    """
    try:
        obj = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_constant=_refuse_constant,
            parse_int=parse_json_int,  # an integral double past 2**53 is JCS digits
        )
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise LedgerVerifyError(seq=seq, check="json", detail=str(exc)) from exc
    try:
        canonical = jcs(obj, where=f"line {seq}")
    except CanonicalizationError as exc:
        raise LedgerVerifyError(seq=seq, check="canonical", detail=exc.message) from exc
    if canonical != data:
        raise LedgerVerifyError(
            seq=seq,
            check="canonical",
            detail=f"bytes differ from JCS at offset {_first_difference(data, canonical)}",
        )
    try:
        return Entry.model_validate(obj)
    except ValidationError as exc:
        raise LedgerVerifyError(seq=seq, check="schema", detail=explain(exc)) from exc


class ChainVerifier:
    """Checks leaf inputs one at a time, in order; :meth:`report` summarizes what was fed.

    :func:`verify_entries` drives it over an export; the store drives it over
    its rows and adds checks of its own between two entries.
    """

    def __init__(self) -> None:
        self._tree = RootBuilder()
        self._prev = ZERO_PREV
        self._head: bytes | None = None

    @property
    def size(self) -> int:
        return self._tree.size

    def feed(self, data: bytes) -> Entry:
        """Check the next leaf input (no newline) and add it to the tree.

        Raises :class:`LedgerVerifyError` naming the first failing check.
        """
        seq = self._tree.size
        entry = parse_leaf_input(data, seq=seq)
        if entry.seq != seq:
            raise LedgerVerifyError(
                seq=seq, check="seq", detail=f"entry at position {seq} has seq {entry.seq}"
            )
        if entry.prev != self._prev:
            raise broken_link(seq, entry.prev, self._prev)
        self._head = leaf_hash(data)
        self._prev = self._head.hex()
        self._tree.append(self._head)
        return entry

    def report(self) -> LedgerReport:
        return LedgerReport(size=self._tree.size, root=self._tree.root(), head_leaf_hash=self._head)


def verify_entries(lines: Iterable[bytes]) -> LedgerReport:
    r"""Verify an export: each item is one line, ``leaf_input + b"\n"`` (a binary file iterates so).

    Returns the size, root and head leaf hash of the verified ledger. Raises
    :class:`LedgerVerifyError` at the first bad line; a last line without its
    newline (a truncated file) fails check ``json`` at its seq.
    """
    verifier = ChainVerifier()
    for data in export_leaf_inputs(lines):
        verifier.feed(data)
    return verifier.report()


def export_leaf_inputs(lines: Iterable[bytes]) -> Iterator[bytes]:
    r"""The leaf inputs of an export's lines, each without its ``b"\n"``.

    Raises :class:`LedgerVerifyError` (check ``json``, at the line's seq) for a
    line that does not end in a newline: the export was cut short.
    """
    for seq, line in enumerate(lines):
        if not line.endswith(b"\n"):
            raise LedgerVerifyError(
                seq=seq,
                check="json",
                detail="line does not end with a newline: the export is truncated",
            )
        yield line[:-1]
