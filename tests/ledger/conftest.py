"""Shared fixtures of the ledger tests: the conformance vectors, a store, sample bodies."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from ledger.migrations.append_only import append_only_ddl
from ledger.store import LedgerStore

if TYPE_CHECKING:
    from collections.abc import Iterator

# /work/shared/vectors sits beside the repository (see its README).
VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"

_DIGEST = {"sha256": "a" * 64, "blake3": "b" * 64}


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The shared conformance vectors; skipped when absent, a failure when CI=true."""
    if not VECTORS.is_dir():
        reason = f"conformance vectors not found at {VECTORS} (a plain clone has none)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires them")
        pytest.skip(reason)
    return VECTORS


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger database URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(ledger_url: str) -> Iterator[LedgerStore]:
    """A fresh ledger on each dialect (the whole store suite runs on both)."""
    with LedgerStore.open(ledger_url) as opened:
        yield opened


class Backdoor:
    """Tampering as a database owner would: SQL run with the append-only triggers off."""

    def __init__(self, url: str) -> None:
        self._engine = sa.create_engine(url)
        self.dialect = self._engine.dialect.name

    def execute(self, sql: str, **params: Any) -> None:
        with self._engine.begin() as conn:
            tables = ("ledger_entries", "ledger_checkpoints")
            if self.dialect == "postgresql":
                for table in tables:
                    conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
                conn.execute(sa.text(sql), params)
                for table in tables:
                    conn.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
                return
            names = conn.execute(
                sa.text(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                    "AND (name LIKE '%_no_update' OR name LIKE '%_no_delete')"
                )
            ).scalars()
            for name in list(names):
                conn.execute(sa.text(f"DROP TRIGGER {name}"))
            conn.execute(sa.text(sql), params)
            for table in tables:
                for ddl in append_only_ddl("sqlite", table):
                    conn.execute(sa.text(ddl))

    def close(self) -> None:
        self._engine.dispose()


@pytest.fixture
def backdoor(store: LedgerStore, ledger_url: str) -> Iterator[Backdoor]:  # noqa: ARG001
    """Owner access to ``store``'s database (opened, so migrated), bypassing its triggers."""
    door = Backdoor(ledger_url)
    yield door
    door.close()


@pytest.fixture
def moment() -> datetime:
    return datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)


@pytest.fixture
def sample_bodies() -> dict[str, dict[str, Any]]:
    """One valid body per kind, with exactly its required fields (FORMATS section 3 and more)."""
    return {
        "service.started": {
            "version": "0.1.0",
            "module_sha256": "c" * 64,
            "catalog_digest": dict(_DIGEST),
            "authority_status": "sealed",
        },
        "call.started": {"call_id": "01JCALL", "contract": {"entry": "orders.by_customer"}},
        "call.denied": {"call_id": "01JCALL", "reason": "policy deny", "contract": None},
        "call.finished": {
            "call_id": "01JCALL",
            "verdict": "ran_clean",
            "exit_code": 0,
            "result_digest": dict(_DIGEST),
            "rows": 3,
            "bytes": 120,
            "duration_ms": 7,
        },
        "packet.issued": {
            "call_id": "01JCALL",
            "packet_id": "01JPACKET",
            "manifest_hash": dict(_DIGEST),
        },
        "approval.granted": {
            "approval_id": "01JAPPROVAL",
            "entry_id": "orders.by_customer",
            "entry_digest": dict(_DIGEST),
            "inputs_digest": dict(_DIGEST),
            "requester": "alice",
            "requester_tenant": "acme",
            "tenant_relation": "own",
            "approver": {"id": "carol", "roles": ["operator"]},
            "approved_at": "2026-11-23T09:15:02.123456Z",
            "expires_at": "2026-11-23T10:15:02.123456Z",
            "reason": "month-end export",
            "policy": {"decision": "allow"},
        },
        "call.dry_run": {
            "call_id": "01JCALL",
            "contract": {"entry": "orders.by_customer"},
            "would_run": False,
            "checks": [
                {"check": "policy", "passed": False, "detail": "denied", "code": "policy_denied"}
            ],
        },
        "auth.refused": {
            "via": "http",
            "client": "127.0.0.1",
            "request": "POST /v1/calls",
            "request_id": "01JREQUEST",
            "code": "unauthenticated",
            "reason": "no credential",
            "where": "authorization",
        },
        "approval.denied": {
            "entry_id": "orders.by_customer",
            "requester": "carol",
            "requester_tenant": "*",
            "approver": {"id": "carol", "roles": ["operator"]},
            "code": "policy_denied",
            "reason": "policy denies approve",
            "where": "",
            "determining_policies": ["forbid-self-approval"],
        },
        "call.cancelled": {
            "call_id": "01JCALL",
            "by": {"id": "alice", "roles": ["analyst"]},
            "policy": {"decision": "allow"},
        },
        "packet.removed": {
            "packet_id": "01JPACKET",
            "manifest_hash": {"sha256": "a" * 64, "blake3": "b" * 64},
            "reason": "retention",
            "issued_seq": 4,
        },
        "replay.started": {
            "replay_id": "01JREPLAY",
            "by": {"id": "bob", "roles": ["auditor"]},
            "filters": {"from_seq": 0, "to_seq": None, "entry": None, "principal": None},
            "range": {"from_seq": 0, "to_seq": 41},
            "catalog_digest": dict(_DIGEST),
            "authority_status": "sealed",
        },
        "replay.finished": {
            "replay_id": "01JREPLAY",
            "started_seq": 42,
            "calls": 2,
            "counts": {"ran_clean": 1, "ran_with_drift": 1},
            "report_digest": dict(_DIGEST),
        },
        "access.read": {
            "principal": {"id": "bob", "roles": ["auditor"]},
            "read": "packet.zip",
            "request_id": "01JREQUEST",
            "target": {"packet_id": "01JPACKET"},
        },
    }
