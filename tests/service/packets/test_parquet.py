"""Parquet tables: pyarrow reads back the rows and types; limits, row groups and refusals."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from blake3 import blake3

from catalog.digest import digest_bytes
from service.packets import parquet
from service.packets.columns import ColumnType
from service.packets.errors import PacketBuildError, UnsupportedValueError
from service.packets.tables import RowValue, TableWritten, write_table

COLUMNS = ("id", "name", "ratio", "flag", "raw", "nothing")


def _rows(count: int) -> Iterator[tuple[RowValue, ...]]:
    for i in range(count):
        yield (i, f"name-{i % 977}", i / 7, i % 3 == 0, i.to_bytes(3, "big"), None)


def _write(
    rows: Iterator[tuple[RowValue, ...]] | list[tuple[RowValue, ...]],
    columns: tuple[str, ...] = COLUMNS,
    **kwargs: object,
) -> tuple[bytes, TableWritten]:
    out = io.BytesIO()
    options: dict[str, object] = {"max_bytes": None} | kwargs
    written = write_table(
        out,
        path="data/result.parquet",
        fmt="parquet",
        columns=columns,
        rows=rows,
        **options,  # type: ignore[arg-type]
    )
    return out.getvalue(), written


def test_pyarrow_reads_back_every_row_with_its_type() -> None:
    data, written = _write(_rows(20_000))
    table = pq.read_table(io.BytesIO(data))
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("ratio", pa.float64()),
            ("flag", pa.bool_()),
            ("raw", pa.binary()),
            ("nothing", pa.string()),  # only nulls: text
        ]
    )
    assert table.to_pylist() == [dict(zip(COLUMNS, row, strict=True)) for row in _rows(20_000)]
    assert (written.record.rows, written.complete, written.fmt) == (20_000, True, "parquet")
    assert written.record.media_type == "application/vnd.apache.parquet"
    assert written.column_types == ("integer", "string", "number", "boolean", "string", "any")
    assert written.binary_columns == frozenset({"raw"})


def test_digests_and_byte_chunks_cover_the_file() -> None:
    data, written = _write(_rows(50_000), chunk_bytes=4096)
    assert written.record.digest == digest_bytes(data)
    assert written.record.bytes == len(data)
    offset = 0
    for chunk in written.record.chunks:
        assert chunk.offset == offset
        assert chunk.blake3 == blake3(data[offset : offset + chunk.bytes]).hexdigest()
        assert (chunk.first_row, chunk.rows) == (None, None)  # a row group spans chunks
        offset += chunk.bytes
    assert offset == len(data)
    assert len(written.record.chunks) > 3


def test_rows_are_written_in_bounded_row_groups_as_they_stream() -> None:
    consumed = []

    def rows() -> Iterator[tuple[RowValue, ...]]:
        for row in _rows(3 * parquet.FIRST_GROUP_ROWS):
            consumed.append(row[0])
            yield row

    data, _ = _write(rows())
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    assert metadata.num_row_groups >= 2
    assert metadata.row_group(0).num_rows == parquet.FIRST_GROUP_ROWS
    assert sum(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) == len(
        consumed
    )


def test_stated_types_fix_the_schema_even_without_values() -> None:
    data, written = _write(
        [(None, None)],
        columns=("n", "b"),
        column_types=[ColumnType("integer", int), ColumnType("string", bytes)],
    )
    assert pq.read_table(io.BytesIO(data)).schema == pa.schema(
        [("n", pa.int64()), ("b", pa.binary())]
    )
    assert written.column_types == ("integer", "string")


@pytest.mark.parametrize("max_bytes", [900, 5_000, 40_000, 300_000, 2_000_000])
def test_max_bytes_bounds_the_whole_file_and_says_so(max_bytes: int) -> None:
    data, written = _write(_rows(60_000), max_bytes=max_bytes)
    assert len(data) <= max_bytes
    table = pq.read_table(io.BytesIO(data))
    assert table.num_rows == written.record.rows
    assert table.column("id").to_pylist() == list(range(table.num_rows))
    assert written.complete is (table.num_rows == 60_000)
    assert not written.complete or max_bytes == 2_000_000


def test_max_bytes_below_an_empty_file_is_refused() -> None:
    with pytest.raises(PacketBuildError, match="footer passed max_bytes"):
        _write(_rows(10), max_bytes=50)


@pytest.mark.parametrize(("available", "complete"), [(50, False), (10, True)])
def test_max_rows_cuts_and_says_so_only_when_a_row_remains(available: int, complete: bool) -> None:
    data, written = _write(_rows(available), max_rows=10)
    assert pq.read_table(io.BytesIO(data)).num_rows == 10
    assert (written.record.rows, written.complete) == (10, complete)


@pytest.mark.parametrize(
    ("rows", "detail"),
    [
        pytest.param([(1,), ("x",)], "a value is not int64", id="wrong-type"),
        pytest.param([(1.5,), (float("nan"),)], "non-finite number", id="nan"),
        pytest.param([(object(),)], "object is not int", id="unsupported"),
        pytest.param([(1, 2)], "2 values for 1 columns", id="width"),
    ],
)
def test_values_outside_the_schema_are_refused(rows: list[tuple[object, ...]], detail: str) -> None:
    with pytest.raises(UnsupportedValueError, match=detail):
        _write(rows, columns=("c",))  # type: ignore[arg-type]
