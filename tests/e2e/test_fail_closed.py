"""Fail closed: an append that fails fails the call; no call runs and no packet is issued without
its entries, and the caller gets a storage problem it can retry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ledger.companion import Companion
from ledger.entry import Entry
from ledger.errors import LedgerUnavailable
from ledger.store import LedgerStore
from service import calls, run_sql
from service.runtime import Runtime
from service.settings import Settings


def auth(name: str) -> dict[str, str]:
    """Bearer headers of an e2e principal (conftest issues the token ``tok-<name>``)."""
    return {"Authorization": f"Bearer tok-{name}"}


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _refuse_appends_of(monkeypatch: pytest.MonkeyPatch, client: TestClient, kind: str) -> list[str]:
    """Make the running store's appends of ``kind`` fail as a broken disk would; log attempts."""
    store = _runtime(client).ledger
    real = store.append
    real_many = store.append_many
    attempts: list[str] = []

    def refuse() -> LedgerUnavailable:
        return LedgerUnavailable(
            "ledger storage failed during append: disk I/O error; nothing was appended",
            operation="append",
        )

    def append(
        kind_: str, body: Mapping[str, Any], ts: datetime, *, companion: Companion | None = None
    ) -> Entry:
        attempts.append(kind_)
        if kind_ == kind:
            raise refuse()
        return real(kind_, body, ts, companion=companion)

    def append_many(
        entries: Sequence[tuple[str, Mapping[str, Any], datetime]],
        *,
        companion: Companion | None = None,
    ) -> list[Entry]:
        # One commit for them all: one refused entry and none is appended.
        attempts.extend(kind_ for kind_, _, _ in entries)
        if any(kind_ == kind for kind_, _, _ in entries):
            raise refuse()
        return real_many(entries, companion=companion)

    monkeypatch.setattr(store, "append", append)
    monkeypatch.setattr(store, "append_many", append_many)
    return attempts


def _entries(world: Settings) -> list[dict[str, Any]]:
    with LedgerStore.open(world.ledger_url) as store:
        return [e.model_dump() for e in store.list_entries(0, 10_000)]


def _published(world: Settings) -> list[str]:
    return sorted(p.name for p in world.packet_root.glob("*.zip"))


def _staged(world: Settings) -> list[str]:
    staging = world.packet_root / ".staging"
    return sorted(p.name for p in staging.iterdir()) if staging.is_dir() else []


def _assert_storage_problem(response: Any, code: str = "ledger_unavailable") -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code
    assert "storage" in problem["detail"]
    assert "Nothing was recorded" in problem["hint"]
    return problem


def test_no_call_runs_without_its_call_started_entry(
    client: TestClient, world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[object] = []
    real_run_query = run_sql.run_query

    def spy(*args: Any, **kwargs: Any) -> Any:
        ran.append(args)
        return real_run_query(*args, **kwargs)

    monkeypatch.setattr(calls, "run_query", spy)  # the name the call path looks up
    ok = client.post("/v1/calls", json={"entry": "items.all"}, headers=auth("alice"))
    assert ok.status_code == 201, ok.text
    assert len(ran) == 1  # the spy sees every query that runs
    before, published = _entries(world), _published(world)
    _refuse_appends_of(monkeypatch, client, "call.started")
    response = client.post("/v1/calls", json={"entry": "items.all"}, headers=auth("alice"))
    _assert_storage_problem(response)
    assert len(ran) == 1
    assert _entries(world) == before
    assert _published(world) == published
    with _runtime(client).ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM govex_calls")).scalar_one() == 1


def test_no_packet_is_issued_without_its_packet_issued_entry(
    client: TestClient, world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _refuse_appends_of(monkeypatch, client, "packet.issued")
    response = client.post("/v1/calls", json={"entry": "items.all"}, headers=auth("alice"))
    _assert_storage_problem(response)
    assert attempts == ["call.started", "call.finished", "packet.issued"]
    assert _published(world) == []
    assert _staged(world) == []
    # call.finished and packet.issued are one commit: neither is appended.
    kinds = [e["kind"] for e in _entries(world)]
    assert kinds == ["service.started", "call.started"]
    call_id = _entries(world)[1]["body"]["call_id"]
    status = client.get(f"/v1/calls/{call_id}", headers=auth("alice")).json()
    assert status["state"] == "failed"
    assert status["packet_id"] is None
    assert status["ledger"]["packet_issued"] is None


def test_a_call_whose_call_finished_fails_publishes_nothing(
    client: TestClient, world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refuse_appends_of(monkeypatch, client, "call.finished")
    response = client.post("/v1/calls", json={"entry": "items.all"}, headers=auth("alice"))
    _assert_storage_problem(response)
    assert _published(world) == []
    assert _staged(world) == []
    assert [e["kind"] for e in _entries(world)] == ["service.started", "call.started"]


def test_a_refusal_that_cannot_be_ledgered_is_a_storage_problem(
    client: TestClient, world: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refuse_appends_of(monkeypatch, client, "call.denied")
    response = client.post(
        "/v1/calls",
        json={"entry": "items.by_tenant", "params": {"tenant": "globex"}},
        headers=auth("alice"),
    )
    _assert_storage_problem(response)
    assert [e["kind"] for e in _entries(world)] == ["service.started"]


def test_a_call_index_that_cannot_be_written_fails_the_call_and_publishes_nothing(
    client: TestClient, world: Settings
) -> None:
    # The database refuses the index update as a full disk would (SQLite's own message).
    with _runtime(client).ledger.engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TRIGGER calls_full BEFORE UPDATE ON govex_calls "
                "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
        )
    response = client.post("/v1/calls", json={"entry": "items.all"}, headers=auth("alice"))
    problem = _assert_storage_problem(response, "ledger_storage_full")
    assert "UPDATE" not in problem["detail"]  # no SQL reaches the caller
    assert _published(world) == []
    assert _staged(world) == []
    # The call ran, but its call.finished commits with its index row: neither is written,
    # nothing is published, and the row still says running (past its deadline the reaper
    # finishes it, tests/e2e/test_async_calls.py).
    entries = _entries(world)
    assert [e["kind"] for e in entries] == ["service.started", "call.started"]
    with _runtime(client).ledger.engine.begin() as conn:
        row = conn.execute(sa.text("SELECT state FROM govex_calls")).one()
        assert row.state == "running"
        conn.execute(sa.text("DROP TRIGGER calls_full"))
    again = client.post("/v1/calls", json={"entry": "items.all"}, headers=auth("alice"))
    assert again.status_code == 201, again.text
    assert _published(world) == [f"{again.json()['packet_id']}.zip"]
