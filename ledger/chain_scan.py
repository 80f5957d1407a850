r"""The integrity scan of an export at hashing speed: framing, seq, prev, leaf hashes, roots.

:func:`ledger.verify.verify_entries` checks every line in full (JSON,
canonical form, schema, chain) at some tens of thousands of entries a second.
Tampering, though, is caught by the chain and the tree alone: an edited,
deleted, inserted or reordered entry breaks a ``prev`` link or the ``seq``
count, and a recomputed chain, a truncation or a fork changes the root at a
trusted checkpoint's size. :func:`scan_chain` checks exactly those, on the
exact bytes, without parsing JSON: because a line is canonical JSON whose
top-level keys are sorted (``body`` < ``kind`` < ``prev`` < ``seq`` < ``ts`` < ``v``),
everything after the body has one fixed shape, found from the end of the line
(inside the body, a quote is always escaped, and the top-level ``kind`` comes
last). It is what ``govex ledger verify --fast`` runs; a line it accepts may
still be ill-formed inside its body, which only the full check reports.
Pure: no I/O, ``O(log n)`` memory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger.errors import LedgerVerifyError
from ledger.merkle import EMPTY_ROOT
from ledger.verify import LedgerReport, broken_link

if TYPE_CHECKING:
    from collections.abc import Iterable

_START = b'{"body":{'
_SUFFIX_AT = b',"kind":"'
_SUFFIX = re.compile(
    rb',"kind":"[a-z]+(?:\.[a-z]+)*","prev":"([0-9a-f]{64})","seq":(0|[1-9][0-9]*),'
    rb'"ts":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z","v":1}\Z'
)


@dataclass(frozen=True)
class ScanReport:
    """What a scanned stream proves: size, root, last leaf hash, and the roots asked for."""

    size: int
    root: bytes
    head_leaf_hash: bytes | None
    roots: dict[int, bytes] = field(default_factory=dict)  # tree size -> root at that size


class ChainScanner:
    """Feeds leaf inputs (no newline) one at a time, as :class:`~ledger.verify.ChainVerifier`.

    Same interface and the same places in errors, minus the per-entry JSON
    checks: what ``verify_anchored(..., fast=True)`` runs.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # perfect subtrees, largest first
        self._expect = b"0" * 64
        self._head: bytes | None = None
        self.size = 0

    def feed(self, data: bytes) -> None:
        """Check the next leaf input and add it to the tree; :class:`LedgerVerifyError` if bad."""
        seq = self.size
        match = _SUFFIX.match(data, max(data.rfind(_SUFFIX_AT), 0))
        if match is None or not data.startswith(_START):
            raise LedgerVerifyError(seq=seq, check="json", detail=_framing_problem(data))
        prev, stated = match.groups()
        if int(stated) != seq:
            raise LedgerVerifyError(
                seq=seq, check="seq", detail=f"entry at position {seq} has seq {int(stated)}"
            )
        if prev != self._expect:
            raise broken_link(seq, prev.decode(), self._expect.decode())
        sha256 = hashlib.sha256
        head = sha256(b"\x00" + data).digest()
        self._head, self._expect = head, head.hex().encode("ascii")
        size, node, stack = 1, head, self._stack
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, node = left_size + size, sha256(b"\x01" + left + node).digest()
        stack.append((size, node))
        self.size = seq + 1

    def root(self) -> bytes:
        return _fold(self._stack) if self._stack else EMPTY_ROOT

    def report(self) -> LedgerReport:
        return LedgerReport(size=self.size, root=self.root(), head_leaf_hash=self._head)


def scan_chain(lines: Iterable[bytes], root_sizes: Iterable[int] = ()) -> ScanReport:
    r"""Scan an export (each item ``leaf_input + b"\n"``) and return its size and roots.

    ``root_sizes`` are tree sizes (checkpoints) whose roots the report must
    carry; sizes past the end are left out, so a caller sees a truncation.
    Raises :class:`LedgerVerifyError` at the first line that is not framed as
    an entry (check ``json``), has the wrong ``seq`` or a broken ``prev`` link,
    with the same place rules as :func:`ledger.verify.verify_entries`.
    """
    wanted = set(root_sizes)
    roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in wanted else {}
    # ChainScanner.feed, inlined for speed: this loop is what runs a million times.
    sha256, leaf_prefix, node_prefix = hashlib.sha256, hashlib.sha256(b"\x00"), b"\x01"
    match_suffix, start, suffix_at = _SUFFIX.match, _START, _SUFFIX_AT
    stack: list[tuple[int, bytes]] = []
    expect, head, seq = b"0" * 64, None, 0
    for line in lines:
        if not line.endswith(b"\n"):
            raise LedgerVerifyError(
                seq=seq,
                check="json",
                detail="line does not end with a newline: the export is truncated",
            )
        end = len(line) - 1
        match = match_suffix(line, max(line.rfind(suffix_at), 0), end)
        if match is None or not line.startswith(start):
            raise LedgerVerifyError(seq=seq, check="json", detail=_framing_problem(line[:end]))
        prev, stated = match.groups()
        if int(stated) != seq:
            raise LedgerVerifyError(
                seq=seq, check="seq", detail=f"entry at position {seq} has seq {int(stated)}"
            )
        if prev != expect:
            raise broken_link(seq, prev.decode(), expect.decode())
        hasher = leaf_prefix.copy()
        hasher.update(memoryview(line)[:end])
        head = hasher.digest()
        expect = hasher.hexdigest().encode("ascii")
        size, node = 1, head
        while stack and stack[-1][0] == size:
            left_size, left = stack.pop()
            size, node = left_size + size, sha256(node_prefix + left + node).digest()
        stack.append((size, node))
        seq += 1
        if seq in wanted:
            roots[seq] = _fold(stack)
    return ScanReport(
        size=seq, root=_fold(stack) if stack else EMPTY_ROOT, head_leaf_hash=head, roots=roots
    )


def _fold(stack: list[tuple[int, bytes]]) -> bytes:
    """Private: the root of the perfect subtrees on ``stack`` (as ``RootBuilder.root``)."""
    node = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        node = hashlib.sha256(b"\x01" + left + node).digest()
    return node


def _framing_problem(data: bytes) -> str:
    """Private: say why a leaf input is not framed as an entry."""
    if not data.startswith(_START):
        return 'line does not start with {"body":{ as a canonical entry does'
    return "line does not end with the canonical kind, prev, seq, ts and v fields"
