"""Source values: SQLite paths or PostgreSQL URLs, whose passwords no message ever shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.model import QueryEntry
from service.errors import SourceUnavailable
from service.sources import PostgresSource, SqliteSource, parse_source, resolve_source

SECRET = "Pa55-w0rd-never-shown"


def _entry(engine: str, source: str = "src") -> QueryEntry:
    return QueryEntry.model_validate(
        {
            "id": "x.q",
            "title": "Q",
            "source": source,
            "engine": engine,
            "sql_file": "q.sql",
            "sql": "SELECT 1",
        }
    )


@pytest.mark.parametrize(
    ("value", "conninfo", "display"),
    [
        pytest.param(
            f"postgresql://reader:{SECRET}@db:5432/sales",
            f"postgresql://reader:{SECRET}@db:5432/sales",
            "postgresql://reader:***@db:5432/sales",
            id="postgresql",
        ),
        pytest.param(
            f"postgresql+psycopg://reader:{SECRET}@/sales?host=/run/pg&port=5433",
            f"postgresql://reader:{SECRET}@/sales?host=/run/pg&port=5433",
            "postgresql://reader:***@/sales?host=/run/pg&port=5433",
            id="sqlalchemy-form",
        ),
        pytest.param(
            f"postgres://reader@db/sales?password={SECRET}&sslpassword={SECRET}x&sslmode=require",
            f"postgresql://reader@db/sales?password={SECRET}&sslpassword={SECRET}x&sslmode=require",
            "postgresql://reader@db/sales?password=***&sslpassword=***&sslmode=require",
            id="password-parameters",
        ),
        pytest.param(
            "POSTGRESQL:///sales", "postgresql:///sales", "postgresql:///sales", id="bare"
        ),
    ],
)
def test_postgresql_urls_are_postgres_sources_with_the_password_hidden(
    value: str, conninfo: str, display: str
) -> None:
    source = parse_source("sales", value)
    assert isinstance(source, PostgresSource)
    assert source.engine == "postgresql"
    assert source.conninfo == conninfo
    assert source.redacted() == display
    assert SECRET not in repr(source)
    assert SECRET not in source.describe()


def test_a_percent_encoded_password_is_scrubbed_in_both_forms() -> None:
    source = parse_source("sales", "postgresql://reader:p%40ss%2Fw0rd%zz@db/sales")
    assert isinstance(source, PostgresSource)
    message = 'invalid percent-encoded token: "p%40ss%2Fw0rd%zz"; decoded p@ss/w0rd%zz'
    assert source.scrub(message) == 'invalid percent-encoded token: "***"; decoded ***'


def test_anything_else_is_a_sqlite_path() -> None:
    assert parse_source("demo", "var/demo.sqlite") == SqliteSource("demo", Path("var/demo.sqlite"))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(f"mysql://root:{SECRET}@db/x", "'mysql' URL", id="other-scheme"),
        pytest.param(
            f"postgresql+asyncpg://u:{SECRET}@db/x", "'postgresql\\+asyncpg' URL", id="other-driver"
        ),
        pytest.param(f"host=db user=u password={SECRET}", "key=value", id="libpq-keywords"),
        pytest.param(f"postgresql://u:{SECRET}@x@db/x", "outside its user part", id="two-ats"),
        pytest.param(f"postgresql://u:{SECRET}/x@db/x", "outside its user part", id="slash"),
        pytest.param(f"postgresql://u:{SECRET}@[db/x", "does not parse", id="bad-ipv6"),
    ],
)
def test_refused_values_are_never_repeated(value: str, match: str) -> None:
    with pytest.raises(SourceUnavailable, match=match) as caught:
        parse_source("sales", value)
    assert SECRET not in caught.value.message
    assert caught.value.where == "sales"


@pytest.mark.parametrize(
    ("engine", "value", "words"),
    [
        pytest.param(
            "postgresql",
            "var/demo.sqlite",
            ("engine postgresql", "a SQLite file (var/demo.sqlite)"),
            id="postgres-entry-on-sqlite",
        ),
        pytest.param(
            "sqlite",
            f"postgresql://u:{SECRET}@db/sales",
            ("engine sqlite", "a PostgreSQL database (postgresql://u:***@db/sales)"),
            id="sqlite-entry-on-postgres",
        ),
    ],
)
def test_an_entry_runs_only_on_a_source_of_its_engine(
    engine: str, value: str, words: tuple[str, ...]
) -> None:
    with pytest.raises(SourceUnavailable) as caught:
        resolve_source({"src": value}, _entry(engine))
    for word in words:
        assert word in caught.value.message
    assert SECRET not in caught.value.message
    assert caught.value.where == "src"


def test_a_matching_source_resolves_and_an_unconfigured_one_is_unavailable() -> None:
    source = resolve_source({"src": "postgresql:///sales"}, _entry("postgresql"))
    assert isinstance(source, PostgresSource)
    with pytest.raises(SourceUnavailable, match="'other' is not configured"):
        resolve_source({"src": "postgresql:///sales"}, _entry("postgresql", source="other"))
