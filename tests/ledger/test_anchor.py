"""Anchored verification: every tamper class named at its exact place, on lists and on the store."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from ledger.anchor import check_consistency, verify_anchored
from ledger.checkpoint import Checkpoint
from ledger.entry import ZERO_PREV, Entry, Kind, leaf_hash, leaf_input
from ledger.errors import LedgerForked, LedgerTruncated, LedgerVerifyError
from ledger.merkle import EMPTY_ROOT, consistency_proof, root_from_leaf_hashes, verify_consistency

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from ledger.store import LedgerStore
    from tests.ledger.conftest import Backdoor

ORIGIN = "govex.test/ledger/anchor"
SIZE = 8


def _entry(seq: int, prev: str, tag: str = "") -> bytes:
    return leaf_input(
        Entry(
            v=1,
            seq=seq,
            ts=f"2026-11-23T09:15:{seq % 60:02d}.000000Z",
            kind=Kind.call_denied,
            prev=prev,
            body={"call_id": f"call{seq}{tag}", "reason": "policy deny"},
        )
    )


def _chain(
    size: int = SIZE, *, start: int = 0, prev: str = ZERO_PREV, tag: str = ""
) -> list[bytes]:
    """Leaf inputs of a valid chain from ``start`` (linking to ``prev``)."""
    entries = []
    for seq in range(start, start + size):
        data = _entry(seq, prev, tag)
        prev = leaf_hash(data).hex()
        entries.append(data)
    return entries


def _relinked(entries: Sequence[bytes], start: int) -> list[bytes]:
    """The entries with ``prev`` recomputed from ``start`` on, as a forger rebuilding the chain."""
    out = list(entries[:start])
    prev = leaf_hash(out[-1]).hex() if out else ZERO_PREV
    for data in entries[start:]:
        obj = json.loads(data)
        obj["prev"] = prev
        rebuilt = leaf_input(Entry.model_validate(obj))
        prev = leaf_hash(rebuilt).hex()
        out.append(rebuilt)
    return out


def _edited(data: bytes, **body: Any) -> bytes:
    obj = json.loads(data)
    obj["body"].update(body)
    return leaf_input(Entry.model_validate(obj))


def _checkpoint(entries: Sequence[bytes], size: int) -> Checkpoint:
    root = root_from_leaf_hashes([leaf_hash(data) for data in entries[:size]])
    return Checkpoint(ORIGIN, size, root)


# -- anchored and unanchored --------------------------------------------------------------------


def test_without_a_checkpoint_the_chain_is_intact_but_unanchored() -> None:
    entries = _chain()
    report = verify_anchored(entries)
    assert report.status == "unanchored"
    assert report.anchor is None
    assert report.matched == ()
    assert report.size == SIZE
    assert report.root == root_from_leaf_hashes([leaf_hash(d) for d in entries])
    assert report.anchored_size == 0
    assert report.unanchored_tail == SIZE


def test_a_checkpoint_of_the_whole_ledger_anchors_it() -> None:
    entries = _chain()
    report = verify_anchored(entries, [_checkpoint(entries, SIZE)])
    assert report.status == "anchored"
    assert report.anchor == _checkpoint(entries, SIZE)
    assert (report.anchored_size, report.unanchored_tail) == (SIZE, 0)


def test_entries_past_the_newest_checkpoint_are_the_unanchored_tail() -> None:
    entries = _chain()
    checkpoints = [_checkpoint(entries, 5), _checkpoint(entries, 2), _checkpoint(entries, 5)]
    report = verify_anchored(entries, checkpoints)
    assert report.status == "anchored"
    assert report.matched == (2, 5)
    assert (report.anchored_size, report.unanchored_tail) == (5, 3)


def test_the_empty_tree_checkpoint_anchors_nothing_but_matches() -> None:
    report = verify_anchored(_chain(), [Checkpoint(ORIGIN, 0, EMPTY_ROOT)])
    assert report.matched == (0,)
    assert report.unanchored_tail == SIZE
    assert verify_anchored([], [Checkpoint(ORIGIN, 0, EMPTY_ROOT)]).size == 0


def test_the_empty_tree_checkpoint_with_another_root_is_a_fork() -> None:
    with pytest.raises(LedgerForked) as caught:
        verify_anchored(_chain(), [Checkpoint(ORIGIN, 0, b"\x01" * 32)])
    assert (caught.value.start, caught.value.stop) == (0, 0)


# -- every tamper class, with its place ---------------------------------------------------------


def _deleted(entries: list[bytes]) -> list[bytes]:
    return entries[:3] + entries[4:]


def _inserted(entries: list[bytes]) -> list[bytes]:
    forged = _entry(3, leaf_hash(entries[2]).hex(), tag="forged")
    return [*entries[:3], forged, *entries[3:]]


def _reordered(entries: list[bytes]) -> list[bytes]:
    return [*entries[:3], entries[4], entries[3], *entries[5:]]


def _edited_in_place(entries: list[bytes]) -> list[bytes]:
    return [*entries[:3], _edited(entries[3], reason="edited"), *entries[4:]]


@pytest.mark.parametrize(
    ("tamper", "seq", "check"),
    [
        pytest.param(_edited_in_place, 3, "prev", id="edited"),
        pytest.param(_deleted, 3, "seq", id="deleted"),
        pytest.param(_inserted, 4, "seq", id="inserted"),
        pytest.param(_reordered, 3, "seq", id="reordered"),
    ],
)
def test_chain_tampering_is_named_by_the_chain_checks_even_when_anchored(
    tamper: Any, seq: int, check: str
) -> None:
    entries = _chain()
    with pytest.raises(LedgerVerifyError) as caught:
        verify_anchored(tamper(entries), [_checkpoint(entries, SIZE)])
    assert (caught.value.seq, caught.value.check) == (seq, check)


def test_an_edited_last_entry_breaks_no_link_but_the_checkpoint_names_its_range() -> None:
    entries = _chain()
    tampered = [*entries[:-1], _edited(entries[-1], reason="edited")]
    assert verify_anchored(tampered).size == SIZE  # the chain alone cannot tell
    with pytest.raises(LedgerForked) as caught:
        verify_anchored(tampered, [_checkpoint(entries, 4), _checkpoint(entries, SIZE)])
    error = caught.value
    assert (error.seq, error.check, error.where) == (4, "fork", "seq 4..7")
    assert (error.start, error.stop) == (4, SIZE)
    assert error.expected == _checkpoint(entries, SIZE).root
    assert error.calculated == _checkpoint(tampered, SIZE).root


def test_a_recomputed_chain_is_named_between_the_last_matching_and_first_mismatching_sizes() -> (
    None
):
    entries = _chain(12)
    forged = [*entries[:5], _edited(entries[5], reason="rewritten"), *entries[6:]]
    recomputed = _relinked(forged, 5)
    assert verify_anchored(recomputed).size == 12  # intact as a chain
    checkpoints = [_checkpoint(entries, size) for size in (2, 4, 8, 12)]
    with pytest.raises(LedgerForked) as caught:
        verify_anchored(recomputed, checkpoints)
    assert (caught.value.start, caught.value.stop, caught.value.where) == (4, 8, "seq 4..7")


def test_a_fully_recomputed_ledger_against_one_checkpoint_names_everything_before_it() -> None:
    entries = _chain()
    recomputed = _relinked([_edited(entries[0], reason="rewritten"), *entries[1:]], 0)
    with pytest.raises(LedgerForked) as caught:
        verify_anchored(recomputed, [_checkpoint(entries, 6)])
    assert (caught.value.start, caught.value.stop) == (0, 6)


def test_a_truncated_tail_names_the_first_missing_seq() -> None:
    entries = _chain()
    with pytest.raises(LedgerTruncated) as caught:
        verify_anchored(entries[:5], [_checkpoint(entries, SIZE)])
    error = caught.value
    assert (error.seq, error.check, error.where) == (5, "truncated", "seq 5")
    assert (error.size, error.checkpoint_size) == (5, SIZE)


def test_a_rollback_to_an_older_consistent_prefix_names_the_first_missing_seq() -> None:
    entries = _chain()
    old, new = _checkpoint(entries, 4), _checkpoint(entries, SIZE)
    assert verify_anchored(entries[:4], [old]).status == "anchored"  # consistent with the old one
    with pytest.raises(LedgerTruncated) as caught:
        verify_anchored(entries[:4], [old, new])
    assert (caught.value.seq, caught.value.checkpoint_size) == (4, SIZE)


def test_a_fork_after_a_rollback_names_the_range_after_the_last_matching_checkpoint() -> None:
    entries = _chain()
    forked = entries[:4] + _chain(6, start=4, prev=leaf_hash(entries[3]).hex(), tag="fork")
    with pytest.raises(LedgerForked) as caught:
        verify_anchored(forked, [_checkpoint(entries, 4), _checkpoint(entries, SIZE)])
    assert (caught.value.start, caught.value.stop) == (4, SIZE)


def test_two_trusted_checkpoints_of_one_size_that_differ_are_a_fork_of_the_log() -> None:
    entries = _chain()
    other = _relinked([_edited(entries[0], reason="other"), *entries[1:]], 0)
    with pytest.raises(LedgerForked) as caught:
        verify_anchored(entries, [_checkpoint(entries, 6), _checkpoint(other, 6)])
    assert caught.value.where == "tree size 6"
    assert "the log signed a fork" in caught.value.detail


# -- consistency between two trusted checkpoints ------------------------------------------------


@pytest.mark.parametrize(("old", "new"), [(1, 8), (3, 8), (4, 8), (5, 7), (8, 8), (0, 5)])
def test_consistency_proof_from_the_entries_verifies_against_both_roots(old: int, new: int) -> None:
    entries = _chain()
    hashes = [leaf_hash(d) for d in entries[:new]]
    report = check_consistency(entries, _checkpoint(entries, old), _checkpoint(entries, new))
    assert list(report.proof) == consistency_proof(old, hashes)
    assert report.entries.matched == tuple(sorted({old, new}))
    if 0 < old < new:
        verify_consistency(
            old, new, _checkpoint(entries, old).root, _checkpoint(entries, new).root, report.proof
        )
    else:
        assert report.proof == ()


def test_consistency_refuses_a_new_checkpoint_smaller_than_the_old_one_as_a_rollback() -> None:
    entries = _chain()
    with pytest.raises(LedgerTruncated) as caught:
        check_consistency(entries, _checkpoint(entries, 6), _checkpoint(entries, 3))
    assert (caught.value.seq, caught.value.checkpoint_size) == (3, 6)
    assert "rolled back" in caught.value.detail


def test_consistency_names_a_new_checkpoint_that_does_not_extend_the_old_one() -> None:
    entries = _chain()
    fork = entries[:4] + _chain(4, start=4, prev=leaf_hash(entries[3]).hex(), tag="fork")
    with pytest.raises(LedgerForked) as caught:  # the entries are the old tree's
        check_consistency(entries, _checkpoint(entries, 4), _checkpoint(fork, SIZE))
    assert (caught.value.start, caught.value.stop) == (4, SIZE)
    rewritten = _relinked([entries[0], _edited(entries[1], reason="x"), *entries[2:]], 1)
    with pytest.raises(LedgerForked) as caught:  # the entries are the new tree's
        check_consistency(rewritten, _checkpoint(entries, 4), _checkpoint(rewritten, SIZE))
    assert (caught.value.start, caught.value.stop) == (0, 4)


def test_consistency_with_entries_missing_names_the_first_missing_seq() -> None:
    entries = _chain()
    with pytest.raises(LedgerTruncated) as caught:
        check_consistency(entries[:6], _checkpoint(entries, 2), _checkpoint(entries, SIZE))
    assert caught.value.seq == 6


# -- on the store, both dialects ----------------------------------------------------------------


def _fill(store: LedgerStore, moment: datetime, count: int = SIZE) -> list[bytes]:
    for i in range(count):
        store.append("call.denied", {"call_id": f"c{i}", "reason": "policy deny"}, moment)
    return list(store.iter_leaf_inputs())


def _rewrite_rows(backdoor: Backdoor, start: int, rows: Sequence[bytes]) -> None:
    for offset, data in enumerate(rows):
        backdoor.execute(
            "UPDATE ledger_entries SET leaf_input = :data, leaf_hash = :hash WHERE seq = :seq",
            data=data,
            hash=leaf_hash(data),
            seq=start + offset,
        )


def test_store_truncated_with_its_checkpoints_verifies_alone_but_not_anchored(
    store: LedgerStore, backdoor: Backdoor, moment: datetime
) -> None:
    entries = _fill(store, moment)
    trusted = _checkpoint(entries, SIZE)
    backdoor.execute("DELETE FROM ledger_entries WHERE seq >= 5")
    backdoor.execute("DELETE FROM ledger_checkpoints")
    assert store.verify().size == 5  # nothing left in the database tells
    with pytest.raises(LedgerTruncated) as caught:
        verify_anchored(store.iter_leaf_inputs(), [trusted])
    assert (caught.value.seq, caught.value.checkpoint_size) == (5, SIZE)


def test_store_recomputed_behind_the_triggers_is_a_fork_in_the_named_range(
    store: LedgerStore, backdoor: Backdoor, moment: datetime
) -> None:
    entries = _fill(store, moment)
    checkpoints = [_checkpoint(entries, 3), _checkpoint(entries, 6), _checkpoint(entries, SIZE)]
    rewritten = _relinked([*entries[:4], _edited(entries[4], reason="rewritten"), *entries[5:]], 4)
    _rewrite_rows(backdoor, 4, rewritten[4:])
    assert store.verify().size == SIZE  # chain and hash columns agree
    with pytest.raises(LedgerForked) as caught:
        verify_anchored(store.iter_leaf_inputs(), checkpoints)
    assert (caught.value.start, caught.value.stop, caught.value.where) == (3, 6, "seq 3..5")


@pytest.mark.parametrize(
    ("sql", "seq", "check"),
    [
        pytest.param("DELETE FROM ledger_entries WHERE seq = 2", 2, "seq", id="deleted"),
        pytest.param(
            "UPDATE ledger_entries SET seq = seq + 100 WHERE seq = 6", 6, "seq", id="moved-away"
        ),
    ],
)
def test_store_rows_removed_behind_the_triggers_are_named(
    store: LedgerStore, backdoor: Backdoor, moment: datetime, sql: str, seq: int, check: str
) -> None:
    entries = _fill(store, moment)
    backdoor.execute(sql)
    with pytest.raises(LedgerVerifyError) as caught:
        verify_anchored(store.iter_leaf_inputs(), [_checkpoint(entries, SIZE)])
    assert (caught.value.seq, caught.value.check) == (seq, check)


def test_store_rolled_back_then_appended_is_a_fork_after_the_last_match(
    store: LedgerStore, backdoor: Backdoor, moment: datetime, ledger_url: str
) -> None:
    from ledger.store import LedgerStore as Store  # noqa: PLC0415 - a fresh store after the rollback

    entries = _fill(store, moment)
    checkpoints = [_checkpoint(entries, 4), _checkpoint(entries, SIZE)]
    backdoor.execute("DELETE FROM ledger_entries WHERE seq >= 4")
    with pytest.raises(LedgerTruncated) as truncated:
        verify_anchored(store.iter_leaf_inputs(), checkpoints)
    assert truncated.value.seq == 4
    with Store.open(ledger_url) as reopened:
        for i in range(6):
            reopened.append("call.denied", {"call_id": f"f{i}", "reason": "forked"}, moment)
        assert reopened.verify().size == 10
        with pytest.raises(LedgerForked) as forked:
            verify_anchored(reopened.iter_leaf_inputs(), checkpoints)
    assert (forked.value.start, forked.value.stop) == (4, SIZE)


def test_anchored_verification_imports_no_database_code() -> None:
    probe = (
        "import sys, ledger.anchor;"
        "heavy = ('fastapi', 'sqlalchemy', 'uvicorn', 'psycopg', 'ledger.store');"
        "print(','.join(sorted(m for m in heavy if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""
