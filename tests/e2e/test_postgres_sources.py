"""Calls on a PostgreSQL source end to end: the service, a SQLite ledger, the documented role.

The source URL carries a password. It must never reach a response, the ledger (its
database file or its export), a packet, or a log line.
"""

from __future__ import annotations

import json
import re
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from service.app import create_app
from service.cli import app as cli
from service.packets.readers import ZipPacketReader
from service.packets.verify import verify_packet
from service.run_postgres import BOUNDARY_POSTGRES, BOUNDARY_POSTGRES_EXHAUSTIVE
from service.settings import Settings
from tests.e2e.conftest import write_keys
from tests.e2e.servers import world_env
from tests.pg_harness import PostgresServer

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "pg-Reader-Secret-4d1e"  # the harness trusts local connections; the URL carries it
ORDERS = 1000

CATALOG_TOML = """
[catalog]
name = "pg-e2e"
version = "1"

[sources.sales]
engine = "postgresql"

[sources.down]
engine = "postgresql"

[sources.mismatched]
engine = "sqlite"

[[query]]
id = "sales.orders"
title = "Orders of a tenant"
source = "sales"
sql = "queries/orders.sql"
tenant_scoped = true
tenant_param = "tenant"
[query.params.tenant]
type = "enum"
choices = ["acme", "globex"]
[query.params.min_amount]
type = "integer"
min = 0
default = 0

[[query]]
id = "sales.negative"
title = "Orders with a negative amount (there are none)"
source = "sales"
sql = "queries/negative.sql"
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "sales.snapshot"
title = "How an exhaustive entry's transaction runs"
source = "sales"
sql = "queries/snapshot.sql"
claim = { expect = { min_rows = 1 }, surface = "exhaustive" }

[[query]]
id = "sales.slow"
title = "A statement that cannot finish in time"
source = "sales"
sql = "queries/slow.sql"
timeout_ms = 300

[[query]]
id = "down.orders"
title = "A source that cannot be reached"
source = "down"
sql = "queries/negative.sql"

[[query]]
id = "mismatched.orders"
title = "A SQLite entry whose source is PostgreSQL"
source = "mismatched"
sql = "queries/count.sql"
"""

QUERIES = {
    "orders.sql": (
        "SELECT id, tenant, amount, placed FROM orders\n"
        "WHERE tenant = :tenant AND amount >= :min_amount\n"
        "ORDER BY id\n"
    ),
    "negative.sql": "SELECT id FROM orders WHERE amount < 0 ORDER BY id\n",
    "snapshot.sql": (
        "SELECT current_setting('transaction_isolation') AS isolation,\n"
        "       current_setting('transaction_read_only') AS read_only,\n"
        "       current_setting('transaction_deferrable') AS deferrable,\n"
        "       current_setting('row_security') AS row_security\n"
        "ORDER BY 1\n"
    ),
    "slow.sql": "SELECT count(*) AS n FROM generate_series(1, 1000000000) AS g\n",
    "count.sql": "SELECT count(*) AS n FROM orders\n",
}


def auth(name: str) -> dict[str, str]:
    """Bearer headers of an e2e principal (conftest issues the token ``tok-<name>``)."""
    return {"Authorization": f"Bearer tok-{name}"}


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
def pg_world(postgres: PostgresServer, tmp_path: Path) -> Settings:
    """A sealed catalog over a PostgreSQL source read by the documented role; a SQLite ledger."""
    database = f"t_{uuid.uuid4().hex[:16]}"
    postgres.create_database(database)
    postgres.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, tenant text NOT NULL, "
        "amount numeric(10, 2) NOT NULL, placed date NOT NULL); "
        "INSERT INTO orders SELECT g, (ARRAY['acme', 'globex'])[g % 2 + 1], "
        "(g % 97) + 0.25, date '2024-01-01' + g % 365 FROM generate_series(1, 1000) g",
        database,
    )
    role = f"govex_reader_{uuid.uuid4().hex[:12]}"
    postgres.execute(_reader_role_sql(role, database), database)
    directory = tmp_path / "catalog"
    (directory / "queries").mkdir(parents=True)
    (directory / "catalog.toml").write_text(CATALOG_TOML)
    for name, text in QUERIES.items():
        (directory / "queries" / name).write_text(text)
    write_seal(directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC)))
    url = postgres.tcp_url(database, role, PASSWORD)
    return Settings(
        catalog_dir=directory,
        sources={
            "sales": url,
            "down": postgres.tcp_url("no_such_database", role, PASSWORD),
            "mismatched": url,
        },
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/pg-sources",
    )


@pytest.fixture
def pg_client(pg_world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(pg_world), raise_server_exceptions=False) as test_client:
        yield test_client


def _call(client: TestClient, entry: str, **params: Any) -> dict[str, Any]:
    response = client.post(
        "/v1/calls", json={"entry": entry, "params": params}, headers=auth("alice")
    )
    assert response.status_code == 201, response.text
    assert PASSWORD not in response.text
    body: dict[str, Any] = response.json()
    return body


def _packet_rows(client: TestClient, result: dict[str, Any], tmp_path: Path) -> list[Any]:
    packet = client.get(f"/v1/packets/{result['packet_id']}", headers=auth("alice"))
    assert packet.status_code == 200
    path = tmp_path / f"{result['packet_id']}.zip"
    path.write_bytes(packet.content)
    with ZipPacketReader(path) as reader:
        report = verify_packet(
            reader, expect_manifest_hash="sha256:" + result["manifest_hash"]["sha256"]
        )
    assert report.ok, report.summary()
    with zipfile.ZipFile(path) as archive:
        data = next(n for n in archive.namelist() if n.endswith("data/result.jsonl"))
        return [json.loads(line) for line in archive.read(data).splitlines()]


def test_calls_on_a_postgresql_source_record_its_boundary_and_never_its_password(
    pg_client: TestClient, pg_world: Settings, tmp_path: Path
) -> None:
    with structlog.testing.capture_logs() as logs:
        orders = _call(pg_client, "sales.orders", tenant="acme", min_amount=90)
        negative = _call(pg_client, "sales.negative")
        snapshot = _call(pg_client, "sales.snapshot")
        slow = _call(pg_client, "sales.slow")
        down = _call(pg_client, "down.orders")
        mismatched = _call(pg_client, "mismatched.orders")

    assert orders["verdict"] == "ran_clean"
    assert orders["contract"]["boundary"] == {
        "engine": "postgresql",
        "source": "sales",
        "controls": list(BOUNDARY_POSTGRES),
    }
    rows = _packet_rows(pg_client, orders, tmp_path)
    expected = [i for i in range(1, ORDERS + 1) if i % 2 == 0 and (i % 97) + 0.25 >= 90]
    assert [r["id"] for r in rows] == expected
    assert {r["tenant"] for r in rows} == {"acme"}
    assert rows[0]["amount"] == f"{expected[0] % 97}.25"  # numeric as exact text
    assert re.fullmatch(r"2024-\d\d-\d\d|2025-\d\d-\d\d", rows[0]["placed"])

    assert negative["verdict"] == "ran_clean"
    assert negative["claim"] == {
        "expect": "empty",
        "surface": "exhaustive",
        "verdict": "ABSENT",
        "reason": None,
    }
    assert negative["contract"]["boundary"]["controls"] == list(BOUNDARY_POSTGRES_EXHAUSTIVE)
    assert _packet_rows(pg_client, snapshot, tmp_path) == [
        {"isolation": "serializable", "read_only": "on", "deferrable": "on", "row_security": "off"}
    ]

    assert slow["verdict"] == "timed_out"
    assert "300 ms deadline" in slow["error"]
    assert down["verdict"] == "error_running"
    assert "cannot connect to PostgreSQL source 'down'" in down["error"]
    assert ":***@127.0.0.1" in down["error"]
    assert mismatched["verdict"] == "error_running"
    assert "has engine sqlite" in mismatched["error"]
    assert "a PostgreSQL database (postgresql://" in mismatched["error"]

    _assert_password_nowhere(pg_world, repr(logs))


def test_the_cli_shows_no_password_either(pg_world: Settings, tmp_path: Path) -> None:
    env = {
        **world_env(pg_world),
        "GOVEX_API_KEY": "tok-alice",
    }
    runner = CliRunner()
    ran = runner.invoke(cli, ["call", "sales.orders", "--param", "tenant=acme"], env=env)
    assert ran.exit_code == 0, ran.stderr
    assert json.loads(ran.stdout)["contract"]["boundary"]["engine"] == "postgresql"
    failed = runner.invoke(cli, ["call", "down.orders"], env=env)
    assert failed.exit_code != 0
    assert "cannot connect" in failed.stdout + failed.stderr
    export = tmp_path / "ledger.jsonl"
    exported = runner.invoke(cli, ["ledger", "export", "--out", str(export)], env=env)
    assert exported.exit_code == 0, exported.stderr
    output = "".join(r.stdout + r.stderr for r in (ran, failed, exported))
    _assert_password_nowhere(pg_world, output, export.read_text())


def _assert_password_nowhere(world: Settings, *texts: str) -> None:
    """Not in the given texts, the ledger database's files, or any file of any packet."""
    for text in texts:
        assert PASSWORD not in text
    ledger_dir = Path(world.ledger_url.removeprefix("sqlite:///")).parent
    ledger_files = sorted(ledger_dir.glob("ledger.sqlite*"))
    assert ledger_files
    for path in ledger_files:
        assert PASSWORD.encode() not in path.read_bytes(), path
    packets = sorted(world.packet_root.glob("*.zip"))
    assert packets
    for path in packets:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                assert PASSWORD.encode() not in archive.read(name), name
