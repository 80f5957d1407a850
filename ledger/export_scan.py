"""The integrity scan of an export file, split across processes.

:func:`ledger.chain_scan.scan_chain` is one loop over every line; on a large
export the work (parsing each body, hashing each line) is spread over
``jobs`` processes instead. The file is cut into byte ranges at line
boundaries; each range is scanned on its own (:func:`~ledger.chain_scan.scan_range`,
taking its first seq and ``prev`` from its first line), and the ranges are
joined in order: each must start at the seq the ranges before it ended on,
with the ``prev`` of the last leaf before it, and their aligned subtrees join
into the tree of the whole export.

Errors keep exactly the sequential semantics: when any range fails or two
ranges do not join, the file is scanned again from its first line in one
process, which raises the first error at its exact place (or, should the
ranges have disagreed over nothing, returns the same report). Memory stays
``O(log n)`` per process; each process reads its range once.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.chain_scan import (
    ZERO_PREV_ASCII,
    ScannedRange,
    ScanReport,
    join_subtrees,
    root_of,
    scan_chain,
    scan_range,
)
from ledger.errors import LedgerVerifyError
from ledger.merkle import EMPTY_ROOT

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ledger.chain_scan import Subtree

PARALLEL_MIN_BYTES = 64 * 1024 * 1024  # below this, starting processes costs more than it saves
_MAX_JOBS = 8


def default_jobs() -> int:
    """Processes to use: the CPUs this process may run on, at most eight."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_JOBS))


def scan_export(
    path: Path, root_sizes: Iterable[int] = (), *, jobs: int | None = None
) -> ScanReport:
    """:func:`~ledger.chain_scan.scan_chain` over the export at ``path``, on ``jobs`` processes.

    ``jobs`` defaults to :func:`default_jobs`; files under
    :data:`PARALLEL_MIN_BYTES` are scanned in this process. Raises what
    ``scan_chain`` raises, at the same place, and ``OSError`` when the file
    cannot be read.
    """
    wanted = frozenset(root_sizes)
    workers = default_jobs() if jobs is None else jobs
    if workers < 1:
        raise ValueError(f"jobs must be at least 1, got {workers}")
    total = path.stat().st_size
    if workers == 1 or total < PARALLEL_MIN_BYTES:
        return _scan_sequentially(path, wanted)
    ranges = _line_ranges(path, total, workers)
    # Workers are plain child interpreters running this module (not multiprocessing, which
    # re-imports the caller's main module): argv in, one JSON document out, no shell.
    children = [_start_child(path, begin, end, wanted) for begin, end in ranges[1:]]
    try:
        scanned = [scan_file_range(path, *ranges[0], wanted)]  # this process takes one
        scanned += [_child_result(child) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    report = _join(scanned, wanted)
    return report if report is not None else _scan_sequentially(path, wanted)


def scan_file_range(
    path: Path, begin: int, end: int, wanted: frozenset[int]
) -> ScannedRange | None:
    """Scan the lines in bytes ``[begin, end)`` of ``path``; ``None`` if one is bad."""
    with path.open("rb") as handle:
        handle.seek(begin)
        try:
            return scan_range(_lines_until(handle, end - begin), wanted, start=None)
        except LedgerVerifyError:
            return None  # the sequential rescan names the first bad line exactly


def _start_child(
    path: Path, begin: int, end: int, wanted: frozenset[int]
) -> subprocess.Popen[bytes]:
    """Private: a child interpreter scanning one range (see :func:`_child_main`)."""
    argv = [sys.executable, "-m", __name__, str(path), str(begin), str(end)]
    argv += [str(size) for size in sorted(wanted)]
    return subprocess.Popen(  # noqa: S603 - our own interpreter and module, whole arguments
        argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )


def _child_result(child: subprocess.Popen[bytes]) -> ScannedRange | None:
    """Private: what a child scanned; ``None`` (rescan here) when it failed in any way."""
    out, _ = child.communicate()
    if child.returncode != 0:
        return None
    try:
        return _range_from_json(json.loads(out))
    except (ValueError, KeyError, TypeError):
        return None


def _range_to_json(scanned: ScannedRange | None) -> Any:  # noqa: ANN401 - a JSON document
    if scanned is None:
        return None
    return {
        "first_seq": scanned.first_seq,
        "first_prev": None if scanned.first_prev is None else scanned.first_prev.decode(),
        "size": scanned.size,
        "head": None if scanned.head is None else scanned.head.hex(),
        "subtrees": _subtrees_to_json(scanned.subtrees),
        "snapshots": {str(at): _subtrees_to_json(s) for at, s in scanned.snapshots.items()},
    }


def _range_from_json(doc: Any) -> ScannedRange | None:  # noqa: ANN401 - a JSON document
    if doc is None:
        return None
    return ScannedRange(
        first_seq=doc["first_seq"],
        first_prev=None if doc["first_prev"] is None else doc["first_prev"].encode("ascii"),
        size=doc["size"],
        head=None if doc["head"] is None else bytes.fromhex(doc["head"]),
        subtrees=_subtrees_from_json(doc["subtrees"]),
        snapshots={int(at): _subtrees_from_json(s) for at, s in doc["snapshots"].items()},
    )


def _subtrees_to_json(subtrees: list[Subtree]) -> list[list[Any]]:
    return [[first, size, node.hex()] for first, size, node in subtrees]


def _subtrees_from_json(items: list[list[Any]]) -> list[Subtree]:
    return [(int(first), int(size), bytes.fromhex(node)) for first, size, node in items]


def _child_main(argv: list[str]) -> None:
    """Private: ``python -m ledger.export_scan PATH BEGIN END [SIZE ...]``, a worker."""
    path, begin, end, *sizes = argv
    scanned = scan_file_range(Path(path), int(begin), int(end), frozenset(map(int, sizes)))
    sys.stdout.write(json.dumps(_range_to_json(scanned)))


def _scan_sequentially(path: Path, wanted: frozenset[int]) -> ScanReport:
    with path.open("rb") as lines:
        return scan_chain(lines, wanted)


def _lines_until(handle: Iterable[bytes], budget: int) -> Iterator[bytes]:
    """Private: the lines of ``handle`` until ``budget`` bytes were read (ranges end on lines)."""
    for line in handle:
        yield line
        budget -= len(line)
        if budget <= 0:
            return


def _line_ranges(path: Path, total: int, parts: int) -> list[tuple[int, int]]:
    """Private: ``parts`` byte ranges of about equal size, each starting on a line."""
    cuts = [0]
    with path.open("rb") as handle:
        for part in range(1, parts):
            handle.seek(max(total * part // parts - 1, cuts[-1]))
            handle.readline()  # to just past the next newline
            cuts.append(min(handle.tell(), total))
    cuts.append(total)
    return [(begin, end) for begin, end in itertools.pairwise(cuts) if end > begin]


def _join(scanned: list[ScannedRange | None], wanted: frozenset[int]) -> ScanReport | None:
    """Private: the report of consecutive ranges; ``None`` when one failed or two do not join."""
    subtrees: list[Subtree] = []
    roots: dict[int, bytes] = {0: EMPTY_ROOT} if 0 in wanted else {}
    size, expect, head = 0, ZERO_PREV_ASCII, None
    for part in scanned:
        if part is None:
            return None
        if part.size == 0:
            continue
        if part.first_seq != size or part.first_prev != expect:
            return None
        for at, snapshot in part.snapshots.items():
            roots[at] = root_of(join_subtrees(subtrees, snapshot))
        subtrees = join_subtrees(subtrees, part.subtrees)
        size += part.size
        head = part.head
        expect = head.hex().encode("ascii") if head is not None else expect
    return ScanReport(size=size, root=root_of(subtrees), head_leaf_hash=head, roots=roots)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
