"""Suite-wide settings: Hypothesis profile, structlog reset, and a real PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import structlog
from hypothesis import settings

from tests.pg_harness import PostgresServer, PostgresUnavailableError

# Tests configure govex explicitly: settings from the shell (`make` exports the demo's
# GOVEX_* variables, including a key file that a fresh clone does not have) must not leak in.
for _name in [name for name in os.environ if name.startswith("GOVEX_")]:
    del os.environ[_name]

# Speed lives in bench/, never in a test deadline.
settings.register_profile("ci", deadline=None, print_blob=True)
settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def _ci() -> bool:
    return os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL 15 server for the whole session; skipped without one, failed under CI."""
    try:
        server = PostgresServer.start_new()
    except PostgresUnavailableError as exc:
        if _ci():
            pytest.fail(f"PostgreSQL is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not available: {exc}")
    try:
        server.ensure_service_role()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's server; its SQLAlchemy URL (superuser)."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:16]}")
