"""Generate the govex demo database: a small multi-tenant billing system in SQLite.

Usage::

    python examples/demo/generate.py OUT.sqlite [--seed 7]

The content is a pure function of the seed: rows come from ``random.Random(seed)``
alone (no wall clock, no hash order), are written in a fixed order with a fixed
page size, and the file is vacuumed at the end. The same seed therefore gives the
same ``iterdump()`` text and, with the same SQLite library, the same file bytes.

The data describe three tenants (``acme``, ``globex``, ``initech``) of a billing
platform, as of the snapshot day 2026-06-30: customers, products, orders with
their lines (2025-01-01 to the snapshot), one invoice per shipped or delivered
order, and payments. Most invoices are paid; some are paid in two instalments,
some only partly, a few twice or too much; recent invoices and a small share of
bad debt at ``globex`` and ``initech`` have no payment at all. ``acme`` collects
strictly: every ``acme`` invoice issued before 2026-03-01 has a payment.

The database is written to a temporary file beside ``OUT`` and renamed into
place, so a half-written database is never left under the final name.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import os
import random
import sqlite3
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

SNAPSHOT = date(2026, 6, 30)
FIRST_ORDER_DAY = date(2025, 1, 1)
PAGE_SIZE = 4096
N_CUSTOMERS = 3000
N_ORDERS = 40000


@dataclass(frozen=True)
class _Tenant:
    """A tenant of the demo platform (internal to the generator)."""

    tenant: str
    display_name: str
    currency: str
    tax_rate_bp: int  # tax in basis points of the net amount
    weight: int  # share of customers
    bad_debt: float  # share of invoices that are never paid
    countries: tuple[tuple[str, int], ...]
    methods: tuple[tuple[str, int], ...]


TENANTS = (
    _Tenant(
        "acme",
        "Acme Corporation",
        "USD",
        0,
        13,
        0.0,
        (("US", 70), ("CA", 15), ("MX", 8), ("GB", 7)),
        (("card", 60), ("ach", 30), ("paypal", 10)),
    ),
    _Tenant(
        "globex",
        "Globex GmbH",
        "EUR",
        1900,
        10,
        0.03,
        (("DE", 45), ("AT", 15), ("CH", 10), ("FR", 12), ("NL", 10), ("IT", 8)),
        (("sepa_debit", 50), ("bank_transfer", 35), ("card", 15)),
    ),
    _Tenant(
        "initech",
        "Initech Ltd",
        "GBP",
        2000,
        7,
        0.02,
        (("GB", 75), ("IE", 15), ("FR", 5), ("DE", 5)),
        (("bacs", 45), ("card", 40), ("bank_transfer", 15)),
    ),
)

FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Ana", "Andrea", "Arjun", "Ben", "Bianca", "Carlos", "Chen",
    "Chloe", "Daniel", "Diego", "Elena", "Emma", "Fatima", "Felix", "Grace", "Hana", "Hugo",
    "Ines", "Isaac", "Jack", "Jana", "Jonas", "Julia", "Kai", "Kenji", "Lara", "Leon",
    "Lucia", "Maria", "Marek", "Maya", "Mei", "Mohammed", "Nadia", "Noah", "Olivia", "Omar",
    "Paula", "Priya", "Rafael", "Rosa", "Samuel", "Sara", "Sofia", "Tariq", "Thomas", "Yara",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Becker", "Brown", "Costa", "Dubois", "Fischer", "Garcia", "Hansen", "Hoffmann",
    "Ivanova", "Jensen", "Kaur", "Kim", "Kowalski", "Lee", "Lopez", "Martin", "Meyer",
    "Moreau", "Murphy", "Nakamura", "Nguyen", "Novak", "O'Brien", "Patel", "Rossi", "Schmidt",
    "Silva", "Smith", "Tanaka", "Taylor", "Wagner", "Walsh", "Weber", "Wilson", "Young",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
PRODUCT_KINDS = (
    ("Cloud Backup", 1200, 9900),
    ("Support Plan", 4900, 49900),
    ("Seat Licence", 800, 4500),
    ("Storage Add-on", 500, 3000),
    ("Onboarding", 25000, 150000),
    ("Training Day", 60000, 180000),
    ("API Calls Pack", 1000, 20000),
    ("Hardware Token", 2500, 7500),
    ("Consulting Hour", 9000, 22000),
    ("Data Export", 1500, 12000),
)
PRODUCT_TIERS = ("Basic", "Standard", "Plus", "Pro", "Enterprise")
PAYMENT_TERMS = ((14, 30), (30, 55), (45, 15))  # (days, weight)

# Shares (probabilities) of the random draws that shape the data.
INACTIVE_PRODUCTS = 0.06
REFUSED_ORDERS = (("cancelled", 0.13), ("declined", 0.11))  # the other orders ship
PUNCTUAL_PAYERS = 0.88  # pay within 18 days after the due day; the others up to 60 days late
PAYMENT_CASES = (  # after the tenant's bad debt; the other invoices are paid once, in full
    ("partly", 0.04),
    ("instalments", 0.06),
    ("twice", 0.005),
    ("too_much", 0.005),
)

SCHEMA = """
CREATE TABLE tenants (
  tenant        TEXT PRIMARY KEY,
  display_name  TEXT NOT NULL,
  currency      TEXT NOT NULL,
  tax_rate_bp   INTEGER NOT NULL
) STRICT;
CREATE TABLE products (
  product_id        INTEGER PRIMARY KEY,
  tenant            TEXT NOT NULL REFERENCES tenants (tenant),
  sku               TEXT NOT NULL,
  name              TEXT NOT NULL,
  unit_price_cents  INTEGER NOT NULL CHECK (unit_price_cents > 0),
  active            INTEGER NOT NULL CHECK (active IN (0, 1)),
  UNIQUE (tenant, sku)
) STRICT;
CREATE TABLE customers (
  customer_id         INTEGER PRIMARY KEY,
  tenant              TEXT NOT NULL REFERENCES tenants (tenant),
  name                TEXT NOT NULL,
  email               TEXT NOT NULL,
  country             TEXT NOT NULL,
  payment_terms_days  INTEGER NOT NULL,
  created_at          TEXT NOT NULL,
  UNIQUE (tenant, email)
) STRICT;
CREATE TABLE orders (
  order_id     INTEGER PRIMARY KEY,
  tenant       TEXT NOT NULL REFERENCES tenants (tenant),
  customer_id  INTEGER NOT NULL REFERENCES customers (customer_id),
  ordered_on   TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN
                 ('pending', 'processing', 'shipped', 'delivered', 'cancelled', 'declined')),
  shipped_on   TEXT,
  total_cents  INTEGER NOT NULL CHECK (total_cents >= 0),
  currency     TEXT NOT NULL
) STRICT;
CREATE TABLE order_lines (
  order_line_id     INTEGER PRIMARY KEY,
  tenant            TEXT NOT NULL REFERENCES tenants (tenant),
  order_id          INTEGER NOT NULL REFERENCES orders (order_id),
  line_no           INTEGER NOT NULL,
  product_id        INTEGER NOT NULL REFERENCES products (product_id),
  quantity          INTEGER NOT NULL CHECK (quantity > 0),
  unit_price_cents  INTEGER NOT NULL,
  line_cents        INTEGER NOT NULL,
  UNIQUE (order_id, line_no)
) STRICT;
CREATE TABLE invoices (
  invoice_id      INTEGER PRIMARY KEY,
  tenant          TEXT NOT NULL REFERENCES tenants (tenant),
  invoice_number  TEXT NOT NULL UNIQUE,
  order_id        INTEGER NOT NULL UNIQUE REFERENCES orders (order_id),
  customer_id     INTEGER NOT NULL REFERENCES customers (customer_id),
  net_cents       INTEGER NOT NULL,
  tax_cents       INTEGER NOT NULL,
  amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
  currency        TEXT NOT NULL,
  issued_on       TEXT NOT NULL,
  due_on          TEXT NOT NULL
) STRICT;
CREATE TABLE payments (
  payment_id    INTEGER PRIMARY KEY,
  tenant        TEXT NOT NULL REFERENCES tenants (tenant),
  invoice_id    INTEGER NOT NULL REFERENCES invoices (invoice_id),
  paid_on       TEXT NOT NULL,
  amount_cents  INTEGER NOT NULL CHECK (amount_cents > 0),
  method        TEXT NOT NULL,
  reference     TEXT NOT NULL UNIQUE
) STRICT;
CREATE INDEX customers_by_tenant ON customers (tenant, customer_id);
CREATE INDEX products_by_tenant ON products (tenant, product_id);
CREATE INDEX orders_by_customer ON orders (tenant, customer_id, ordered_on);
CREATE INDEX orders_by_day ON orders (tenant, ordered_on);
CREATE INDEX orders_by_total ON orders (tenant, total_cents);
CREATE INDEX invoices_by_issue ON invoices (tenant, issued_on);
CREATE INDEX invoices_by_due ON invoices (tenant, due_on);
CREATE INDEX invoices_by_customer ON invoices (customer_id);
CREATE INDEX payments_by_invoice ON payments (invoice_id, paid_on);
CREATE INDEX payments_by_day ON payments (tenant, paid_on);
"""


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    """Draw one value of ``(value, weight)`` pairs (internal helper)."""
    values = [value for value, _ in weighted]
    weights = [weight for _, weight in weighted]
    return rng.choices(values, weights=weights)[0]


def _day(rng: random.Random, first: date, last: date) -> date:
    """Draw a day uniformly from ``[first, last]`` (internal helper)."""
    return first + timedelta(days=rng.randint(0, (last - first).days))


@dataclass(frozen=True)
class _Customer:
    customer_id: int
    tenant: _Tenant
    terms: int
    created_on: date


def _tenants_rows() -> list[tuple[object, ...]]:
    return [(t.tenant, t.display_name, t.currency, t.tax_rate_bp) for t in TENANTS]


def _products(rng: random.Random) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for tenant in TENANTS:
        for kind_no, (kind, low, high) in enumerate(PRODUCT_KINDS):
            for tier_no, tier in enumerate(PRODUCT_TIERS):
                price = rng.randint(low, high) // 100 * 100 - 1
                sku = f"{tenant.tenant[:3].upper()}-{kind_no + 1:02d}{tier_no + 1}"
                active = 0 if rng.random() < INACTIVE_PRODUCTS else 1
                rows.append((len(rows) + 1, tenant.tenant, sku, f"{kind} {tier}", price, active))
    return rows


def _customers(rng: random.Random) -> tuple[list[_Customer], list[tuple[object, ...]]]:
    customers: list[_Customer] = []
    rows: list[tuple[object, ...]] = []
    seen_emails: set[tuple[str, str]] = set()
    weights = [t.weight for t in TENANTS]
    terms = tuple((str(days), weight) for days, weight in PAYMENT_TERMS)
    for customer_id in range(1, N_CUSTOMERS + 1):
        tenant = rng.choices(TENANTS, weights=weights)[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        base = f"{first}.{last}".lower().replace("'", "")
        domain = rng.choice(EMAIL_DOMAINS)
        email = f"{base}@{domain}"
        for n in itertools.count(2):
            if (tenant.tenant, email) not in seen_emails:
                break
            email = f"{base}{n}@{domain}"
        seen_emails.add((tenant.tenant, email))
        created = _day(rng, date(2022, 1, 1), date(2026, 5, 31))
        seconds = rng.randint(0, 86399)
        created_at = (
            f"{created.isoformat()}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:"
            f"{seconds % 60:02d}Z"
        )
        days = int(_pick(rng, terms))
        country = _pick(rng, tenant.countries)
        customers.append(_Customer(customer_id, tenant, days, created))
        rows.append(
            (customer_id, tenant.tenant, f"{first} {last}", email, country, days, created_at)
        )
    return customers, rows


@dataclass(frozen=True)
class _Order:
    customer: _Customer
    ordered_on: date
    draw: int  # generation index: the tie-breaker that keeps the order total


def _draw_orders(rng: random.Random, customers: list[_Customer]) -> list[_Order]:
    """Orders spread over customers with a long-tailed activity, sorted by day."""
    activity = [rng.paretovariate(1.6) for _ in customers]
    cumulative = list(itertools.accumulate(activity))
    total = cumulative[-1]
    orders: list[_Order] = []
    for draw in range(N_ORDERS):
        index = min(bisect.bisect_right(cumulative, rng.random() * total), len(customers) - 1)
        customer = customers[index]
        first = max(FIRST_ORDER_DAY, customer.created_on)
        orders.append(_Order(customer, _day(rng, first, SNAPSHOT), draw))
    orders.sort(key=lambda o: (o.ordered_on, o.draw))
    return orders


@dataclass
class _Tables:
    orders: list[tuple[object, ...]]
    lines: list[tuple[object, ...]]
    invoices: list[tuple[object, ...]]
    payments: list[tuple[object, ...]]


def _case(draw: float, cases: tuple[tuple[str, float], ...]) -> str | None:
    """Pick the case whose share a uniform ``draw`` falls into; ``None`` past the last one."""
    for case, share in cases:
        if draw < share:
            return case
        draw -= share
    return None


def _status(rng: random.Random, ordered_on: date) -> tuple[str, date | None]:
    """Status of an order on the snapshot day and its ship day, if shipped."""
    refused = _case(rng.random(), REFUSED_ORDERS)
    if refused is not None:
        return refused, None
    shipped_on = ordered_on + timedelta(days=rng.randint(1, 6))
    if shipped_on > SNAPSHOT:
        return ("pending" if ordered_on == SNAPSHOT else "processing"), None
    delivered = shipped_on + timedelta(days=rng.randint(2, 8)) <= SNAPSHOT
    return ("delivered" if delivered else "shipped"), shipped_on


def _payment_plan(
    rng: random.Random, tenant: _Tenant, amount: int, due_on: date
) -> list[tuple[date, int]]:
    """Payments of one invoice as ``(paid_on, cents)``, before dropping future ones."""
    punctual = rng.random() < PUNCTUAL_PAYERS
    lateness = rng.randint(-12, 18) if punctual else rng.randint(19, 60)
    paid_on = due_on + timedelta(days=lateness)
    later = paid_on + timedelta(days=rng.randint(10, 40))
    case = _case(rng.random(), (("bad_debt", tenant.bad_debt), *PAYMENT_CASES))
    if case == "bad_debt":
        return []
    if case == "partly":  # the rest stays open
        return [(paid_on, max(1, amount * rng.randint(20, 80) // 100))]
    if case == "instalments":
        first = amount * rng.randint(30, 70) // 100
        return [(paid_on, first), (later, amount - first)]
    if case == "twice":  # a duplicate payment a few days later
        return [(paid_on, amount), (paid_on + timedelta(days=rng.randint(0, 3)), amount)]
    if case == "too_much":
        return [(paid_on, amount + rng.randint(1, 5000))]
    return [(paid_on, amount)]


@dataclass(frozen=True)
class _Invoice:
    shipped_on: date
    order_id: int
    customer: _Customer
    net: int

    @property
    def tax(self) -> int:
        return (self.net * self.customer.tenant.tax_rate_bp + 5000) // 10000

    @property
    def due_on(self) -> date:
        return self.shipped_on + timedelta(days=self.customer.terms)


def _orders_and_lines(
    rng: random.Random, orders: list[_Order], products: list[tuple[object, ...]], tables: _Tables
) -> list[_Invoice]:
    """Fill order and order line rows; return the invoices to issue, in order id order."""
    by_tenant: dict[str, list[tuple[int, int]]] = {t.tenant: [] for t in TENANTS}
    for product_id, tenant, _sku, _name, price, active in products:
        if active:
            by_tenant[str(tenant)].append((int(str(product_id)), int(str(price))))
    invoices: list[_Invoice] = []
    for order_id, order in enumerate(orders, start=1):
        customer, tenant = order.customer, order.customer.tenant
        total = 0
        for line_no in range(1, rng.choice((1, 1, 2, 2, 2, 3, 3, 4, 5)) + 1):
            product_id, price = rng.choice(by_tenant[tenant.tenant])
            quantity = rng.choice((1, 1, 1, 2, 2, 3, 5, 10))
            total += price * quantity
            line = (order_id, line_no, product_id, quantity, price, price * quantity)
            tables.lines.append((len(tables.lines) + 1, tenant.tenant, *line))
        status, shipped_on = _status(rng, order.ordered_on)
        shipped = None if shipped_on is None else shipped_on.isoformat()
        tables.orders.append(
            (
                order_id,
                tenant.tenant,
                customer.customer_id,
                order.ordered_on.isoformat(),
                status,
                shipped,
                total,
                tenant.currency,
            )
        )
        if shipped_on is not None:
            invoices.append(_Invoice(shipped_on, order_id, customer, total))
    return invoices


def _billing(
    rng: random.Random, orders: list[_Order], products: list[tuple[object, ...]]
) -> _Tables:
    """Order lines, invoices and payments for the drawn orders (ids in time order)."""
    tables = _Tables([], [], [], [])
    invoices = _orders_and_lines(rng, orders, products, tables)
    invoices.sort(key=lambda invoice: (invoice.shipped_on, invoice.order_id))
    planned: list[tuple[date, int, int, _Tenant, int]] = []  # paid_on, invoice, seq, tenant, cents
    numbers: dict[tuple[str, int], int] = {}
    for invoice_id, invoice in enumerate(invoices, start=1):
        tenant, issued_on = invoice.customer.tenant, invoice.shipped_on
        key = (tenant.tenant, issued_on.year)
        numbers[key] = numbers.get(key, 0) + 1
        amount = invoice.net + invoice.tax
        tables.invoices.append(
            (
                invoice_id,
                tenant.tenant,
                f"{tenant.tenant[:3].upper()}-{issued_on.year}-{numbers[key]:06d}",
                invoice.order_id,
                invoice.customer.customer_id,
                invoice.net,
                invoice.tax,
                amount,
                tenant.currency,
                issued_on.isoformat(),
                invoice.due_on.isoformat(),
            )
        )
        for seq, (paid_on, cents) in enumerate(_payment_plan(rng, tenant, amount, invoice.due_on)):
            if paid_on <= SNAPSHOT:  # a payment before the invoice counts on its issue day
                planned.append((max(paid_on, issued_on), invoice_id, seq, tenant, cents))
    planned.sort(key=lambda p: (p[0], p[1], p[2]))
    for payment_id, (paid_on, invoice_id, _seq, tenant, cents) in enumerate(planned, start=1):
        reference = f"PAY-{paid_on:%Y%m%d}-{payment_id:06d}"
        method = _pick(rng, tenant.methods)
        tables.payments.append(
            (payment_id, tenant.tenant, invoice_id, paid_on.isoformat(), cents, method, reference)
        )
    return tables


def _insert(conn: sqlite3.Connection, table: str, rows: list[tuple[object, ...]]) -> int:
    marks = ", ".join("?" * len(rows[0]))
    conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608 - fixed names
    return len(rows)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def generate(path: Path, seed: int = 7) -> dict[str, int]:
    """Write the demo database to ``path`` and return its row counts by table.

    The same ``seed`` always gives the same content. The file appears under
    ``path`` only once complete (temporary file, then an atomic rename); an
    existing file at ``path`` is replaced. Raises ``OSError`` or
    ``sqlite3.Error`` when the file cannot be written.
    """
    rng = random.Random(seed)
    products = _products(rng)
    customers, customer_rows = _customers(rng)
    tables = _billing(rng, _draw_orders(rng, customers), products)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(SCHEMA)
            conn.execute("BEGIN")
            counts["tenants"] = _insert(conn, "tenants", _tenants_rows())
            counts["products"] = _insert(conn, "products", products)
            counts["customers"] = _insert(conn, "customers", customer_rows)
            counts["orders"] = _insert(conn, "orders", tables.orders)
            counts["order_lines"] = _insert(conn, "order_lines", tables.lines)
            counts["invoices"] = _insert(conn, "invoices", tables.invoices)
            counts["payments"] = _insert(conn, "payments", tables.payments)
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("VACUUM")
        finally:
            conn.close()
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        tmp.replace(path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return counts


def main(argv: list[str] | None = None) -> int:
    """Command line: ``generate.py OUT.sqlite [--seed N]``; prints the row counts."""
    parser = argparse.ArgumentParser(description="Generate the govex demo billing database.")
    parser.add_argument("out", type=Path, help="path of the SQLite file to write")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    counts = generate(args.out, args.seed)
    for table, rows in counts.items():
        print(f"{table:12} {rows:>8}")
    print(f"{'total':12} {sum(counts.values()):>8}  -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
