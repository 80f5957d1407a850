"""The export scan split across processes gives exactly the one-process scan's report and errors."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import export_scan
from ledger.anchor import anchor_scan, verify_anchored
from ledger.canonical import jcs
from ledger.chain_scan import join_subtrees, root_of, scan_chain, scan_range
from ledger.checkpoint import Checkpoint
from ledger.entry import ZERO_PREV, Kind, compose_leaf_input, leaf_hash
from ledger.errors import LedgerForked, LedgerTruncated, LedgerVerifyError
from ledger.merkle import root_from_leaf_hashes

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

TS = "2026-11-23T09:15:02.123456Z"


def _lines(n: int, *, reason: Callable[[int], str] = lambda _i: "policy deny") -> list[bytes]:
    lines, prev = [], ZERO_PREV
    for seq in range(n):
        body = {"call_id": f"c{seq}", "reason": reason(seq)}
        data = compose_leaf_input(
            body_jcs=jcs(body), kind=Kind.call_denied, prev=prev, seq=seq, ts=TS
        )
        lines.append(data + b"\n")
        prev = leaf_hash(data).hex()
    return lines


@pytest.fixture
def parallel_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split even tiny files: the tests need several ranges, not a gigabyte."""
    monkeypatch.setattr(export_scan, "PARALLEL_MIN_BYTES", 0)


def _write(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(lines))
    return path


@pytest.mark.usefixtures("parallel_always")
@pytest.mark.parametrize(("entries", "jobs"), [(1, 2), (2, 2), (7, 3), (64, 2), (100, 5), (3, 8)])
def test_split_scan_gives_the_one_process_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: int, jobs: int
) -> None:
    lines = _lines(entries, reason=lambda i: "x" * (i % 7))
    path = _write(tmp_path, lines)

    def no_fallback(*_: object) -> None:
        raise AssertionError("the ranges did not join: the scan fell back to one process")

    monkeypatch.setattr(export_scan, "_scan_sequentially", no_fallback)
    sizes = range(entries + 2)  # every prefix, the full size, and one past the end
    split = export_scan.scan_export(path, sizes, jobs=jobs)
    assert split == scan_chain(lines, sizes)
    assert split.roots[entries] == root_from_leaf_hashes([leaf_hash(x[:-1]) for x in lines])
    assert entries + 1 not in split.roots


def test_an_empty_export_scans_to_the_empty_tree(tmp_path: Path) -> None:
    report = export_scan.scan_export(_write(tmp_path, []), [0], jobs=2)
    assert (report.size, report.root, report.head_leaf_hash) == (0, root_of([]), None)


def _edited(lines: list[bytes]) -> list[bytes]:
    return [*lines[:40], lines[40].replace(b"policy deny", b"policy fine"), *lines[41:]]


@pytest.mark.usefixtures("parallel_always")
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_edited, id="edited"),
        pytest.param(lambda ls: ls[:40] + ls[41:], id="deleted"),
        pytest.param(lambda ls: [*ls[:40], ls[7], *ls[40:]], id="inserted"),
        pytest.param(lambda ls: [*ls[:40], ls[41], ls[40], *ls[42:]], id="reordered"),
        pytest.param(lambda ls: [*ls[:-1], ls[-1][:-1]], id="cut-last-line"),
        pytest.param(lambda ls: [*ls[:55], b"{}\n", *ls[56:]], id="not-an-entry"),
        pytest.param(
            lambda ls: [*ls[:30], ls[30].replace(b'"c30"', b'"c30",'), *ls[31:]], id="body-not-json"
        ),
        pytest.param(lambda ls: ls[1:], id="first-missing"),
    ],
)
def test_split_scan_names_each_tamper_exactly_as_the_one_process_scan(
    tmp_path: Path, tamper: Callable[[list[bytes]], list[bytes]]
) -> None:
    lines = tamper(_lines(80))
    with pytest.raises(LedgerVerifyError) as sequential:
        scan_chain(lines)
    with pytest.raises(LedgerVerifyError) as split:
        export_scan.scan_export(_write(tmp_path, lines), jobs=3)
    assert (split.value.seq, split.value.check, split.value.detail) == (
        sequential.value.seq,
        sequential.value.check,
        sequential.value.detail,
    )


@pytest.mark.usefixtures("parallel_always")
def test_a_recomputed_chain_scans_clean_but_is_caught_by_the_anchor(tmp_path: Path) -> None:
    honest = _lines(50)
    forged = _lines(50, reason=lambda i: "forged" if i == 33 else "policy deny")
    trusted = [
        Checkpoint(origin="o", size=size, root=scan_chain(honest, [size]).roots[size])
        for size in (20, 40)
    ]
    report = anchor_scan(
        export_scan.scan_export(_write(tmp_path, honest), [20, 40], jobs=2), trusted
    )
    assert (report.status, report.anchored_size, report.unanchored_tail) == ("anchored", 40, 10)
    with pytest.raises(LedgerForked) as forked:
        anchor_scan(export_scan.scan_export(_write(tmp_path, forged), [20, 40], jobs=2), trusted)
    assert (forked.value.start, forked.value.stop) == (20, 40)
    with pytest.raises(LedgerTruncated) as truncated:
        anchor_scan(
            export_scan.scan_export(_write(tmp_path, honest[:30]), [20, 40], jobs=2), trusted
        )
    assert (truncated.value.size, truncated.value.checkpoint_size) == (30, 40)


def test_anchor_scan_gives_the_verdicts_of_verify_anchored() -> None:
    honest = _lines(12)
    forged = _lines(12, reason=lambda i: "forged" if i == 2 else "policy deny")
    trusted = [
        Checkpoint(origin="o", size=size, root=scan_chain(honest, [size]).roots[size])
        for size in (0, 5, 12)
    ]
    for lines in (honest, forged, honest[:8]):
        stripped = [line[:-1] for line in lines]
        try:
            expected: Any = verify_anchored(stripped, trusted)
        except (LedgerForked, LedgerTruncated) as exc:
            expected = (type(exc), str(exc))
        try:
            got: Any = anchor_scan(scan_chain(lines, [0, 5, 12]), trusted)
        except (LedgerForked, LedgerTruncated) as exc:
            got = (type(exc), str(exc))
        assert got == expected


@settings(max_examples=60)
@given(
    total=st.integers(1, 300),
    cuts=st.lists(st.integers(1, 299), max_size=6, unique=True),
)
def test_aligned_subtrees_of_any_split_join_into_the_rfc_root(total: int, cuts: list[int]) -> None:
    lines = _lines_cached(total)
    points = [0, *sorted(c for c in cuts if c < total), total]
    joined: list[Any] = []
    for begin, end in itertools.pairwise(points):
        part = scan_range(lines[begin:end], start=None)
        assert part.first_seq == begin
        joined = join_subtrees(joined, part.subtrees)
    assert root_of(joined) == root_from_leaf_hashes([leaf_hash(x[:-1]) for x in lines])


_CACHE: dict[int, list[bytes]] = {}


def _lines_cached(total: int) -> list[bytes]:
    if total not in _CACHE:
        _CACHE[total] = _lines(total)
    return _CACHE[total]
