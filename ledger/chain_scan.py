r"""The integrity scan of an export: framing, JSON, seq, prev, leaf hashes, roots.

It runs the checks FORMATS section 3 gives an auditor (each line parses,
``seq`` counts up from 0 with no gap, ``prev`` links hold, the recomputed root
matches a trusted checkpoint), at hashing speed. :func:`ledger.verify.verify_entries`
adds each entry's canonical form and schema, at some tens of thousands of
entries a second. Tampering is caught by the chain and the tree alone: an
edited, deleted, inserted or reordered entry breaks a ``prev`` link or the
``seq`` count, and a recomputed chain, a truncation or a fork changes the root
at a trusted checkpoint's size.

The top level of a line is read from its exact bytes: a line is canonical
JSON whose top-level keys are sorted (``body`` < ``kind`` < ``prev`` < ``seq``
< ``ts`` < ``v``), so everything after the body has one fixed shape, found
from the end of the line (inside the body a quote is always escaped, and the
top-level ``kind`` comes last). What lies between ``{"body":`` and that tail
must parse, alone, as one JSON object (valid UTF-8, no NaN): so the line is
one JSON object with exactly those six members, none twice, and no parser can
read another ``seq`` or ``prev`` out of it. simdjson validates a body without
building Python objects, several times faster than a full decode; a refused
body is decoded again to name the byte where it goes wrong. Pure: no I/O,
``O(log n)`` memory.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
import simdjson

from ledger.chain import broken_link
from ledger.errors import LedgerVerifyError
from ledger.merkle import EMPTY_ROOT

if TYPE_CHECKING:
    from collections.abc import Iterable

_START = b'{"body":{'
_BODY_AT = len(b'{"body":')
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


def scan_chain(lines: Iterable[bytes], root_sizes: Iterable[int] = ()) -> ScanReport:
    r"""Scan an export (each item ``leaf_input + b"\n"``) and return its size and roots.

    ``root_sizes`` are tree sizes (checkpoints) whose roots the report must
    carry; sizes past the end are left out, so a caller sees a truncation.
    Raises :class:`LedgerVerifyError` at the first line that is not framed as
    an entry or whose body is not JSON (check ``json``), has the wrong ``seq``
    or a broken ``prev`` link, with the same place rules as
    :func:`ledger.verify.verify_entries`.
    """
    wanted = frozenset(root_sizes)
    scanned = scan_range(lines, wanted, start=(0, ZERO_PREV_ASCII))
    roots = {size: _fold(subtrees) for size, subtrees in scanned.snapshots.items()}
    if 0 in wanted:
        roots[0] = EMPTY_ROOT
    return ScanReport(
        size=scanned.size,
        root=_fold(scanned.subtrees),
        head_leaf_hash=scanned.head,
        roots=roots,
    )


Subtree = tuple[int, int, bytes]  # (first leaf, leaf count, hash): a perfect, aligned subtree
ZERO_PREV_ASCII = b"0" * 64


@dataclass(frozen=True)
class ScannedRange:
    """What a stretch of consecutive lines gives, as the lines themselves state it.

    ``first_seq`` and ``first_prev`` are what its first line states (``None``
    for no line): a caller joining stretches checks them against the stretch
    before. ``subtrees`` cover leaves ``first_seq .. first_seq + size - 1`` as
    aligned perfect subtrees, left to right; ``snapshots`` hold the subtrees
    at each wanted tree size the stretch reached.
    """

    first_seq: int | None
    first_prev: bytes | None  # hex, ASCII
    size: int
    head: bytes | None
    subtrees: list[Subtree]
    snapshots: dict[int, list[Subtree]]


def scan_range(  # noqa: C901 - the hot loop, inlined on purpose (a call per line costs)
    lines: Iterable[bytes],
    wanted: frozenset[int] = frozenset(),
    *,
    start: tuple[int, bytes] | None,
) -> ScannedRange:
    r"""Scan consecutive lines (each ``leaf_input + b"\n"``); the loop every scan runs.

    ``start`` is the ``(seq, prev hex)`` the first line must state; ``None``
    takes them from the first line (a stretch in the middle of an export,
    checked by whoever joins it to the stretch before). Raises
    :class:`LedgerVerifyError` at the first bad line, numbered from the
    first line's seq.
    """
    # One inlined loop: it runs a million times, and a call per line costs.
    sha256, leaf_prefix, node_prefix = hashlib.sha256, hashlib.sha256(b"\x00"), b"\x01"
    match_suffix, body_start, suffix_at = _SUFFIX.match, _START, _SUFFIX_AT
    parse = simdjson.Parser().parse  # one parser per scan: it reuses its buffers
    stack: list[Subtree] = []
    snapshots: dict[int, list[Subtree]] = {}
    first_seq: int | None = None
    first_prev: bytes | None = None
    seq, expect = start if start is not None else (0, None)
    head: bytes | None = None
    for line in lines:
        if not line.endswith(b"\n"):
            raise LedgerVerifyError(
                seq=seq,
                check="json",
                detail="line does not end with a newline: the export is truncated",
            )
        end = len(line) - 1
        tail = max(line.rfind(suffix_at), 0)
        match = match_suffix(line, tail, end)
        if match is None or not line.startswith(body_start):
            raise LedgerVerifyError(seq=seq, check="json", detail=_framing_problem(line[:end]))
        body = line[_BODY_AT:tail]
        try:
            parse(body)
        except ValueError:  # UnicodeDecodeError included
            raise _body_not_json(seq, body) from None
        prev, stated_text = match.groups()
        stated = int(stated_text)
        if first_seq is None:
            first_seq, first_prev = stated, prev
            if start is None:
                seq, expect = stated, prev
        if stated != seq:
            raise LedgerVerifyError(
                seq=seq, check="seq", detail=f"entry at position {seq} has seq {stated}"
            )
        if prev != expect:
            raise broken_link(seq, prev.decode(), (expect or b"").decode())
        hasher = leaf_prefix.copy()
        hasher.update(memoryview(line)[:end])
        head = hasher.digest()
        expect = hasher.hexdigest().encode("ascii")
        first, size, node = seq, 1, head
        while stack:
            left_first, left_size, left = stack[-1]
            if left_size != size or left_first % (size << 1):
                break
            stack.pop()
            first, size, node = left_first, size << 1, sha256(node_prefix + left + node).digest()
        stack.append((first, size, node))
        seq += 1
        if seq in wanted:
            snapshots[seq] = stack.copy()
    return ScannedRange(
        first_seq=first_seq,
        first_prev=first_prev,
        size=0 if first_seq is None else seq - first_seq,
        head=head,
        subtrees=stack,
        snapshots=snapshots,
    )


def join_subtrees(left: list[Subtree], right: list[Subtree]) -> list[Subtree]:
    """The aligned subtrees of two adjacent stretches (``right`` starts where ``left`` ends)."""
    stack = left.copy()
    for subtree in right:
        first, size, node = subtree
        while stack:
            left_first, left_size, left_node = stack[-1]
            if left_size != size or left_first % (size << 1):
                break
            stack.pop()
            first, size = left_first, size << 1
            node = hashlib.sha256(b"\x01" + left_node + node).digest()
        stack.append((first, size, node))
    return stack


def root_of(subtrees: list[Subtree]) -> bytes:
    """The RFC 9162 root of the leaves ``subtrees`` cover; they must start at leaf 0."""
    return _fold(subtrees)


def _fold(stack: list[Subtree]) -> bytes:
    """Private: the root of the perfect subtrees on ``stack``, from leaf 0 (as ``RootBuilder``)."""
    if not stack:
        return EMPTY_ROOT
    node = stack[-1][2]
    for _, _, left in reversed(stack[:-1]):
        node = hashlib.sha256(b"\x01" + left + node).digest()
    return node


def _body_not_json(seq: int, body: bytes) -> LedgerVerifyError:
    """Private: the ``json`` error for a body simdjson refused, at its offset in the line."""
    try:
        body.decode("utf-8")
        orjson.loads(body)
    except UnicodeDecodeError as exc:
        where = f"invalid UTF-8 at byte {_BODY_AT + exc.start} of the line"
    except orjson.JSONDecodeError as exc:
        where = f"{exc.msg} at byte {_BODY_AT + exc.pos} of the line"
    else:  # orjson is laxer somewhere (it takes what simdjson refused): say what simdjson said
        try:
            simdjson.Parser().parse(body)
        except ValueError as exc:
            where = str(exc)
        else:
            where = "refused by the JSON parser"
    return LedgerVerifyError(seq=seq, check="json", detail=f"body is not one JSON object: {where}")


def _framing_problem(data: bytes) -> str:
    """Private: say why a leaf input is not framed as an entry."""
    if not data.startswith(_START):
        return 'line does not start with {"body":{ as a canonical entry does'
    return "line does not end with the canonical kind, prev, seq, ts and v fields"
