from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ledger.export import export_lines
from ledger.verify import verify_entries

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from ledger.store import LedgerStore


def _fill(store: LedgerStore, moment: datetime, n: int) -> None:
    for i in range(n):
        store.append("call.denied", {"call_id": f"c{i}", "reason": "policy deny"}, moment)


def test_line_i_is_leaf_input_i_and_a_newline(store: LedgerStore, moment: datetime) -> None:
    _fill(store, moment, 4)
    out = io.BytesIO()
    assert export_lines(store, out) == 4
    assert out.getvalue().splitlines(keepends=True) == [
        data + b"\n" for data in store.iter_leaf_inputs()
    ]


def test_export_then_verify_gives_the_store_root(
    store: LedgerStore, moment: datetime, tmp_path: Path
) -> None:
    _fill(store, moment, 25)
    path = tmp_path / "ledger.jsonl"
    with path.open("wb") as out:
        export_lines(store, out)
    with path.open("rb") as lines:  # a binary file iterates line by line: streamed
        report = verify_entries(lines)
    assert report == store.verify()
    assert report.size == 25


def test_a_range_exports_only_its_entries(store: LedgerStore, moment: datetime) -> None:
    _fill(store, moment, 6)
    out = io.BytesIO()
    assert export_lines(store, out, start=2, stop=5) == 3
    assert out.getvalue() == b"".join(data + b"\n" for data in list(store.iter_leaf_inputs())[2:5])


def test_an_empty_ledger_exports_nothing(store: LedgerStore) -> None:
    out = io.BytesIO()
    assert export_lines(store, out) == 0
    assert out.getvalue() == b""
    assert verify_entries(io.BytesIO(out.getvalue())).size == 0
