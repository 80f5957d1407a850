from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from ledger.chain import LedgerReport
from ledger.entry import ZERO_PREV, Entry, Kind, leaf_hash, leaf_input
from ledger.errors import LedgerVerifyError
from ledger.merkle import EMPTY_ROOT, root_from_leaf_hashes
from ledger.verify import CHECKS, ChainVerifier, verify_entries

if TYPE_CHECKING:
    from collections.abc import Iterator

SIZE = 8


def _chain(size: int = SIZE) -> list[bytes]:
    """A valid export: ``size`` call.denied entries, each line ending in a newline."""
    lines, prev = [], ZERO_PREV
    for seq in range(size):
        entry = Entry(
            v=1,
            seq=seq,
            ts=f"2026-11-23T09:15:{seq:02d}.000000Z",
            kind=Kind.call_denied,
            prev=prev,
            body={"call_id": f"call{seq}", "reason": "policy deny"},
        )
        data = leaf_input(entry)
        prev = leaf_hash(data).hex()
        lines.append(data + b"\n")
    return lines


def _rewrite(line: bytes, **changes: Any) -> bytes:
    """The line re-canonicalized with some fields changed, as a careful forger would."""
    obj = json.loads(line)
    obj.update(changes)
    return leaf_input(Entry.model_validate(obj)) + b"\n"


def _fails(lines: list[bytes]) -> tuple[int, str]:
    with pytest.raises(LedgerVerifyError) as caught:
        verify_entries(lines)
    return caught.value.seq, caught.value.check


def test_a_valid_export_gives_size_root_and_head() -> None:
    lines = _chain()
    hashes = [leaf_hash(line[:-1]) for line in lines]
    report = verify_entries(lines)
    assert report == LedgerReport(
        size=SIZE, root=root_from_leaf_hashes(hashes), head_leaf_hash=hashes[-1]
    )
    assert report.root_hex == report.root.hex()


def test_an_empty_export_is_the_empty_tree() -> None:
    assert verify_entries([]) == LedgerReport(size=0, root=EMPTY_ROOT, head_leaf_hash=None)


def test_checks_are_listed_in_the_order_they_run() -> None:
    assert CHECKS == ("json", "canonical", "schema", "seq", "prev")


def test_byte_flip_inside_a_body_is_named_at_its_entry_by_the_prev_link() -> None:
    lines = _chain()
    assert b"call4" in lines[4]
    lines[4] = lines[4].replace(b"call4", b"callX")
    assert _fails(lines) == (4, "prev")


def test_byte_flip_that_breaks_the_json_is_named_at_its_entry() -> None:
    lines = _chain()
    lines[5] = lines[5].replace(b'"reason":', b'"reason";')
    assert _fails(lines) == (5, "json")


def test_flip_in_the_last_entry_is_invisible_to_the_chain_but_changes_the_root() -> None:
    lines = _chain()
    good = verify_entries(lines)
    lines[-1] = lines[-1].replace(b"call7", b"callX")
    assert verify_entries(lines).root != good.root  # only a checkpoint catches this one


def test_removed_line_is_a_seq_gap() -> None:
    lines = _chain()
    del lines[3]
    with pytest.raises(LedgerVerifyError) as caught:
        verify_entries(lines)
    assert (caught.value.seq, caught.value.check) == (3, "seq")
    assert "has seq 4" in caught.value.detail


def test_swapped_lines_are_a_seq_error_at_the_first_of_them() -> None:
    lines = _chain()
    lines[2], lines[3] = lines[3], lines[2]
    assert _fails(lines) == (2, "seq")


def test_non_canonical_whitespace_is_refused() -> None:
    lines = _chain()
    lines[6] = lines[6].replace(b'"kind":', b'"kind": ')
    with pytest.raises(LedgerVerifyError) as caught:
        verify_entries(lines)
    assert (caught.value.seq, caught.value.check) == (6, "canonical")
    assert "offset" in caught.value.detail


def test_crlf_line_ending_is_not_canonical() -> None:
    lines = _chain()
    lines[1] = lines[1][:-1] + b"\r\n"
    assert _fails(lines) == (1, "canonical")


def test_bad_prev_names_the_entry_before_it_and_says_both() -> None:
    lines = _chain()
    lines[5] = _rewrite(lines[5], prev="ab" * 32)
    with pytest.raises(LedgerVerifyError) as caught:
        verify_entries(lines)
    assert (caught.value.seq, caught.value.check) == (4, "prev")
    assert "entry 5 has prev " + "ab" * 32 in caught.value.detail
    assert leaf_hash(lines[4][:-1]).hex() in caught.value.detail


def test_bad_prev_at_seq_zero_names_seq_zero() -> None:
    lines = _chain()
    lines[0] = _rewrite(lines[0], prev="11" * 32)
    assert _fails(lines) == (0, "prev")


def test_truncated_file_fails_at_the_cut_line() -> None:
    export = b"".join(_chain())
    cut = export[: len(export) - 20]
    lines = cut.splitlines(keepends=True)
    with pytest.raises(LedgerVerifyError) as caught:
        verify_entries(lines)
    assert (caught.value.seq, caught.value.check) == (SIZE - 1, "json")
    assert "truncated" in caught.value.detail


def test_missing_final_newline_is_a_truncation() -> None:
    lines = _chain()
    lines[-1] = lines[-1][:-1]
    assert _fails(lines) == (SIZE - 1, "json")


@pytest.mark.parametrize(
    ("replace", "by", "check"),
    [
        (b'"reason":"policy deny"', b'"reason":"policy deny","reason":"x"', "json"),
        (b'"reason":"policy deny"', b'"reason":"policy deny","n":NaN', "json"),
        (b'"reason":"policy deny"', b'"reason":"\xff"', "json"),
        (b'"reason":"policy deny"', b'"reason":"policy deny","n":9007199254740993', "canonical"),
        (b'"kind":"call.denied"', b'"kind":"call.renamed"', "schema"),
        (b'"reason":"policy deny"', b'"reason":""', "schema"),
        (b'"v":1', b'"v":true', "schema"),
        (b'"v":1', b'"v":2', "schema"),
    ],
)
def test_each_broken_line_is_named_by_its_check(replace: bytes, by: bytes, check: str) -> None:
    lines = _chain()
    assert replace in lines[3]
    lines[3] = lines[3].replace(replace, by)
    assert _fails(lines) == (3, check)


def test_blank_line_is_not_an_entry() -> None:
    lines = [*_chain(3), b"\n"]
    assert _fails(lines) == (3, "json")


def test_verification_streams_and_stops_at_the_first_bad_line() -> None:
    lines = _chain()
    lines[2] = b"garbage\n"
    consumed = []

    def stream() -> Iterator[bytes]:
        for line in lines:
            consumed.append(line)
            yield line

    assert _fails(list(stream())) == (2, "json")
    consumed.clear()
    with pytest.raises(LedgerVerifyError):
        verify_entries(stream())
    assert len(consumed) == 3


def test_chain_verifier_returns_each_entry_and_counts() -> None:
    verifier = ChainVerifier()
    for line in _chain(3):
        entry = verifier.feed(line[:-1])
        assert entry.seq == verifier.size - 1
    assert verifier.report().size == 3


def test_offline_verification_loads_no_database_or_web_stack() -> None:
    probe = (
        "import sys, ledger.verify, ledger.merkle, ledger.entry;"
        "heavy = ('sqlalchemy', 'fastapi', 'psycopg', 'ledger.store');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
