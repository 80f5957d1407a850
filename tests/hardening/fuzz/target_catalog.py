"""Fuzz target: any bytes as ``catalog.toml`` (and, after a marker line, as its SQL files).

Documented failures only: :func:`catalog.load.parse_catalog` raises ``CatalogError``
(``CatalogLoadError``, ``SqlRejected``, ``CatalogErrors``), naming the file, line, entry
and key; bytes that are not UTF-8 are refused by the directory loader before parsing, as
here. The SQL the entries name comes from the demo catalog's files, or from the input's
bytes after ``SQL_MARK`` for every path, so the static read-only check is fuzzed too.
"""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.errors import CatalogError
from catalog.load import parse_catalog

if TYPE_CHECKING:
    from collections.abc import Iterator

SQL_MARK = b"\n#--SQL--\n"
_DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo" / "catalog"
_SMALL = b"""[catalog]
name = "fuzz"
version = "1"

[sources.db]
engine = "postgresql"

[[query]]
id = "orders.by_customer"
title = "Orders"
source = "db"
sql = "q.sql"
timeout_ms = 5000

[query.params.customer_id]
type = "integer"
min = 1

[[command]]
id = "system.date"
title = "Date"
argv = ["/bin/date", "+%F", "{day}"]

[command.params.day]
type = "date"
"""


@cache
def _demo_sql() -> dict[str, bytes]:
    return {str(path.relative_to(_DEMO)): path.read_bytes() for path in _DEMO.rglob("*.sql")}


def prepare() -> None:
    _demo_sql()


def seeds() -> list[bytes]:
    demo = (_DEMO / "catalog.toml").read_bytes()
    one_sql = _demo_sql()["queries/orders_by_customer.sql"]
    return [
        demo,
        demo + SQL_MARK + one_sql,
        _SMALL
        + SQL_MARK
        + b"SELECT id, total FROM orders WHERE customer_id = :customer_id ORDER BY id",
        _SMALL + SQL_MARK + b"WITH x AS (SELECT 1 AS a) SELECT a FROM x ORDER BY a",
    ]


def _executable(_path: str) -> Iterator[bytes]:
    """An executable's bytes for the pin (a second reader: the catalog never runs it)."""
    yield b"\x7fELF fuzz"


def test_one_input(data: bytes) -> None:
    toml, marked, sql = data.partition(SQL_MARK)
    try:
        text = toml.decode("utf-8")
    except UnicodeDecodeError:
        return

    def read_sql(relative: str) -> bytes:
        if marked:
            return sql
        found = _demo_sql().get(relative)
        if found is None:
            raise ValueError(f"{relative} is not a regular file")
        return found

    with contextlib.suppress(CatalogError):
        parse_catalog(text, read_sql, read_executable=_executable)
