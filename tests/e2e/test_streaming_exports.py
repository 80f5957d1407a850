"""Streaming exports end to end: PostgreSQL to CSV, JSON Lines and Parquet packets, with progress.

Calls go through the core (``calls.execute``, as ``govex call`` and ``POST /v1/calls``
do) on a real PostgreSQL source read by the documented reader role; every packet is
verified offline, and its data read back by an independent reader (the csv module,
json, pyarrow).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from service import calls
from service.call_index import CallRecord
from service.cli import app as cli
from service.cli.progress_line import ProgressLine
from service.context import call_id_var
from service.contract import CallRequest
from service.packets import tables
from service.packets.readers import ZipPacketReader
from service.packets.verify import verify_packet
from service.progress import reporting_to
from service.runtime import Runtime, build_runtime
from service.settings import Settings
from tests.e2e.conftest import write_keys
from tests.e2e.servers import world_env
from tests.pg_harness import PostgresServer

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "stream-Reader-7c2a"
ROWS = 30_000  # the rows of stream_t

CATALOG_TOML = """
[catalog]
name = "streaming"
version = "1"

[sources.sales]
engine = "postgresql"

[[query]]
id = "sales.rows"
title = "Every row, every type"
source = "sales"
sql = "queries/rows.sql"
max_bytes = 100000000

[[query]]
id = "sales.first"
title = "At most ten rows"
source = "sales"
sql = "queries/rows.sql"
max_rows = 10
"""
ROWS_SQL = "SELECT id, amount, placed, flag, note, raw FROM stream_t ORDER BY id\n"


def _reader_role_sql(role: str, database: str) -> str:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- reader-role-sql:[^>]*-->\n```sql\n(.*?)```", text, re.DOTALL)
    assert found is not None
    return (
        found.group(1)
        .replace("govex_reader", role)
        .replace("DATABASE sales", f'DATABASE "{database}"')
        .replace("'change-me'", f"'{PASSWORD}'")
    )


@pytest.fixture
def world(postgres: PostgresServer, tmp_path: Path) -> Settings:
    database = f"t_{uuid.uuid4().hex[:16]}"
    postgres.create_database(database)
    postgres.execute(
        "CREATE TABLE stream_t (id int PRIMARY KEY, amount numeric(10, 2), placed date, "
        "flag bool, note text, raw bytea); "
        "INSERT INTO stream_t SELECT g, g % 97 + 0.25, date '2024-01-01' + g % 365, g % 3 = 0, "
        "CASE WHEN g % 5 = 0 THEN NULL ELSE 'note, \"' || g || '\"' END, "
        "CASE WHEN g % 7 = 0 THEN NULL ELSE int4send(g) END "
        "FROM generate_series(1, 30000) g",
        database,
    )
    role = f"govex_reader_{uuid.uuid4().hex[:12]}"
    postgres.execute(_reader_role_sql(role, database), database)
    directory = tmp_path / "catalog"
    (directory / "queries").mkdir(parents=True)
    (directory / "catalog.toml").write_text(CATALOG_TOML)
    (directory / "queries" / "rows.sql").write_text(ROWS_SQL)
    write_seal(directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC)))
    return Settings(
        catalog_dir=directory,
        sources={"sales": postgres.tcp_url(database, role, PASSWORD)},
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/streaming",
    )


@pytest.fixture
def runtime(world: Settings) -> Iterator[Runtime]:
    built = build_runtime(world)
    try:
        yield built
    finally:
        built.close()


def _execute(runtime: Runtime, entry: str, fmt: str) -> calls.CallResult:
    alice = runtime.auth.authenticate("Bearer tok-alice", runtime.clock())
    request = CallRequest.model_validate({"entry": entry, "format": fmt})
    return calls.execute(runtime, alice, request, request_id=None)


def _packet(world: Settings, result: calls.CallResult) -> dict[str, bytes]:
    """The verified packet's files, by name inside the bag."""
    assert result.packet_id is not None
    assert result.manifest_hash is not None
    path = world.packet_root / f"{result.packet_id}.zip"
    with ZipPacketReader(path) as reader:
        report = verify_packet(reader, expect_manifest_hash=result.manifest_hash.text("sha256"))
    assert report.ok, report.summary()
    with zipfile.ZipFile(path) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}


def _fields(files: dict[str, bytes], fmt: str) -> list[dict[str, Any]]:
    package = json.loads(files["datapackage.json"])
    resource = next(r for r in package["resources"] if r["path"] == f"data/result.{fmt}")
    fields: list[dict[str, Any]] = resource["schema"]["fields"]
    return fields


def _expected(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "amount": f"{i % 97}.25",
        "placed": None,  # checked apart: a date
        "flag": i % 3 == 0,
        "note": None if i % 5 == 0 else f'note, "{i}"',
        "raw": None if i % 7 == 0 else i.to_bytes(4, "big"),
    }


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_packets_from_postgresql_verify_and_type_their_columns(
    runtime: Runtime, world: Settings, fmt: str
) -> None:
    result = _execute(runtime, "sales.rows", fmt)
    assert result.verdict is not None
    assert result.verdict.value == "ran_clean", result.error
    assert (result.rows, result.complete) == (ROWS, True)
    files = _packet(world, result)
    data = files[f"data/result.{fmt}"].decode()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(data, newline="")))
        assert rows[0] == {
            "id": "1", "amount": "1.25", "placed": "2024-01-02", "flag": "false",
            "note": 'note, "1"', "raw": "AAAAAQ==",
        }  # fmt: skip
        assert rows[4]["note"] == ""  # NULL is the empty field
    else:
        objects = [json.loads(line) for line in data.split("\n")[:-1]]
        assert objects[2] == {
            "id": 3, "amount": "3.25", "placed": "2024-01-04", "flag": True,
            "note": 'note, "3"', "raw": "AAAAAw==",
        }  # fmt: skip
        assert objects[6]["raw"] is None
        rows = objects
    assert len(rows) == ROWS
    assert [(f["name"], f["type"]) for f in _fields(files, fmt)] == [
        ("id", "integer"), ("amount", "number"), ("placed", "string"), ("flag", "boolean"),
        ("note", "string"), ("raw", "string"),
    ]  # fmt: skip
    assert _fields(files, fmt)[5]["format"] == "binary"


def test_a_parquet_packet_reads_back_with_its_rows_and_types(
    runtime: Runtime, world: Settings
) -> None:
    result = _execute(runtime, "sales.rows", "parquet")
    assert result.verdict is not None
    assert result.verdict.value == "ran_clean", result.error
    files = _packet(world, result)
    table = pq.read_table(io.BytesIO(files["data/result.parquet"]))
    assert table.num_rows == result.rows == ROWS
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("amount", pa.string()),  # numeric: its exact text, as in CSV and JSON Lines
            ("placed", pa.string()),
            ("flag", pa.bool_()),
            ("note", pa.string()),
            ("raw", pa.binary()),
        ]
    )
    assert pq.ParquetFile(io.BytesIO(files["data/result.parquet"])).metadata.num_row_groups > 1
    rows = table.to_pylist()
    for i in (1, 5, 7, 35, ROWS):
        row = rows[i - 1]
        assert re.fullmatch(r"20\d\d-\d\d-\d\d", row.pop("placed"))
        expected = _expected(i)
        expected.pop("placed")
        assert row == expected
    manifest = json.loads(files["packet.json"])
    (record,) = manifest["files"]
    assert (record["media_type"], record["rows"]) == ("application/vnd.apache.parquet", ROWS)
    assert [f["type"] for f in _fields(files, "parquet")] == [
        "integer", "number", "string", "boolean", "string", "string",
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_a_row_limit_is_never_a_silent_cut(runtime: Runtime, world: Settings, fmt: str) -> None:
    result = _execute(runtime, "sales.first", fmt)
    assert (result.rows, result.complete) == (10, False)
    manifest = json.loads(_packet(world, result)["packet.json"])
    assert manifest["complete"] is False


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_progress_reaches_the_call_index_and_the_listener_while_running(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    monkeypatch.setattr(tables, "PROGRESS_INTERVAL_S", 0.0)  # report at every chance
    heard: list[tuple[int, int, CallRecord | None]] = []

    def listener(rows: int, size: int) -> None:
        call_id = call_id_var.get()
        assert call_id is not None
        heard.append((rows, size, runtime.calls.get(call_id)))

    with reporting_to(listener):
        result = _execute(runtime, "sales.rows", fmt)
    assert result.rows == ROWS
    assert len(heard) >= (1 if fmt == "parquet" else 2)  # Parquet: after each row group
    assert [rows for rows, _, _ in heard] == sorted({rows for rows, _, _ in heard})
    for rows, size, record in heard:
        assert record is not None
        assert (record.state, record.rows, record.bytes) == ("running", rows, size)
        assert 0 < rows < ROWS or (rows == ROWS and fmt == "parquet")
    final = runtime.calls.get(result.call_id)
    assert final is not None
    assert (final.state, final.rows, final.bytes) == ("completed", ROWS, result.bytes)


def test_the_cli_writes_parquet_and_refuses_an_unknown_format(world: Settings) -> None:
    env = {
        **world_env(world),
        "GOVEX_API_KEY": "tok-alice",
    }
    runner = CliRunner()
    ran = runner.invoke(cli, ["call", "sales.rows", "--format", "parquet"], env=env)
    assert ran.exit_code == 0, ran.stderr
    assert json.loads(ran.stdout)["contract"]["output_format"] == "parquet"
    assert "running:" not in ran.stderr  # not a terminal, and shorter than a plain line's wait
    refused = runner.invoke(cli, ["call", "sales.rows", "--format", "xml"], env=env)
    assert refused.exit_code == 2
    assert "use jsonl, csv or parquet" in refused.stderr


def test_parquet_without_pyarrow_is_refused_naming_the_extra() -> None:
    # A real interpreter in which pyarrow cannot be imported.
    script = (
        "import sys; sys.modules['pyarrow'] = None\n"
        "from pydantic import ValidationError\n"
        "from service.contract import CallRequest\n"
        "CallRequest(entry='sales.rows', format='jsonl')\n"
        "try:\n"
        "    CallRequest(entry='sales.rows', format='parquet')\n"
        "except ValidationError as exc:\n"
        "    print(exc.errors()[0]['msg'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.strip() == (
        "Value error, output format parquet needs pyarrow: pip install govex[parquet]"
    )


def test_the_progress_line_redraws_on_a_terminal_and_stays_quiet_elsewhere() -> None:
    now = [100.0]
    terminal = io.StringIO()
    line = ProgressLine(terminal, interactive=True, clock=lambda: now[0])
    now[0] = 102.0
    line(1_000_000, 50_000_000)
    line.close()
    assert terminal.getvalue() == ("\r\x1b[Krunning: 1,000,000 rows, 50.0 MB (25.0 MB/s)\r\x1b[K")
    log = io.StringIO()
    plain = ProgressLine(log, interactive=False, clock=lambda: now[0])
    now[0] = 103.0
    plain(10, 100)  # too soon for a plain line
    now[0] = 113.0
    plain(20, 2_000_000)
    plain.close()
    assert log.getvalue() == "running: 20 rows, 2.0 MB (0.2 MB/s)\n"
