"""Claims end to end: each verdict and each reason, through the app, on SQLite and PostgreSQL.

The verdict is in the call's response, also when the run issued no packet (timed out,
failed), and, when it did, in the packet's ``packet.json`` and ``report.html``.
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from service.app import create_app
from service.settings import Settings
from tests.e2e.conftest import write_catalog, write_keys, write_source
from tests.e2e.test_postgres_sources import PASSWORD, _reader_role_sql
from tests.pg_harness import PostgresServer

HEADERS = {"Authorization": "Bearer tok-alice"}  # conftest: alice, analyst of tenant acme

SQLITE_ENTRIES = """
[[query]]
id = "claims.found"
title = "All items, claimed empty"
source = "items"
sql = "queries/all.sql"
max_rows = 100
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "claims.scoped"
title = "No negative amount, over part of what the claim is about"
source = "items"
sql = "queries/missing.sql"
claim = { expect = "empty", surface = "scoped" }

[[query]]
id = "claims.cut"
title = "At least one item, cut by the byte limit"
source = "items"
sql = "queries/all.sql"
max_bytes = 300
claim = { expect = { min_rows = 1 }, surface = "exhaustive" }

[[query]]
id = "claims.slow"
title = "Never finishes in time"
source = "items"
sql = "queries/slow.sql"
timeout_ms = 200
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "claims.failing"
title = "Fails while it runs"
source = "items"
sql = "queries/bad_json.sql"
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "claims.too_many"
title = "At most five items"
source = "items"
sql = "queries/all.sql"
max_rows = 100
claim = { expect = { max_rows = 5 }, surface = "exhaustive" }

[[query]]
id = "claims.too_few"
title = "At least one negative amount"
source = "items"
sql = "queries/missing.sql"
claim = { expect = { min_rows = 1 }, surface = "exhaustive" }

[[query]]
id = "claims.within"
title = "Between one and five costly items of a tenant"
source = "items"
sql = "queries/by_tenant.sql"
tenant_scoped = true
tenant_param = "tenant"
claim = { expect = { min_rows = 1, max_rows = 5 }, surface = "exhaustive" }
[query.params.tenant]
type = "enum"
choices = ["acme", "globex"]
[query.params.min_amount]
type = "integer"
min = 0
max = 1000
default = 0
"""


def _seal(directory: Path) -> None:
    write_seal(directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC)))


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[TestClient]:
    catalog = write_catalog(tmp_path / "catalog", seal=False, extra_toml=SQLITE_ENTRIES)
    (catalog / "queries" / "bad_json.sql").write_text(
        "SELECT json_extract(name, '$') AS x FROM items ORDER BY id\n"
    )
    _seal(catalog)
    settings = Settings(
        catalog_dir=catalog,
        sources={"items": str(write_source(tmp_path / "items.sqlite"))},
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/claims",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _call(client: TestClient, entry: str, **params: Any) -> dict[str, Any]:
    response = client.post("/v1/calls", json={"entry": entry, "params": params}, headers=HEADERS)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _packet_files(client: TestClient, result: dict[str, Any]) -> dict[str, bytes]:
    response = client.get(f"/v1/packets/{result['packet_id']}", headers=HEADERS)
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {n.split("/", 1)[1]: archive.read(n) for n in archive.namelist()}


def _judged(
    client: TestClient, entry: str, verdict: str, reason: str | None, **params: Any
) -> dict[str, Any]:
    """Call ``entry``; its claim must be judged ``verdict``/``reason``, in the packet too."""
    result = _call(client, entry, **params)
    claim = result["claim"]
    assert (claim["verdict"], claim["reason"]) == (verdict, reason), result
    if result["packet_id"] is not None:
        files = _packet_files(client, result)
        assert json.loads(files["packet.json"])["claim"] == claim
        page = files["report.html"].decode()
        assert verdict in page
        assert reason is None or reason in page
    return result


COSTLY_ACME = {"tenant": "acme", "min_amount": 995}  # items 996 and 1992: two rows
SQLITE_CASES = [
    pytest.param("items.missing", "ABSENT", None, {}, id="absent"),
    pytest.param("claims.within", "ABSENT", None, COSTLY_ACME, id="bound-holds"),
    pytest.param("claims.found", "EVIDENCE_PRESENT", None, {}, id="evidence-present"),
    pytest.param("claims.scoped", "NOT_EVIDENCED", "scoped_surface", {}, id="scoped-surface"),
    pytest.param("claims.cut", "NOT_EVIDENCED", "truncated", {}, id="truncated"),
    pytest.param("claims.slow", "NOT_EVIDENCED", "timed_out", {}, id="timed-out"),
    pytest.param("claims.failing", "NOT_EVIDENCED", "error", {}, id="error"),
    pytest.param("claims.too_many", "NOT_EVIDENCED", "bound_exceeded", {}, id="bound-exceeded"),
    pytest.param("claims.too_few", "NOT_EVIDENCED", "bound_not_met", {}, id="bound-not-met"),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "verdict", "reason", "params"), SQLITE_CASES)
def test_sqlite_claims(
    sqlite_client: TestClient,
    entry: str,
    verdict: str,
    reason: str | None,
    params: dict[str, Any],
) -> None:
    result = _judged(sqlite_client, entry, verdict, reason, **params)
    assert "read_transaction" in result["contract"]["boundary"]["controls"]


def test_a_call_without_a_packet_still_reports_its_claim(sqlite_client: TestClient) -> None:
    slow = _call(sqlite_client, "claims.slow")
    failing = _call(sqlite_client, "claims.failing")
    assert (slow["verdict"], slow["packet_id"]) == ("timed_out", None)
    assert (failing["verdict"], failing["packet_id"]) == ("error_running", None)
    assert "malformed JSON" in failing["error"]
    assert slow["claim"] == {
        "expect": "empty", "surface": "exhaustive", "verdict": "NOT_EVIDENCED",
        "reason": "timed_out",
    }  # fmt: skip


def test_entries_without_a_claim_report_none(sqlite_client: TestClient) -> None:
    result = _call(sqlite_client, "items.all")
    assert result["claim"] is None
    assert json.loads(_packet_files(sqlite_client, result)["packet.json"])["claim"] is None


# --- PostgreSQL ------------------------------------------------------------------------------

PG_CATALOG = """
[catalog]
name = "pg-claims"
version = "1"

[sources.sales]
engine = "postgresql"

[[query]]
id = "pg.absent"
title = "No negative amount"
source = "sales"
sql = "queries/negative.sql"
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "pg.found"
title = "Large orders, claimed empty"
source = "sales"
sql = "queries/large.sql"
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "pg.scoped"
title = "No negative amount, scoped"
source = "sales"
sql = "queries/negative.sql"
claim = { expect = "empty", surface = "scoped" }

[[query]]
id = "pg.cut"
title = "At least one order, cut at ten rows"
source = "sales"
sql = "queries/orders.sql"
max_rows = 10
claim = { expect = { min_rows = 1 }, surface = "exhaustive" }

[[query]]
id = "pg.slow"
title = "Never finishes in time"
source = "sales"
sql = "queries/slow.sql"
timeout_ms = 300
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "pg.hidden"
title = "Accounts, some hidden from the reader by a policy"
source = "sales"
sql = "queries/accounts.sql"
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "pg.hidden_scoped"
title = "Accounts the reader may see"
source = "sales"
sql = "queries/accounts.sql"
claim = { expect = { max_rows = 100 }, surface = "scoped" }

[[query]]
id = "pg.failing"
title = "Divides by zero"
source = "sales"
sql = "queries/failing.sql"
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "pg.too_many"
title = "At most five orders"
source = "sales"
sql = "queries/orders.sql"
claim = { expect = { max_rows = 5 }, surface = "exhaustive" }

[[query]]
id = "pg.too_few"
title = "At least one negative amount"
source = "sales"
sql = "queries/negative.sql"
claim = { expect = { min_rows = 1 }, surface = "exhaustive" }

[[query]]
id = "pg.within"
title = "Between one and twenty of the first orders"
source = "sales"
sql = "queries/first.sql"
claim = { expect = { min_rows = 1, max_rows = 20 }, surface = "exhaustive" }
"""
PG_QUERIES = {
    "negative.sql": "SELECT id FROM orders WHERE amount < 0 ORDER BY id\n",
    "large.sql": "SELECT id, amount FROM orders WHERE amount > 90 ORDER BY id\n",
    "orders.sql": "SELECT id, amount FROM orders ORDER BY id\n",
    "first.sql": "SELECT id FROM orders WHERE id <= 10 ORDER BY id\n",
    "slow.sql": "SELECT count(*) AS n FROM generate_series(1, 1000000000) AS g\n",
    "accounts.sql": "SELECT id FROM accounts ORDER BY id\n",
    "failing.sql": "SELECT id / (id - id) AS x FROM orders ORDER BY id\n",
}


@pytest.fixture
def pg_client(postgres: PostgresServer, tmp_path: Path) -> Iterator[TestClient]:
    """The claims catalog over a PostgreSQL source read by the documented reader role.

    ``accounts`` has a row-level security policy that shows the reader only some rows.
    """
    database = f"t_{uuid.uuid4().hex[:16]}"
    postgres.create_database(database)
    postgres.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, amount numeric(10, 2) NOT NULL); "
        "INSERT INTO orders SELECT g, (g % 97) + 0.25 FROM generate_series(1, 1000) g; "
        "CREATE TABLE accounts (id int PRIMARY KEY); "
        "INSERT INTO accounts SELECT generate_series(1, 20)",
        database,
    )
    role = f"govex_reader_{uuid.uuid4().hex[:12]}"
    postgres.execute(_reader_role_sql(role, database), database)
    postgres.execute(
        "ALTER TABLE accounts ENABLE ROW LEVEL SECURITY; "
        f"CREATE POLICY few ON accounts FOR SELECT TO {role} USING (id < 5)",
        database,
    )
    directory = tmp_path / "catalog"
    (directory / "queries").mkdir(parents=True)
    (directory / "catalog.toml").write_text(PG_CATALOG)
    for name, text in PG_QUERIES.items():
        (directory / "queries" / name).write_text(text)
    _seal(directory)
    settings = Settings(
        catalog_dir=directory,
        sources={"sales": postgres.tcp_url(database, role, PASSWORD)},
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/pg-claims",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


PG_CASES = [
    ("pg.absent", "ABSENT", None),
    ("pg.within", "ABSENT", None),
    ("pg.found", "EVIDENCE_PRESENT", None),
    ("pg.scoped", "NOT_EVIDENCED", "scoped_surface"),
    ("pg.cut", "NOT_EVIDENCED", "truncated"),
    ("pg.slow", "NOT_EVIDENCED", "timed_out"),
    ("pg.hidden", "NOT_EVIDENCED", "row_security"),
    ("pg.failing", "NOT_EVIDENCED", "error"),
    ("pg.too_many", "NOT_EVIDENCED", "bound_exceeded"),
    ("pg.too_few", "NOT_EVIDENCED", "bound_not_met"),
]


def test_postgresql_claims(pg_client: TestClient) -> None:
    """One source for every case (a database per test is slow): each judged as expected."""
    results = {entry: _judged(pg_client, entry, v, r) for entry, v, r in PG_CASES}
    assert "serializable_deferrable" in results["pg.absent"]["contract"]["boundary"]["controls"]
    assert results["pg.slow"]["verdict"] == "timed_out"
    hidden = results["pg.hidden"]
    assert hidden["verdict"] == "error_running"
    assert "row security would filter rows" in hidden["error"]
    failing = results["pg.failing"]["error"]
    assert "SQLSTATE 22012 (division_by_zero)" in failing
    assert "row security" not in failing
    # The same table read with row security on (scoped): the policy filters, silently.
    scoped = _call(pg_client, "pg.hidden_scoped")
    assert (scoped["rows"], scoped["claim"]["reason"]) == (4, "scoped_surface")
