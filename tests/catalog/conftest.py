"""Shared fixtures of the catalog tests: a small catalog directory written to disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

CATALOG_TOML = """\
[catalog]
name = "demo"
version = "1.0.0"

[sources.demo]
engine = "sqlite"

[[query]]
id = "orders.by_customer"
title = "Orders of one customer"
source = "demo"
sql = "queries/orders_by_customer.sql"
timeout_ms = 5000

[query.params.customer_id]
type = "integer"
min = 1
max = 1000000

[[query]]
id = "orders.count"
title = "Count of orders"
source = "demo"
sql = "queries/orders_count.sql"

[[command]]
id = "system.uptime"
title = "Uptime"
argv = ["/usr/bin/uptime", "-p"]
mutating = false
exit_codes = { "0" = "ran_clean", "1" = "ran_with_drift" }
"""

SQL_FILES = {
    "queries/orders_by_customer.sql": (
        "-- orders of one customer\n"
        "SELECT id, total\n"
        "FROM orders\n"
        "WHERE customer_id = :customer_id\n"
        "ORDER BY id\n"
    ),
    "queries/orders_count.sql": "SELECT count(*) AS n FROM orders\n",
}

WriteCatalog = Callable[..., Path]


@pytest.fixture
def write_catalog(tmp_path: Path) -> WriteCatalog:
    """Return a writer: (toml=CATALOG_TOML, files=SQL_FILES) -> the catalog directory."""

    def write(toml: str = CATALOG_TOML, files: dict[str, str] | None = None) -> Path:
        root = tmp_path / "catalog"
        root.mkdir(exist_ok=True)
        (root / "catalog.toml").write_text(toml, encoding="utf-8")
        for name, text in (SQL_FILES if files is None else files).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text, encoding="utf-8")
        return root

    return write


@pytest.fixture
def catalog_toml() -> str:
    return CATALOG_TOML


@pytest.fixture
def sql_files() -> dict[str, str]:
    return dict(SQL_FILES)
