"""A small real world for end-to-end tests: a SQLite source, a sealed catalog, keys, the app."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from service.api_keys import token_hash
from service.app import create_app
from service.settings import Settings

# Test modules build headers from this convention: principal <name> holds token "tok-<name>".
TOKENS = {name: f"tok-{name}" for name in ("alice", "bob", "carol")}
KEYS = [
    ("alice", ["analyst"], "acme"),
    ("bob", ["auditor"], "globex"),
    ("carol", ["operator"], "*"),
]

CATALOG_TOML = """
[catalog]
name = "e2e"
version = "1"

[sources.items]
engine = "sqlite"

[[query]]
id = "items.all"
title = "All items"
source = "items"
sql = "queries/all.sql"

[[query]]
id = "items.by_tenant"
title = "Items of a tenant"
source = "items"
sql = "queries/by_tenant.sql"
tenant_scoped = true
tenant_param = "tenant"
[query.params.tenant]
type = "enum"
choices = ["acme", "globex"]
[query.params.min_amount]
type = "integer"
min = 0
max = 1000
default = 0

[[query]]
id = "items.missing"
title = "Items with a negative amount (there are none)"
source = "items"
sql = "queries/missing.sql"
claim = { expect = "empty", surface = "exhaustive" }

[[query]]
id = "items.first_ten"
title = "At most ten items"
source = "items"
sql = "queries/all.sql"
max_rows = 10

[[query]]
id = "items.slow"
title = "A query that cannot finish in time"
source = "items"
sql = "queries/slow.sql"
timeout_ms = 200

[[query]]
id = "items.secret"
title = "A sensitive entry"
source = "items"
sql = "queries/all.sql"
sensitive = true
"""

QUERIES = {
    "all.sql": "SELECT id, tenant, name, amount\nFROM items\nORDER BY id\n",
    "by_tenant.sql": (
        "SELECT id, name, amount FROM items\n"
        "WHERE tenant = :tenant AND amount >= :min_amount\n"
        "ORDER BY id\n"
    ),
    "missing.sql": "SELECT id FROM items WHERE amount < 0 ORDER BY id\n",
    "slow.sql": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000)\n"
        "SELECT count(*) AS n FROM c\n"
    ),
}


def write_source(path: Path, rows: int = 2000) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, tenant TEXT, name TEXT, amount INTEGER)"
        )
        conn.executemany(
            "INSERT INTO items VALUES (?, ?, ?, ?)",
            [(i, ("acme", "globex")[i % 2], f"item {i}", i % 997) for i in range(rows)],
        )
    conn.close()
    return path


def write_catalog(directory: Path, *, seal: bool = True, extra_toml: str = "") -> Path:
    """The e2e catalog (plus ``extra_toml`` entries) with its queries, sealed unless told not."""
    (directory / "queries").mkdir(parents=True)
    (directory / "catalog.toml").write_text(CATALOG_TOML + extra_toml)
    for name, text in QUERIES.items():
        (directory / "queries" / name).write_text(text)
    if seal:
        write_seal(
            directory / SEAL_FILE, compute_seal(load_catalog_dir(directory), datetime.now(UTC))
        )
    return directory


def key_records() -> list[dict[str, object]]:
    """The ``govex.keys/v1`` records of the e2e principals (token ``tok-<name>`` each)."""
    return [
        {
            "key_id": f"k-{name}",
            "principal": name,
            "roles": roles,
            "tenant": tenant,
            "sha256": token_hash(TOKENS[name]),
            "expires_at": None,
        }
        for name, roles, tenant in KEYS
    ]


def write_keys(path: Path) -> Path:
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": key_records()}))
    return path


def make_world(
    tmp_path: Path, *, ledger_url: str | None = None, extra_toml: str = "", rows: int = 2000
) -> Settings:
    """Settings for a sealed catalog over a fresh source, ledger (SQLite unless given), packets."""
    return Settings(
        catalog_dir=write_catalog(tmp_path / "catalog", extra_toml=extra_toml),
        sources={"items": str(write_source(tmp_path / "items.sqlite", rows))},
        keys_file=write_keys(tmp_path / "keys.json"),
        ledger_url=ledger_url or f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        packet_root=tmp_path / "packets",
        origin="govex.test/ledger/e2e",
    )


def calls_days_ago(world: Settings, n: int, days: float) -> list[dict[str, Any]]:
    """``n`` calls that each publish a packet, made by a service whose clock is ``days`` behind.

    Packets issued then are as old as retention sees them (their ``packet.issued`` time).
    """

    def clock() -> datetime:
        return datetime.now(UTC) - timedelta(days=days)

    headers = {"Authorization": f"Bearer {TOKENS['alice']}"}
    with TestClient(create_app(world, clock=clock)) as client:
        results = []
        for _ in range(n):
            response = client.post("/v1/calls", json={"entry": "items.first_ten"}, headers=headers)
            assert response.status_code == 201, response.text
            results.append(response.json())
    return results


@pytest.fixture
def world(tmp_path: Path) -> Settings:
    """Settings for a sealed catalog over a fresh source, ledger and packet root."""
    return make_world(tmp_path)


@pytest.fixture
def client(world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(world), raise_server_exceptions=False) as test_client:
        yield test_client
