"""Table and blob writers: exact bytes, limits, chunks, types, and streaming."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pytest
from blake3 import blake3

from catalog.digest import digest_bytes
from service.packets import tables as tables_module
from service.packets.columns import ColumnType
from service.packets.errors import PacketBuildError, UnsupportedValueError
from service.packets.tables import EncodedRows, write_blob, write_table

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from service.packets.tables import RowValue, TableFormat, TableWritten


def table(
    rows: list[tuple[RowValue, ...]],
    fmt: TableFormat = "jsonl",
    columns: Sequence[str] = ("id", "v"),
    **kwargs: int | None,
) -> tuple[bytes, TableWritten]:
    out = io.BytesIO()
    limits = {"max_bytes": None} | kwargs
    written = write_table(out, path=f"data/t.{fmt}", fmt=fmt, columns=columns, rows=rows, **limits)  # type: ignore[arg-type]
    return out.getvalue(), written


def test_jsonl_rows_are_compact_objects_in_column_order() -> None:
    data, written = table([(1, "é"), (2, None), (3, 1.5), (4, True), (5, b"\x00\xff")])
    assert data == (
        b'{"id":1,"v":"\xc3\xa9"}\n{"id":2,"v":null}\n{"id":3,"v":1.5}\n'
        b'{"id":4,"v":true}\n{"id":5,"v":"AP8="}\n'
    )
    assert written.record.rows == 5
    assert written.record.bytes == len(data)
    assert written.record.digest == digest_bytes(data)
    assert written.record.media_type == "application/jsonl"
    assert written.complete


def test_csv_has_a_header_rfc4180_quoting_and_lf_line_ends() -> None:
    data, written = table(
        [(1, 'say "hi", ok'), (2, None), (3, True), (4, 2.5), (5, "line\nbreak")], fmt="csv"
    )
    assert data == b'id,v\n1,"say ""hi"", ok"\n2,\n3,true\n4,2.5\n5,"line\nbreak"\n'
    assert written.record.rows == 5
    assert written.record.media_type == "text/csv"


def test_column_types_are_inferred_for_the_table_schema() -> None:
    rows: list[tuple[RowValue, ...]] = [
        (1, 1, "a", True, b"x", None, 1),
        (2, 2.5, "b", False, b"y", None, "z"),
    ]
    _, written = table(rows, columns=["i", "n", "s", "b", "bin", "null", "mixed"])
    assert written.column_types == (
        "integer",
        "number",
        "string",
        "boolean",
        "string",
        "any",
        "any",
    )
    assert written.binary_columns == frozenset({"bin"})


def test_max_bytes_stops_before_the_row_that_would_exceed_it() -> None:
    full, _ = table([(i, "x") for i in range(10)])
    line = len(full) // 10
    data, written = table([(i, "x") for i in range(10)], max_bytes=line * 3 + line // 2)
    assert data == full[: line * 3]
    assert (written.record.rows, written.complete) == (3, False)


def test_max_rows_cuts_and_says_so_only_when_a_row_remains() -> None:
    _, cut = table([(i, "x") for i in range(5)], max_rows=4)
    assert (cut.record.rows, cut.complete) == (4, False)
    _, exact = table([(i, "x") for i in range(4)], max_rows=4)
    assert (exact.record.rows, exact.complete) == (4, True)


def test_a_generator_is_closed_when_writing_stops() -> None:
    closed = []

    def rows() -> Iterator[tuple[int, str]]:
        try:
            for i in range(100):
                yield (i, "x")
        finally:
            closed.append(True)

    out = io.BytesIO()
    write_table(
        out,
        path="data/t.jsonl",
        fmt="jsonl",
        columns=["id", "v"],
        rows=rows(),
        max_bytes=None,
        max_rows=2,
    )
    assert closed == [True]


def test_chunks_fall_on_row_boundaries_and_cover_the_file() -> None:
    out = io.BytesIO()
    rows = ((i, "y" * (i % 7)) for i in range(200))
    written = write_table(
        out,
        path="data/t.jsonl",
        fmt="jsonl",
        columns=["id", "v"],
        rows=rows,
        max_bytes=None,
        chunk_bytes=100,
    )
    data = out.getvalue()
    offset = row = 0
    assert len(written.record.chunks) > 10
    for chunk in written.record.chunks:
        assert chunk.offset == offset
        part = data[offset : offset + chunk.bytes]
        assert part.endswith(b"\n")
        assert chunk.bytes >= 100 or chunk is written.record.chunks[-1]
        assert chunk.blake3 == blake3(part).hexdigest()
        assert (chunk.first_row, chunk.rows) == (row, part.count(b"\n"))
        offset += chunk.bytes
        row += part.count(b"\n")
    assert (offset, row) == (len(data), 200)


def test_an_empty_jsonl_table_has_no_chunks_and_a_csv_one_has_its_header() -> None:
    data, written = table([])
    assert (data, written.record.chunks, written.record.rows) == (b"", (), 0)
    data, written = table([], fmt="csv")
    assert data == b"id,v\n"
    assert [(c.first_row, c.rows) for c in written.record.chunks] == [(None, 0)]


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (float("nan"), "non-finite number"),
        (float("inf"), "non-finite number"),
        (object(), "object is not int, float, str, bool, None or bytes"),
        ("\ud800", "text not encodable as UTF-8"),
    ],
)
def test_unsupported_values_name_row_and_column(value: object, detail: str) -> None:
    with pytest.raises(UnsupportedValueError) as caught:
        table([(1, "ok"), (2, value)])  # type: ignore[list-item]
    assert caught.value.row == 1
    assert caught.value.column in {"v", "*"}
    assert detail in caught.value.detail


def test_rows_of_the_wrong_width_and_bad_columns_are_refused() -> None:
    with pytest.raises(UnsupportedValueError, match="1 values for 2 columns"):
        table([(1,)])
    with pytest.raises(PacketBuildError, match="distinct"):
        table([], columns=["a", "a"])


def test_blob_is_cut_at_max_bytes() -> None:
    out = io.BytesIO()
    written = write_blob(
        out,
        path="data/stdout.txt",
        data=[b"abc", b"defgh"],
        media_type="text/plain",
        max_bytes=5,
        chunk_bytes=2,
    )
    assert out.getvalue() == b"abcde"
    assert (written.complete, written.record.bytes, written.record.rows) == (False, 5, None)
    assert written.record.digest == digest_bytes(b"abcde")
    assert sum(c.bytes for c in written.record.chunks) == 5
    assert json.loads(written.record.model_dump_json())["rows"] is None


def test_csv_quotes_a_bare_carriage_return() -> None:
    # Unquoted, a reader (Python's csv, frictionless) would end the row at the CR.
    data, _ = table([(1, "a\rb"), (2, "c\r\nd")], fmt="csv")
    assert data == b'id,v\n1,"a\rb"\n2,"c\r\nd"\n'


def _lines(rows: list[tuple[RowValue, ...]], fmt: TableFormat) -> list[bytes]:
    """Each row's bytes as the writer encodes it: what an engine hands over encoded."""
    lines = []
    for row in rows:
        data, _ = table([row], fmt=fmt)
        lines.append(data.split(b"\n", 1)[1] if fmt == "csv" else data)
    return lines


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize(
    "limits",
    [
        pytest.param({}, id="no-limit"),
        pytest.param({"max_rows": 7}, id="max-rows"),
        pytest.param({"max_rows": 60}, id="max-rows-exactly-all"),
        pytest.param({"max_bytes": 333}, id="max-bytes"),
        pytest.param({"max_bytes": 2}, id="max-bytes-below-the-header"),
    ],
)
def test_rows_the_engine_encoded_are_written_as_the_writer_writes_them(
    fmt: TableFormat, limits: dict[str, int]
) -> None:
    rows: list[tuple[RowValue, ...]] = [(i, "y" * (i % 9) + ',"\n') for i in range(60)]
    stated = (ColumnType("integer", int), ColumnType("string", str))
    expected = io.BytesIO()
    written = write_table(
        expected, path=f"data/t.{fmt}", fmt=fmt, columns=["id", "v"], rows=rows,
        max_bytes=limits.get("max_bytes"), max_rows=limits.get("max_rows"), chunk_bytes=64,
        column_types=stated,
    )  # fmt: skip
    out = io.BytesIO()
    encoded = write_table(
        out, path=f"data/t.{fmt}", fmt=fmt, columns=["id", "v"],
        rows=EncodedRows(fmt, [memoryview(line) for line in _lines(rows, fmt)]),
        max_bytes=limits.get("max_bytes"), max_rows=limits.get("max_rows"), chunk_bytes=64,
        column_types=stated,
    )  # fmt: skip
    assert out.getvalue() == expected.getvalue()
    assert encoded == written


def test_encoded_rows_of_another_format_are_refused() -> None:
    with pytest.raises(PacketBuildError, match="rows encoded as jsonl, not csv"):
        write_table(
            io.BytesIO(), path="data/t.csv", fmt="csv", columns=["a"],
            rows=EncodedRows("jsonl", [b'{"a":1}\n']), max_bytes=None,
        )  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "stated", "expected"),
    [
        pytest.param([(1,), (None,)], ColumnType("integer", int), "integer", id="kept"),
        pytest.param([(None,)], ColumnType("date", str), "date", id="kept-with-no-value"),
        pytest.param([("a",)], ColumnType("integer", int), "string", id="contradicted"),
        pytest.param([(1.5,), (2,)], ColumnType("number", float), "number", id="inferred"),
        pytest.param([(b"x",)], ColumnType("string", bytes), "string", id="binary"),
        pytest.param([(None,)], None, "any", id="unstated"),
    ],
)
def test_stated_column_types_hold_unless_the_values_contradict_them(
    rows: list[tuple[RowValue, ...]], stated: ColumnType | None, expected: str
) -> None:
    out = io.BytesIO()
    written = write_table(
        out, path="data/t.csv", fmt="csv", columns=["c"], rows=rows, max_bytes=None,
        column_types=[stated],
    )  # fmt: skip
    assert written.column_types == (expected,)
    assert written.binary_columns == (frozenset({"c"}) if rows == [(b"x",)] else frozenset())


def test_encoded_rows_take_the_stated_types() -> None:
    written = write_table(
        io.BytesIO(), path="data/t.csv", fmt="csv", columns=["a", "b"],
        rows=EncodedRows("csv", []), max_bytes=None,
        column_types=[ColumnType("datetime", str), None],
    )  # fmt: skip
    assert written.column_types == ("datetime", "any")


@pytest.mark.parametrize("encoded", [False, True])
def test_progress_is_told_rows_and_bytes_while_writing(
    monkeypatch: pytest.MonkeyPatch, encoded: bool
) -> None:
    monkeypatch.setattr(tables_module, "PROGRESS_INTERVAL_S", 0.0)
    rows: list[tuple[RowValue, ...]] = [(i, "x") for i in range(5000)]
    heard: list[tuple[int, int]] = []
    out = io.BytesIO()
    write_table(
        out, path="data/t.jsonl", fmt="jsonl", columns=["id", "v"],
        rows=EncodedRows("jsonl", _lines(rows, "jsonl")) if encoded else rows,
        max_bytes=None, progress=lambda r, b: heard.append((r, b)),
    )  # fmt: skip
    assert len(heard) >= 4
    data = out.getvalue()
    for rows_so_far, size in heard:
        assert data[:size].count(b"\n") == rows_so_far
    assert [r for r, _ in heard] == sorted(r for r, _ in heard)
