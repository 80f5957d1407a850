"""The demo: generator determinism and shape, the demo catalog's queries, the demo keys."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import tomllib
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from catalog.load import load_catalog_dir
from catalog.model import CommandEntry
from catalog.params import bind_inputs
from examples.demo.generate import SNAPSHOT, generate
from service.command_spec import spec_for_entry
from service.identity import ApiKeyring
from service.run_command import run_command

if TYPE_CHECKING:
    from collections.abc import Iterator

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
CATALOG_DIR = DEMO / "catalog"
TENANTS = ("acme", "globex", "initech")
TABLES = ("customers", "invoices", "order_lines", "orders", "payments", "products", "tenants")

# Sample inputs per entry, as the service would bind them (defaults filled in), and the
# smallest row count they give on the seed-7 data: each sample shows something real.
SAMPLES: dict[str, tuple[dict[str, object], int]] = {
    "customers.by_tenant": ({"tenant": "acme"}, 1000),
    "customers.search": ({"tenant": "globex", "q": "weber"}, 10),
    "orders.by_customer": ({"tenant": "acme", "customer_id": 48}, 5),
    "orders.in_period": (
        {
            "tenant": "acme",
            "from_date": "2026-06-01",
            "to_date": "2026-06-30",
            "include_cancelled": False,
        },
        500,
    ),
    "orders.large": ({"tenant": "initech", "min_total": 15000.0}, 50),
    "orders.lines": ({"tenant": "acme", "order_id": 16}, 2),
    "invoices.overdue": ({"tenant": "globex", "as_of": "2026-06-30"}, 100),
    "invoices.unpaid": ({"tenant": "globex", "issued_before": "2100-01-01"}, 100),
    "invoices.overpaid": ({"tenant": "initech"}, 10),
    "payments.summary_by_month": ({"tenant": "acme", "year": 2025}, 12),
    "revenue.total": (
        {"tenant": "globex", "from_date": "2025-01-01", "to_date": "2025-12-31"},
        1,
    ),
    "platform.tenant_overview": ({}, 3),
}
# Command entries: sample inputs and the exact stdout they give.
COMMAND_SAMPLES: dict[str, tuple[dict[str, object], bytes]] = {
    "calendar.day": (
        {"day": "2026-06-30"},
        b"Tuesday 2026-06-30: ISO week 27 of 2026, day 181 of the year\n",
    ),
}


def _digest(db: Path) -> str:
    """sha256 over the ``iterdump()`` lines: the content digest of a database."""
    digest = hashlib.sha256()
    with closing(sqlite3.connect(db)) as conn:
        for line in conn.iterdump():
            digest.update(line.encode() + b"\n")
    return digest.hexdigest()


@contextmanager
def _read_only(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    return db, generate(db, seed=7)


@pytest.fixture(scope="module")
def demo_db(demo: tuple[Path, dict[str, int]]) -> Path:
    return demo[0]


def _catalog() -> dict[str, Any]:
    return tomllib.loads((CATALOG_DIR / "catalog.toml").read_text(encoding="utf-8"))


def _queries() -> list[dict[str, Any]]:
    queries: list[dict[str, Any]] = _catalog()["query"]
    return queries


# ------------------------------------------------------------------ generator


def test_same_seed_gives_identical_database(demo_db: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.sqlite"
    generate(again, seed=7)
    assert _digest(again) == _digest(demo_db)
    assert again.read_bytes() == demo_db.read_bytes()


def test_generate_leaves_only_the_final_file(demo_db: Path) -> None:
    assert [p.name for p in demo_db.parent.iterdir()] == ["demo.sqlite"]


def test_row_counts_are_reported_and_large_enough(demo: tuple[Path, dict[str, int]]) -> None:
    db, counts = demo
    assert sorted(counts) == sorted(TABLES)
    with _read_only(db) as conn:
        for table, reported in counts.items():
            (actual,) = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
            assert actual == reported, table
    assert sum(counts.values()) >= 100_000
    assert counts["customers"] == 3000
    assert counts["orders"] == 40000
    assert 25_000 <= counts["invoices"] <= 35_000
    assert 22_000 <= counts["payments"] <= 34_000


def test_every_table_has_a_tenant_column_and_rows_for_every_tenant(demo_db: Path) -> None:
    with _read_only(demo_db) as conn:
        names = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        ).fetchall()
        assert tuple(name for (name,) in names) == TABLES
        for table in TABLES:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            assert "tenant" in columns, table
            per_tenant = dict(
                conn.execute(f"SELECT tenant, COUNT(*) FROM {table} GROUP BY tenant").fetchall()  # noqa: S608
            )
            assert sorted(per_tenant) == list(TENANTS), table
            assert all(n > 0 for n in per_tenant.values()), table


def test_billing_data_is_consistent(demo_db: Path) -> None:
    with _read_only(demo_db) as conn:

        def one(sql: str, *args: object) -> Any:
            return conn.execute(sql, args).fetchone()[0]

        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        # One invoice per shipped or delivered order, none for the others.
        assert one("SELECT COUNT(*) FROM invoices") == one(
            "SELECT COUNT(*) FROM orders WHERE status IN ('shipped', 'delivered')"
        )
        assert (
            one(
                "SELECT COUNT(*) FROM invoices i JOIN orders o USING (order_id) "
                "WHERE o.status NOT IN ('shipped', 'delivered') OR o.tenant <> i.tenant "
                "OR o.customer_id <> i.customer_id OR o.total_cents <> i.net_cents"
            )
            == 0
        )
        # Totals add up, in integer cents.
        assert (
            one(
                "SELECT COUNT(*) FROM orders o WHERE o.total_cents <> "
                "(SELECT SUM(l.line_cents) FROM order_lines l WHERE l.order_id = o.order_id)"
            )
            == 0
        )
        assert one("SELECT COUNT(*) FROM invoices WHERE amount_cents <> net_cents + tax_cents") == 0
        # Dates: orders in 2025-2026 up to the snapshot; payments after issue, not in the future.
        assert one("SELECT MIN(ordered_on) FROM orders") >= "2025-01-01"
        assert one("SELECT MAX(ordered_on) FROM orders") <= SNAPSHOT.isoformat()
        assert (
            one(
                "SELECT COUNT(*) FROM payments p JOIN invoices i USING (invoice_id) "
                "WHERE p.paid_on < i.issued_on OR p.paid_on > ? OR p.tenant <> i.tenant",
                SNAPSHOT.isoformat(),
            )
            == 0
        )


def test_payments_cover_every_collection_case(demo_db: Path) -> None:
    paid = (
        "SELECT i.tenant, i.amount_cents, COALESCE(SUM(p.amount_cents), 0) AS paid "
        "FROM invoices i LEFT JOIN payments p USING (invoice_id) GROUP BY i.invoice_id"
    )
    cases = (
        ("unpaid", "paid = 0"),
        ("partly paid", "paid > 0 AND paid < amount_cents"),
        ("paid", "paid = amount_cents"),
        ("overpaid", "paid > amount_cents"),
    )
    with _read_only(demo_db) as conn:
        for tenant in TENANTS:
            for case, condition in cases:
                (n,) = conn.execute(
                    f"SELECT COUNT(*) FROM ({paid}) WHERE tenant = ? AND {condition}",  # noqa: S608
                    (tenant,),
                ).fetchone()
                assert n > 0, (tenant, case)
        fixed = f"SELECT COUNT(*) FROM ({paid}) WHERE paid = amount_cents"  # noqa: S608
        (fully,) = conn.execute(fixed).fetchone()
        (invoices,) = conn.execute("SELECT COUNT(*) FROM invoices").fetchone()
        assert fully > invoices * 0.7


# ------------------------------------------------------------------ catalog queries


def test_every_entry_has_a_sample_with_exactly_its_parameters() -> None:
    queries = _queries()
    assert len(queries) >= 7
    assert sorted(q["id"] for q in queries) == sorted(SAMPLES)
    for query in queries:
        params, _ = SAMPLES[query["id"]]
        assert sorted(params) == sorted(query.get("params", {})), query["id"]


def test_catalog_covers_the_parameter_types_and_a_claim() -> None:
    queries = {q["id"]: q for q in _queries()}
    types = {p["type"] for q in queries.values() for p in q.get("params", {}).values()}
    assert {"integer", "number", "string", "boolean", "date", "enum"} <= types
    assert queries["invoices.unpaid"]["claim"] == {"expect": "empty", "surface": "exhaustive"}
    for query in queries.values():
        if query.get("tenant_scoped"):
            assert query["params"][query["tenant_param"]]["choices"] == list(TENANTS)


def _has_top_level_order_by(sql: str) -> bool:
    """True when ORDER BY appears outside every parenthesis (comments removed)."""
    text = re.sub(r"--[^\n]*", "", sql)
    depth, top = 0, []
    for char in text:
        depth += char == "("
        depth -= char == ")"
        top.append(char if depth == 0 else " ")
    return re.search(r"\bORDER\s+BY\b", "".join(top), re.IGNORECASE) is not None


def _run(db: Path, sql: str, params: dict[str, object], *, reverse: bool) -> list[tuple[Any, ...]]:
    with _read_only(db) as conn:
        conn.execute(f"PRAGMA reverse_unordered_selects = {int(reverse)}")
        return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize("entry_id", sorted(SAMPLES))
def test_query_runs_read_only_in_a_determined_order(demo_db: Path, entry_id: str) -> None:
    query = next(q for q in _queries() if q["id"] == entry_id)
    sql = (CATALOG_DIR / query["sql"]).read_text(encoding="utf-8")
    params, at_least = SAMPLES[entry_id]

    rows = _run(demo_db, sql, params, reverse=False)

    assert len(rows) >= at_least
    assert len(rows) <= query["max_rows"]
    if _has_top_level_order_by(sql):
        # SQLite scans in the opposite order under this pragma: only ORDER BY keeps rows put.
        assert _run(demo_db, sql, params, reverse=True) == rows
    else:
        assert len(rows) == 1, "a query without a top-level ORDER BY must return a single row"


def test_read_only_connection_refuses_writes(demo_db: Path) -> None:
    with _read_only(demo_db) as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM payments")


def _unpaid(db: Path, tenant: str, issued_before: str) -> list[tuple[Any, ...]]:
    sql = (CATALOG_DIR / "queries" / "invoices_unpaid.sql").read_text(encoding="utf-8")
    return _run(db, sql, {"tenant": tenant, "issued_before": issued_before}, reverse=False)


def test_invoices_unpaid_finds_unpaid_invoices_in_every_tenant(demo_db: Path) -> None:
    for tenant in TENANTS:
        assert _unpaid(demo_db, tenant, "2100-01-01"), tenant


def test_invoices_unpaid_shows_absence_for_acme_before_march(demo_db: Path) -> None:
    assert _unpaid(demo_db, "acme", "2026-03-01") == []
    assert _unpaid(demo_db, "globex", "2026-03-01")
    assert _unpaid(demo_db, "initech", "2026-03-01")


def test_catalog_loads_and_accepts_the_sample_inputs() -> None:
    catalog = load_catalog_dir(CATALOG_DIR)
    assert sorted(e.id for e in catalog.entries) == sorted(SAMPLES | COMMAND_SAMPLES)
    for entry in catalog.entries:
        params, _ = (SAMPLES | COMMAND_SAMPLES)[entry.id]
        assert bind_inputs(entry, params, from_text=False) == params, entry.id


@pytest.mark.parametrize("entry_id", sorted(COMMAND_SAMPLES))
def test_command_prints_its_sample_output(entry_id: str, tmp_path: Path) -> None:
    entry = load_catalog_dir(CATALOG_DIR).entry(entry_id)
    assert isinstance(entry, CommandEntry)
    params, expected = COMMAND_SAMPLES[entry_id]
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    inputs = bind_inputs(entry, params, from_text=False)
    result = run_command(
        spec_for_entry(entry), inputs, stdout_path=out, stderr_path=err, base_env={}
    )
    assert (result.exit_code, out.read_bytes(), err.read_bytes()) == (0, expected, b"")


# ------------------------------------------------------------------ demo keys

DEMO_TOKENS = {
    "gvx-demo-alice": ("alice", ("analyst",), "acme"),
    "gvx-demo-bob": ("bob", ("auditor",), "globex"),
    "gvx-demo-carol": ("carol", ("operator",), "*"),
}


def test_demo_tokens_resolve_to_their_principals() -> None:
    keyring = ApiKeyring.from_file(DEMO / "keys.json")
    now = datetime(2026, 6, 30, tzinfo=UTC)
    for token, (principal, roles, tenant) in DEMO_TOKENS.items():
        resolved = keyring.verify(token, now)
        assert (resolved.id, resolved.roles, resolved.tenant) == (principal, roles, tenant)


def test_demo_tokens_are_documented_and_only_hashed_in_the_keys_file() -> None:
    tokens_md = (DEMO / "TOKENS.md").read_text(encoding="utf-8")
    keys_json = (DEMO / "keys.json").read_text(encoding="utf-8")
    for token in DEMO_TOKENS:
        assert token in tokens_md
        assert token not in keys_json
