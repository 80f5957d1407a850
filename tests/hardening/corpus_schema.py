"""A small, realistic shop schema with the same rows in PostgreSQL and SQLite.

Both engines get the same tables and the same deterministic rows (money in integer cents,
dates as ``YYYY-MM-DD``), so a query written once gives the same result on each: the
known-good corpus compares the two. PostgreSQL also gets what the mutating corpus aims at:
a sequence, a materialized view, GIN and BRIN indexes, and a large object (oid
:data:`CANARY_LO`), all owned by the superuser, none by the reader role.
"""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg

CANARY_LO = 424242
SEQUENCE = "invoice_no"
COUNTRIES = ("DE", "FR", "NL", "SE", "US")
TIERS = ("bronze", "silver", "gold")
CATEGORIES = ("books", "games", "garden", "kitchen", "tools")
STATUSES = ("open", "paid", "shipped", "cancelled")

_TABLES = """
CREATE TABLE customers (
  id integer PRIMARY KEY, name text NOT NULL, country text NOT NULL, tier text NOT NULL,
  signup_on date NOT NULL);
CREATE TABLE products (
  id integer PRIMARY KEY, sku text NOT NULL UNIQUE, name text NOT NULL, category text NOT NULL,
  price_cents integer NOT NULL);
CREATE TABLE orders (
  id integer PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers (id),
  ordered_on date NOT NULL, status text NOT NULL, attrs {json} NOT NULL);
CREATE TABLE order_items (
  order_id integer NOT NULL REFERENCES orders (id),
  product_id integer NOT NULL REFERENCES products (id),
  quantity integer NOT NULL, unit_price_cents integer NOT NULL,
  PRIMARY KEY (order_id, product_id));
CREATE TABLE employees (
  id integer PRIMARY KEY, name text NOT NULL, manager_id integer REFERENCES employees (id));
"""

_POSTGRES_EXTRAS = """
CREATE SEQUENCE invoice_no START 1000;
SELECT nextval('invoice_no');
CREATE INDEX orders_attrs_gin ON orders USING gin (attrs) WITH (fastupdate = on);
CREATE INDEX orders_ordered_on_brin ON orders USING brin (ordered_on);
CREATE MATERIALIZED VIEW order_totals AS
  SELECT order_id, sum(quantity * unit_price_cents) AS total_cents
  FROM order_items GROUP BY order_id;
SELECT lo_from_bytea(424242, 'canary large object');
"""  # CANARY_LO and SEQUENCE

_SQLITE_EXTRAS = """
CREATE INDEX orders_by_customer ON orders (customer_id);
CREATE VIEW order_totals AS
  SELECT order_id, sum(quantity * unit_price_cents) AS total_cents
  FROM order_items GROUP BY order_id;
"""


@dataclass(frozen=True)
class Rows:
    """Every table's rows, in insertion order (parents first)."""

    customers: list[tuple[object, ...]]
    products: list[tuple[object, ...]]
    orders: list[tuple[object, ...]]
    order_items: list[tuple[object, ...]]
    employees: list[tuple[object, ...]]

    def tables(self) -> list[tuple[str, list[tuple[object, ...]]]]:
        return [
            ("customers", self.customers),
            ("products", self.products),
            ("orders", self.orders),
            ("order_items", self.order_items),
            ("employees", self.employees),
        ]


def shop_rows(seed: int = 9) -> Rows:
    """The same rows on every run: 40 customers, 15 products, 200 orders, their items."""
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    start = date(2023, 1, 1)
    customers: list[tuple[object, ...]] = [
        (
            i,
            f"Customer {i:02d}",
            rng.choice(COUNTRIES),
            rng.choice(TIERS),
            (start + timedelta(days=rng.randrange(365))).isoformat(),
        )
        for i in range(1, 41)
    ]
    products: list[tuple[object, ...]] = [
        (i, f"SKU-{i:03d}", f"Product {i}", CATEGORIES[i % len(CATEGORIES)], 199 + 250 * i)
        for i in range(1, 16)
    ]
    orders: list[tuple[object, ...]] = []
    items: list[tuple[object, ...]] = []
    for i in range(1, 201):
        attrs = {"channel": rng.choice(["web", "shop", "phone"]), "gift": i % 7 == 0}
        if i % 5 == 0:
            attrs["coupon"] = f"C{i % 3}"
        orders.append(
            (
                i,
                rng.randrange(1, 41),
                (start + timedelta(days=rng.randrange(540))).isoformat(),
                rng.choice(STATUSES),
                json.dumps(attrs, sort_keys=True),
            )
        )
        items += [
            (i, product, rng.randrange(1, 6), 199 + 250 * product)
            for product in rng.sample(range(1, 16), rng.randrange(1, 5))
        ]
    employees: list[tuple[object, ...]] = [(1, "Ada", None)]
    employees += [(i, f"Employee {i}", rng.randrange(1, i)) for i in range(2, 16)]
    return Rows(customers, products, orders, items, employees)


def create_postgres(dsn: str) -> None:
    """Create the schema and rows in the (empty) database at ``dsn``, as its owner."""
    rows = shop_rows()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_TABLES.format(json="jsonb").encode())
        with conn.transaction(), conn.cursor() as cur:
            for table, values in rows.tables():
                insert = psycopg.sql.SQL("INSERT INTO {} VALUES ({})").format(
                    psycopg.sql.Identifier(table),
                    psycopg.sql.SQL(", ").join([psycopg.sql.Placeholder()] * len(values[0])),
                )
                cur.executemany(insert, values)
        conn.execute(_POSTGRES_EXTRAS.encode())
        conn.execute(b"ANALYZE")


def create_sqlite(path: Path, *, wal: bool = False) -> Path:
    """Create the schema and rows in a new SQLite file at ``path`` (WAL mode when asked)."""
    rows = shop_rows()
    conn = sqlite3.connect(path)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(_TABLES.format(json="text") + _SQLITE_EXTRAS)
        for table, values in rows.tables():
            marks = ", ".join(["?"] * len(values[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", values)  # noqa: S608
        conn.commit()
    finally:
        conn.close()
    return path
