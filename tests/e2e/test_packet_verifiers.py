"""One packet, three independent verifiers: bagit-python, frictionless and govex.

Packets the running service made from a SQLite and a PostgreSQL source, as CSV and as
JSON Lines, fetched over HTTP: the Library of Congress ``bagit`` package validates the
extracted bag, ``frictionless`` validates ``datapackage.json`` (bytes, sha256 and every
row against its Table Schema), and ``govex packet verify`` passes every check.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bagit
import frictionless
import pytest
from fastapi.testclient import TestClient

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from service.app import create_app
from service.packets.verify import verify_packet_file
from service.settings import Settings
from tests.e2e.conftest import write_keys
from tests.e2e.packet_world import extract, issue
from tests.pg_harness import PostgresServer

PG_CATALOG = """
[catalog]
name = "pg-verifiers"
version = "1"

[sources.typed]
engine = "postgresql"

[[query]]
id = "typed.all"
title = "One row of each kind of value"
source = "typed"
sql = "queries/typed.sql"

[[query]]
id = "typed.edges"
title = "Dates, times and numbers at the edges of their PostgreSQL types"
source = "typed"
sql = "queries/edges.sql"
"""
EDGES_SQL = "SELECT id, day, ts, tstz, span, tm, amount\nFROM edges\nORDER BY id\n"
EDGES = (
    "CREATE TABLE edges (id int PRIMARY KEY, day date, ts timestamp, tstz timestamptz, "
    "span interval, tm time, amount numeric); "
    "INSERT INTO edges VALUES "
    "(1, '2024-02-29', '2024-02-29 23:30:00.5', '2024-03-01 01:30:00+02', '1 day 2 hours', "
    "'13:45', 12.5), "
    "(2, 'infinity', 'infinity', 'infinity', '-1 day', '24:00:00', 'NaN'), "
    "(3, '-infinity', '-infinity', '-infinity', '-1 year 2 mons -3 days 04:05:06.7', '00:00', "
    "'Infinity'), "
    "(4, '0044-03-15 BC', '0044-03-15 10:00 BC', '0044-03-15 10:00+00 BC', '0', "
    "'23:59:59.999999', '-Infinity'), "
    "(5, '10000-01-01', '10000-01-01 00:00', '10000-01-01 00:00+00', '1 sec', NULL, NULL)"
)
PG_SQL = (
    "SELECT id, name, amount, paid, placed, at, ratio, raw, meta, nothing\n"
    "FROM typed\nORDER BY id\n"
)
PG_ROWS = 500
PASSWORD = "pg-verifiers-reader-7c1f"  # a throwaway role on the loopback test server
REPO = Path(__file__).resolve().parents[2]


def _three_verifiers(
    zip_path: Path, result: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> frictionless.Report:
    """Every verifier accepts the packet; frictionless's report for further checks."""
    report = verify_packet_file(
        zip_path, expect_manifest_hash="sha256:" + result["manifest_hash"]["sha256"]
    )
    assert report.ok, report.summary()
    assert report.summary() == "6/6 checks passed, 2 skipped"  # no catalog pin, no proof
    bag_dir = extract(zip_path, tmp_path / "extracted")
    bag = bagit.Bag(str(bag_dir))
    with caplog.at_level(logging.WARNING, logger="bagit"):
        bag.validate(fast=False)
    assert bag.is_valid(fast=False)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    checked: frictionless.Report = frictionless.validate(str(bag_dir / "datapackage.json"))
    assert checked.valid, checked.flatten(["rowNumber", "fieldName", "type", "note"])
    return checked


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_sqlite_packet_passes_bagit_frictionless_and_govex(
    client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    zip_path, result = issue(client, tmp_path, fmt=fmt)
    checked = _three_verifiers(zip_path, result, tmp_path, caplog)
    (task,) = checked.tasks
    assert task.stats["rows"] == result["rows"] == 2000  # frictionless read every row
    bag_dir = tmp_path / "extracted" / result["packet_id"]
    descriptor = json.loads((bag_dir / "datapackage.json").read_text())
    (resource,) = descriptor["resources"]
    assert resource["path"] == f"data/result.{fmt}"
    assert [f["name"] for f in resource["schema"]["fields"]] == ["id", "tenant", "name", "amount"]


def _reader_role_sql(role: str, database: str) -> str:
    """The reader-role block of docs/operations.md, for this role and database."""
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
def pg_client(postgres: PostgresServer, tmp_path: Path) -> Iterator[TestClient]:
    """A sealed catalog over a PostgreSQL table with one column of each common type."""
    database = f"t_{uuid.uuid4().hex[:16]}"
    postgres.create_database(database)
    postgres.execute(
        "CREATE TABLE typed (id int PRIMARY KEY, name text, amount numeric(12, 2), "
        "paid boolean, placed date, at timestamptz, ratio double precision, raw bytea, "
        "meta jsonb, nothing text); "
        "INSERT INTO typed SELECT g, 'name \"' || g || '\", café', (g % 97) + 0.25, g % 2 = 0, "
        "date '2024-01-01' + g % 365, timestamptz '2024-01-01 10:00:00+00' + g * interval '1 h', "
        "g / 7.0, decode(lpad(to_hex(g), 4, '0'), 'hex'), jsonb_build_object('g', g), NULL "
        "FROM generate_series(1, 500) g; " + EDGES,  # PG_ROWS
        database,
    )
    role = f"govex_reader_{uuid.uuid4().hex[:12]}"
    postgres.execute(_reader_role_sql(role, database), database)
    directory = tmp_path / "catalog"
    (directory / "queries").mkdir(parents=True)
    (directory / "catalog.toml").write_text(PG_CATALOG)
    (directory / "queries" / "typed.sql").write_text(PG_SQL)
    (directory / "queries" / "edges.sql").write_text(EDGES_SQL)
    write_seal(directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC)))
    settings = Settings(
        catalog_dir=directory,
        sources={"typed": postgres.tcp_url(database, role, PASSWORD)},
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/pg-verifiers",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_postgresql_packet_passes_bagit_frictionless_and_govex(
    pg_client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    zip_path, result = issue(pg_client, tmp_path, fmt=fmt, entry="typed.all")
    assert result["verdict"] == "ran_clean", result
    checked = _three_verifiers(zip_path, result, tmp_path, caplog)
    (task,) = checked.tasks
    assert task.stats["rows"] == PG_ROWS
    assert task.stats["fields"] == 10


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_infinite_bc_and_far_dates_and_negative_intervals_pass_frictionless(
    pg_client: TestClient, tmp_path: Path, caplog: pytest.LogCaptureFixture, fmt: str
) -> None:
    """date, timestamp(tz) and interval columns are strings that say what their text is."""
    zip_path, result = issue(pg_client, tmp_path, fmt=fmt, entry="typed.edges")
    assert result["verdict"] == "ran_clean", result
    checked = _three_verifiers(zip_path, result, tmp_path, caplog)
    (task,) = checked.tasks
    assert task.stats["rows"] == 5
    bag_dir = tmp_path / "extracted" / result["packet_id"]
    (resource,) = json.loads((bag_dir / "datapackage.json").read_text())["resources"]
    fields = {f["name"]: f for f in resource["schema"]["fields"]}
    assert {name: f["type"] for name, f in fields.items()} == {
        "id": "integer", "day": "string", "ts": "string", "tstz": "string", "span": "string",
        "tm": "time", "amount": "number",
    }  # fmt: skip
    assert fields["day"]["description"].startswith("PostgreSQL date as text: YYYY-MM-DD;")
    assert fields["tstz"]["description"].startswith("PostgreSQL timestamptz as text, in UTC")
    assert fields["span"]["description"].startswith("PostgreSQL interval as text")
    assert {"description"} & set(fields["tm"]) == set()
    with frictionless.Package(str(bag_dir / "datapackage.json")).resources[0] as read:
        rows = [row.to_dict() for row in read.row_stream]
    assert [row["day"] for row in rows] == [
        "2024-02-29", "infinity", "-infinity", "0044-03-15 BC", "10000-01-01",
    ]  # fmt: skip  # as PostgreSQL prints them
    assert [row["tstz"] for row in rows][::2] == [
        "2024-02-29 23:30:00+00", "-infinity", "10000-01-01 00:00:00+00",
    ]  # fmt: skip
    assert [row["span"] for row in rows] == ["P1DT2H", "P-1D", "P-10M-3DT4H5M6.7S", "PT0S", "PT1S"]
    assert rows[4]["tm"] is None  # NULL, read as missing
