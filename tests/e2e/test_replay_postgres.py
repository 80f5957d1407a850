"""Replay with a PostgreSQL source: the engine's version is recorded, drift is located.

The source is read by the documented reader role (docs/operations.md); the test changes
rows as the database owner, under a recorded call, and replays as the auditor bob, on a
SQLite ledger and on a PostgreSQL ledger.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from ledger.store import LedgerStore
from service.app import create_app
from service.cli import app as cli
from service.settings import Settings
from tests.e2e.conftest import write_keys
from tests.e2e.servers import world_env
from tests.e2e.test_postgres_sources import PASSWORD, _reader_role_sql
from tests.pg_harness import PostgresServer

ORDERS = 40_000  # ids 0 to 39999; about 1.7 MB of CSV: two chunks of ~1 MiB

CATALOG_TOML = """
[catalog]
name = "pg-replay"
version = "1"

[sources.sales]
engine = "postgresql"

[[query]]
id = "sales.orders"
title = "Every order"
source = "sales"
sql = "queries/orders.sql"
"""
ORDERS_SQL = "SELECT id, tenant, amount, placed FROM orders ORDER BY id\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.create_database(name)
    postgres.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, tenant text NOT NULL, "
        "amount numeric(10, 2) NOT NULL, placed date NOT NULL); "
        "INSERT INTO orders SELECT g, (ARRAY['acme', 'globex'])[g % 2 + 1], "
        "(g % 97) + 0.25, date '2024-01-01' + g % 365 FROM generate_series(0, 39999) g",
        name,
    )
    return name


@pytest.fixture
def world(postgres: PostgresServer, database: str, ledger_url: str, tmp_path: Path) -> Settings:
    role = f"govex_reader_{uuid.uuid4().hex[:12]}"
    postgres.execute(_reader_role_sql(role, database), database)
    directory = tmp_path / "catalog"
    (directory / "queries").mkdir(parents=True)
    (directory / "catalog.toml").write_text(CATALOG_TOML)
    (directory / "queries" / "orders.sql").write_text(ORDERS_SQL)
    write_seal(directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC)))
    return Settings(
        catalog_dir=directory,
        sources={"sales": postgres.tcp_url(database, role, PASSWORD)},
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=ledger_url,
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/pg-replay",
    )


@pytest.fixture
def client(world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(world), raise_server_exceptions=False) as test_client:
        yield test_client


def _replay(settings: Settings) -> tuple[int, dict[str, Any]]:
    env = {**world_env(settings), "GOVEX_API_KEY": "tok-bob"}
    result = CliRunner().invoke(cli, ["ledger", "replay", "--json"], env=env)
    assert result.exit_code in {0, 1}, result.output
    assert PASSWORD not in result.output
    outcome: dict[str, Any] = json.loads(result.stdout)
    return result.exit_code, outcome


def _server_version(postgres: PostgresServer, database: str) -> str:
    with psycopg.connect(postgres.dsn(database)) as conn:
        version = conn.info.parameter_status("server_version")
    assert version is not None
    return version


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_changed_rows_under_a_recorded_postgresql_call_are_data_drift_with_their_range(
    client: TestClient, world: Settings, postgres: PostgresServer, database: str, fmt: str
) -> None:
    response = client.post(
        "/v1/calls",
        json={"entry": "sales.orders", "format": fmt},
        headers={"Authorization": "Bearer tok-alice"},
    )
    assert response.status_code == 201, response.text
    call = response.json()
    assert (call["verdict"], call["rows"]) == ("ran_clean", ORDERS)
    with LedgerStore.open(world.ledger_url) as store:
        (finished,) = [
            e
            for e in store.list_entries(0, store.size())
            if e.kind.value == "call.finished" and e.body["call_id"] == call["call_id"]
        ]
    body = cast("dict[str, Any]", finished.body)
    assert body["engine_version"] == _server_version(postgres, database)
    chunks: list[dict[str, Any]] = body["chunks"]
    assert len(chunks) >= 2
    code, clean = _replay(world)
    assert code == 0
    assert [line["outcome"] for line in clean["calls"]] == ["ran_clean"]
    last_chunk = chunks[-1]
    changed = last_chunk["first_row"] + 7  # a row of the last chunk (ids count from 0)
    with psycopg.connect(postgres.dsn(database), autocommit=True) as conn:  # the owner
        conn.execute("UPDATE orders SET amount = amount + 1 WHERE id = %s", (changed,))
    code, drifted = _replay(world)
    assert code == 1
    (line,) = drifted["calls"]
    assert (line["outcome"], line["drift"]) == ("ran_with_drift", "data")
    assert line["recorded_engine_version"] == line["replay_engine_version"]
    assert line["diff_chunk"] == len(chunks) - 1
    assert line["diff_first_row"] == last_chunk["first_row"] > 0
    assert line["diff_first_row"] <= changed < line["diff_first_row"] + line["diff_rows"]
