"""Shared fixtures of the ledger tests: the conformance vectors, a store, sample bodies."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

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


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LedgerStore]:
    """A fresh SQLite ledger in its own file."""
    with LedgerStore.open(f"sqlite:///{tmp_path / 'ledger.db'}") as opened:
        yield opened


@pytest.fixture
def moment() -> datetime:
    return datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)


@pytest.fixture
def sample_bodies() -> dict[str, dict[str, Any]]:
    """One valid body per kind, with exactly the FORMATS section 3 fields."""
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
    }
