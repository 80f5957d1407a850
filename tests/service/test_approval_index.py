"""The approvals index on SQLite and PostgreSQL: migration s0003, insert, find, latest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from ledger.migrate import current_revision, head_revision, upgrade
from ledger.sql_session import WRITE_OPTION, prepare_engine
from service.approval_index import ApprovalIndex
from service.approvals import ApprovalRecord
from service.call_index import SERVICE_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Iterator

T0 = datetime(2026, 6, 30, 12, 0, 0, 123456, tzinfo=UTC)
RECORD = ApprovalRecord(
    approval_id="01APPROVAL",
    entry_id="orders.large",
    entry_digest="e" * 64,
    inputs_digest="a" * 64,
    requester="alice",
    requester_tenant="acme",
    tenant_relation="own",
    approver="carol",
    approved_at=T0,
    expires_at=T0 + timedelta(hours=1),
    seq=3,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(url)
    prepare_engine(engine)
    yield engine
    engine.dispose()


def _upgrade_to(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(SERVICE_SCHEMA.scripts))
        config.attributes["connection"] = conn
        config.attributes["version_table"] = SERVICE_SCHEMA.version_table
        command.upgrade(config, revision)


def test_a_database_at_s0002_upgrades_to_the_approvals_table(engine: sa.Engine) -> None:
    _upgrade_to(engine, "s0002")
    assert not sa.inspect(engine).has_table("govex_approvals")
    upgrade(engine.execution_options(**{WRITE_OPTION: True}), SERVICE_SCHEMA)
    assert current_revision(engine, SERVICE_SCHEMA) == head_revision(SERVICE_SCHEMA)
    indexes = {
        i["name"]: i["column_names"] for i in sa.inspect(engine).get_indexes("govex_approvals")
    }
    assert indexes["ix_govex_approvals_lookup"] == ["entry_id", "requester", "inputs_digest"]


def test_insert_find_and_latest_round_trip(engine: sa.Engine) -> None:
    upgrade(engine.execution_options(**{WRITE_OPTION: True}), SERVICE_SCHEMA)
    index = ApprovalIndex(engine)
    later = replace(RECORD, approval_id="02APPROVAL", seq=9, expires_at=T0 + timedelta(hours=2))
    other_inputs = replace(RECORD, approval_id="03APPROVAL", seq=5, inputs_digest="b" * 64)
    other_entry = replace(RECORD, approval_id="04APPROVAL", seq=6, entry_id="orders.lines")
    for record in (RECORD, later, other_inputs, other_entry):
        index.insert(record)
    found = index.find("orders.large", "alice", "a" * 64)
    assert sorted(found, key=lambda r: r.seq) == [RECORD, later]  # times round-trip exactly
    assert index.find("orders.large", "bob", "a" * 64) == []
    assert [r.seq for r in index.latest()] == [9, 6, 5, 3]
    assert [r.seq for r in index.latest("orders.large", limit=2)] == [9, 5]
