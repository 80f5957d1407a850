"""datapackage.json against frictionless, an independent verifier: descriptor, hashes and rows.

frictionless reads the extracted bag's datapackage.json, checks each resource's
bytes and sha256, and validates every data row against its Table Schema.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import frictionless
import pytest

from catalog.authority import AuthorityStatus
from catalog.digest import digest_bytes
from service.packets.build import TABLE_SCHEMA_TYPES, PacketBuilder, render_datapackage
from service.packets.manifest import CatalogRef, EntryRef, LedgerRef, ServiceRef
from service.packets.tables import write_table

if TYPE_CHECKING:
    from pathlib import Path

    from service.packets.tables import RowValue, TableFormat

PACKET_ID = "01JPACKETAAAAAAAAAAAAAAAAA"
COLUMNS = ["id", "amount", "name", "paid", "note", "blob"]


def _rows(count: int) -> list[tuple[RowValue, ...]]:
    return [
        (
            i,
            i * 1.25,
            f'customer "{i}", café',
            i % 2 == 0,
            None if i % 3 else f"note {i}",
            bytes([i % 256, 0, 255]),
        )
        for i in range(count)
    ]


def _packet(tmp_path: Path, fmt: TableFormat, rows: int = 120) -> Path:
    """A packet of one table in ``fmt`` plus a command-style text blob, extracted."""
    builder = PacketBuilder(tmp_path / "packets", PACKET_ID, chunk_bytes=512)
    builder.write_table(
        path=f"data/result.{fmt}", fmt=fmt, columns=COLUMNS, rows=_rows(rows), max_bytes=None
    )
    builder.write_blob(
        path="data/stdout.txt", data=[b"hello\n"], media_type="text/plain", max_bytes=None
    )
    staged = builder.finish(
        created_at=datetime(2026, 11, 23, 9, 15, 2, tzinfo=UTC),
        authority_status=AuthorityStatus.sealed,
        catalog=CatalogRef(name="demo", version="1", catalog_digest=digest_bytes(b"c")),
        entry=EntryRef(id="orders.all", kind="query", entry_digest=digest_bytes(b"e")),
        contract={"mode": "run"},
        complete=True,
        claim=None,
        ledger=LedgerRef(origin="govex.test/ledger", call_seq=1),
        service=ServiceRef(version="0.1.0", module_sha256="0" * 64),
    )
    with zipfile.ZipFile(builder.publish(staged)) as archive:
        archive.extractall(tmp_path / "out")
    return tmp_path / "out" / PACKET_ID


def _validate(bag: Path) -> frictionless.Report:
    report: frictionless.Report = frictionless.validate(str(bag / "datapackage.json"))
    return report


def _errors(report: frictionless.Report) -> list[list[Any]]:
    rows: list[list[Any]] = report.flatten(["rowNumber", "fieldName", "type"])
    return rows


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_frictionless_validates_a_built_packet_rows_included(tmp_path: Path, fmt: str) -> None:
    bag = _packet(tmp_path, fmt)  # type: ignore[arg-type]  # parametrized literal
    report = _validate(bag)
    assert report.valid, _errors(report)
    by_name = {task.name: task for task in report.tasks}
    assert set(by_name) == {"result", "stdout"}
    assert by_name["result"].stats["rows"] == 120  # every row was read and checked
    assert by_name["result"].stats["fields"] == len(COLUMNS)
    descriptor = json.loads((bag / "datapackage.json").read_text())
    assert descriptor["$schema"] == "https://datapackage.org/profiles/2.0/datapackage.json"
    table = next(r for r in descriptor["resources"] if r["name"] == "result")
    assert [f["type"] for f in table["schema"]["fields"]] == [
        "integer",
        "number",
        "string",
        "boolean",
        "string",
        "string",
    ]
    assert table["schema"]["fields"][5]["format"] == "binary"
    manifest = json.loads((bag / "packet.json").read_text())
    recorded = {f["path"]: f["digest"]["sha256"] for f in manifest["files"]}
    assert all(r["hash"] == f"sha256:{recorded[r['path']]}" for r in descriptor["resources"])


@pytest.mark.parametrize(
    ("fmt", "old", "new"),
    [
        pytest.param("csv", b"\n7,8.75,", b"\nseven,8.75,", id="csv"),
        pytest.param("jsonl", b'{"id":7,', b'{"id":"seven",', id="jsonl"),
    ],
)
def test_frictionless_refuses_a_row_that_breaks_the_schema(
    tmp_path: Path, fmt: str, old: bytes, new: bytes
) -> None:
    bag = _packet(tmp_path, fmt)  # type: ignore[arg-type]  # parametrized literal
    data = bag / f"data/result.{fmt}"
    assert data.read_bytes().count(old) == 1
    data.write_bytes(data.read_bytes().replace(old, new))
    errors = _errors(_validate(bag))
    assert [9, "id", "type-error"] in errors  # frictionless counts the header as row 1
    assert [None, None, "hash-count"] in errors


def _written(tmp_path: Path, fmt: TableFormat, rows: list[tuple[RowValue, ...]]) -> Any:
    columns = [f"c{i}" for i in range(len(rows[0]))]
    with (tmp_path / f"t.{fmt}").open("wb") as out:
        return write_table(
            out, path=f"data/t.{fmt}", fmt=fmt, columns=columns, rows=rows, max_bytes=None
        )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_column_types_from_the_source_render_as_given_and_the_rows_validate(
    tmp_path: Path, fmt: str
) -> None:
    """Types the table writer may get from the database (not from Python values) render as is."""
    rows: list[tuple[RowValue, ...]] = [
        (1, "12.25", "2024-02-29", "2024-01-01T10:00:00Z", "10:00:00", '{"a": 1}', "[1]", "x"),
        (2, None, None, None, None, None, None, None),  # (frictionless calls all-null rows blank)
    ]
    kinds = ("integer", "number", "date", "datetime", "time", "object", "array", "numeric(10,2)")
    written = dataclasses.replace(
        _written(tmp_path, fmt, rows),  # type: ignore[arg-type]  # parametrized literal
        column_types=kinds,
    )
    descriptor = json.loads(render_datapackage(PACKET_ID, "2026-11-23T09:15:02Z", [written]))
    fields = descriptor["resources"][0]["schema"]["fields"]
    assert [f["type"] for f in fields] == [*kinds[:-1], "any"]  # not a Table Schema type
    (tmp_path / "data").mkdir()
    (tmp_path / f"t.{fmt}").rename(tmp_path / f"data/t.{fmt}")
    (tmp_path / "datapackage.json").write_text(json.dumps(descriptor))
    report = _validate(tmp_path)
    assert report.valid, _errors(report)
    assert report.tasks[0].stats["rows"] == 2


def test_boolean_csv_columns_name_their_true_and_false_values(tmp_path: Path) -> None:
    written = _written(tmp_path, "csv", [(True,), (False,)])
    field = json.loads(render_datapackage(PACKET_ID, "t", [written]))["resources"][0]["schema"]
    assert field["fields"][0] == {
        "name": "c0",
        "type": "boolean",
        "trueValues": ["true"],
        "falseValues": ["false"],
    }


def test_every_table_schema_v2_type_is_kept() -> None:
    assert {
        "string", "number", "integer", "boolean", "object", "array", "list", "date", "time",
        "datetime", "year", "yearmonth", "duration", "geopoint", "geojson", "any",
    } == TABLE_SCHEMA_TYPES  # fmt: skip


def test_resource_names_are_unique_and_keep_to_the_v1_pattern(tmp_path: Path) -> None:
    first = _written(tmp_path, "csv", [(1,)])
    paths = ["data/Result.csv", "data/result.jsonl", "data/by region/Été 2026.csv"]
    written = [
        dataclasses.replace(first, record=first.record.model_copy(update={"path": p}))
        for p in paths
    ]
    names = [
        r["name"] for r in json.loads(render_datapackage(PACKET_ID, "t", written))["resources"]
    ]
    assert names == ["result", "result-2", "by-region-t-2026"]


@pytest.mark.parametrize(
    ("fmt", "rows"),
    [
        pytest.param("csv", [(1, "a"), (None, None), (3, "")], id="csv"),
        pytest.param("jsonl", [(1, "a"), (None, None), (3, "")], id="jsonl"),
        pytest.param("csv", [(1,), (None,), (3,)], id="csv-one-column"),
    ],
)
def test_an_all_null_row_is_frictionless_blank_row_and_nothing_else(
    tmp_path: Path, fmt: str, rows: list[tuple[RowValue, ...]]
) -> None:
    """The one known frictionless error on a sound packet (docs/formats.md says why).

    frictionless calls a row whose every cell it reads as missing ``blank-row``, in every
    format; its missing values are right (NULL is null), so skipping that one check
    validates the rest and reads every row.
    """
    written = _written(tmp_path, fmt, rows)  # type: ignore[arg-type]  # parametrized literal
    (tmp_path / "data").mkdir()
    (tmp_path / f"t.{fmt}").rename(tmp_path / f"data/t.{fmt}")
    (tmp_path / "datapackage.json").write_bytes(
        render_datapackage(PACKET_ID, "2026-11-23T09:15:02Z", [written])
    )
    assert _errors(_validate(tmp_path)) == [[3, None, "blank-row"]]  # the header is row 1
    skipped = frictionless.validate(str(tmp_path / "datapackage.json"), skip_errors=["blank-row"])
    assert skipped.valid, _errors(skipped)
    assert skipped.tasks[0].stats["rows"] == len(rows)
    package = frictionless.Package(str(tmp_path / "datapackage.json"))
    with package.resources[0] as resource:
        read = [row.to_list() for row in resource.row_stream]
    assert read[1] == [None] * len(rows[0])  # NULLs are read as missing, not as text
