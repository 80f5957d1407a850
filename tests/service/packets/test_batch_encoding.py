"""The table writer's batch path writes what the row path writes: bytes, records, types, errors.

:meth:`RowEncoder.batch` formats many rows at once and checks the text as a whole; any
batch it cannot vouch for goes row by row. These tests run the same rows through both
(the row path alone by turning the batch path off) and require identical results.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.packets.encoding import RowEncoder
from service.packets.errors import UnsupportedValueError
from service.packets.tables import write_table

if TYPE_CHECKING:
    from collections.abc import Sequence

    from service.packets.tables import RowValue, TableFormat, TableWritten

# Text that needs quoting or escaping, looks like a null, a number or a format, or is not ASCII.
_TRICKY = [*',"\n\r\\\x00\x1f\x7f%é\u2028', "None", "nan", "inf", "%s", " ", "x", "1"]
_TEXT = st.lists(st.sampled_from(_TRICKY), max_size=4).map("".join) | st.text(max_size=6)
_VALUES: dict[str, st.SearchStrategy[RowValue]] = {
    "int": st.integers(min_value=-(10**20), max_value=10**20),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "text": _TEXT,
    "plain": st.sampled_from(["a", "bc", "customer-42", "2026-01-01", ""]),
    "odd": st.sampled_from([True, False, b"\x00\xff", float("inf"), float("nan"), 10**5000]),
}


@st.composite
def _tables(draw: st.DrawFn) -> tuple[int, list[list[RowValue]]]:
    """Rows whose columns mostly keep one type (the batch path's case), with nulls and strays.

    Each column draws a few values and its rows pick among them, so that many rows cost
    hypothesis little data.
    """
    width = draw(st.integers(min_value=1, max_value=4))
    kinds = draw(st.lists(st.sampled_from(["int", "float", "text", "plain"]), min_size=width,
                          max_size=width))  # fmt: skip
    pools: list[list[RowValue]] = [
        draw(st.lists(_VALUES[kind], min_size=1, max_size=6)) for kind in kinds
    ]
    stray_pool: list[RowValue] = draw(
        st.lists(st.one_of(*_VALUES.values()), min_size=1, max_size=4)
    )
    nulls = draw(st.sampled_from([0.0, 0.0, 0.05, 0.5]))
    strays = draw(st.sampled_from([0.0, 0.0, 0.0, 0.002, 0.05]))
    count = draw(st.integers(min_value=0, max_value=3000))
    pick = draw(st.randoms(use_true_random=False))
    rows: list[list[RowValue]] = []
    for _ in range(count):
        row: list[RowValue] = []
        for pool in pools:
            dice = pick.random()
            if dice < nulls:
                row.append(None)
            elif dice < nulls + strays:
                row.append(pick.choice(stray_pool))
            else:
                row.append(pick.choice(pool))
        rows.append(row)
    return width, rows


def _write(
    rows: Sequence[Sequence[RowValue]], fmt: TableFormat, width: int, **limits: int | None
) -> tuple[object, ...]:
    out = io.BytesIO()
    columns = [f"c{i}" for i in range(width)]
    try:
        written = write_table(
            out, path=f"data/t.{fmt}", fmt=fmt, columns=columns, rows=rows, chunk_bytes=97,
            max_bytes=limits.get("max_bytes"), max_rows=limits.get("max_rows"),
        )  # fmt: skip
    except UnsupportedValueError as exc:
        return ("error", exc.row, exc.column, exc.detail)
    except ValueError as exc:  # an int too long for text (Python's own bound): both raise it
        return ("value-error", str(exc))
    return (out.getvalue(), written)


def _written(
    rows: Sequence[Sequence[RowValue]], fmt: TableFormat, width: int
) -> tuple[bytes, TableWritten]:
    result = _write(rows, fmt, width)
    assert isinstance(result[0], bytes), result
    return result[0], cast("TableWritten", result[1])


def _both(
    monkeypatch: pytest.MonkeyPatch,
    rows: Sequence[Sequence[RowValue]],
    fmt: TableFormat,
    width: int,
    **limits: int | None,
) -> tuple[tuple[object, ...], tuple[object, ...]]:
    batched = _write(rows, fmt, width, **limits)
    with monkeypatch.context() as patched:
        patched.setattr(RowEncoder, "batch", lambda _self, _rows: None)
        one_by_one = _write(rows, fmt, width, **limits)
    return batched, one_by_one


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(table=_tables(), max_rows=st.none() | st.integers(0, 3000),
       max_bytes=st.none() | st.integers(0, 100_000))  # fmt: skip
def test_batches_write_what_rows_one_by_one_write(
    monkeypatch: pytest.MonkeyPatch,
    fmt: TableFormat,
    table: tuple[int, list[list[RowValue]]],
    max_rows: int | None,
    max_bytes: int | None,
) -> None:
    width, rows = table
    as_tuples = [tuple(row) for row in rows]
    for given_rows in (as_tuples, rows):  # engines give tuples; masking gives lists
        batched, one_by_one = _both(
            monkeypatch, given_rows, fmt, width, max_rows=max_rows, max_bytes=max_bytes
        )
        assert batched == one_by_one


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_plain_rows_take_the_batch_path(monkeypatch: pytest.MonkeyPatch, fmt: TableFormat) -> None:
    taken: list[bool] = []
    batch = RowEncoder.batch

    def spy(self: RowEncoder, rows: Sequence[Sequence[RowValue]]) -> object:
        encoded = batch(self, rows)
        taken.append(encoded is not None)
        return encoded

    monkeypatch.setattr(RowEncoder, "batch", spy)
    rows = [(i, f"name-{i}", i / 4 if i % 3 else None, "é") for i in range(3000)]
    data, written = _written(rows, fmt, 4)
    assert taken
    assert all(taken)
    assert written.record.rows == 3000
    assert written.column_types == ("integer", "string", "number", "string")
    first = data.split(b"\n")[1 if fmt == "csv" else 0]
    assert first == (b"0,name-0,,\xc3\xa9" if fmt == "csv" else
                     b'{"c0":0,"c1":"name-0","c2":null,"c3":"\xc3\xa9"}')  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_a_non_finite_float_in_a_batch_is_refused_at_its_row(
    monkeypatch: pytest.MonkeyPatch, fmt: TableFormat, bad: float
) -> None:
    rows = [(i, i / 2) for i in range(500)]
    rows[321] = (321, bad)
    batched, one_by_one = _both(monkeypatch, rows, fmt, 2)
    assert batched == one_by_one
    assert batched[:3] == ("error", 321, "c1")
    assert "non-finite number" in str(batched[3])


def test_finite_floats_whose_sum_overflows_are_written() -> None:
    rows = [(i, 1.7e308) for i in range(10)]
    data, written = _written(rows, "csv", 2)
    assert data.count(b"1.7e+308") == 10
    assert written.complete


_ODD_TEXT = [*_TRICKY, "a,b", 'say "hi"', "a\r", "\r\n", "x\ny", "back\\slash", "tab\t", "Nonesuch",
             "\ud800", "%d", "1e5", "None,None"]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("value", _ODD_TEXT)
@pytest.mark.parametrize("with_nulls", [False, True], ids=["no-nulls", "nulls"])
def test_one_odd_text_among_plain_rows_is_written_as_row_by_row(
    monkeypatch: pytest.MonkeyPatch, fmt: TableFormat, value: str, with_nulls: bool
) -> None:
    rows: list[tuple[RowValue, ...]] = [
        (i, "plain", None if with_nulls and i % 7 == 0 else 1.5) for i in range(200)
    ]
    rows[100] = (100, value, 2.5)
    batched, one_by_one = _both(monkeypatch, rows, fmt, 3)
    assert batched == one_by_one


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("width", [1, 2, 3])
def test_rows_of_mixed_sequence_types_are_written_as_row_by_row(
    monkeypatch: pytest.MonkeyPatch, fmt: TableFormat, width: int
) -> None:
    shapes: list[Sequence[RowValue]] = []
    for i in range(300):
        values = tuple(range(i, i + width))
        shapes.append(list(values) if i % 50 == 7 else values)
    shapes[123] = "ab"[:width] if width < 3 else "abc"  # a str is a sequence too
    batched, one_by_one = _both(monkeypatch, shapes, fmt, width)
    assert batched == one_by_one
