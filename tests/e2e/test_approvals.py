"""Approvals end to end, on SQLite and PostgreSQL ledgers: a missing, expired, stale or other
input's approval blocks the call (403, ledgered ``call.denied`` naming the state); an
operator's approval of the analyst's exact inputs lets it run; nobody approves their own call."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from service.app import create_app
from service.cli.app import app
from service.runtime import Runtime
from service.settings import Settings
from tests.e2e.conftest import make_world
from tests.e2e.servers import world_env

APPROVAL_TOML = """
[[query]]
id = "items.approved"
title = "Items of a tenant, with an approval"
source = "items"
sql = "queries/by_tenant.sql"
tenant_scoped = true
tenant_param = "tenant"
requires_approval = true
[query.params.tenant]
type = "enum"
choices = ["acme", "globex"]
[query.params.min_amount]
type = "integer"
min = 0
max = 1000
default = 0
"""
ENTRY = "items.approved"
T0 = datetime(2026, 6, 30, 12, 0, 0, tzinfo=UTC)


class MovableClock:
    """The service's clock, pinned and moved by the test (the explicit evaluation time)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
def approval_world(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return make_world(tmp_path, ledger_url=pg_url, extra_toml=APPROVAL_TOML, rows=50)


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(T0)


@pytest.fixture
def client(approval_world: Settings, clock: MovableClock) -> Iterator[TestClient]:
    with TestClient(
        create_app(approval_world, clock=clock), raise_server_exceptions=False
    ) as test_client:
        yield test_client
    if approval_world.packet_root.exists():
        shutil.rmtree(approval_world.packet_root)


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _grant(client: TestClient, approver: str = "carol", **fields: Any) -> Any:
    body = {
        "entry": ENTRY,
        "params": {"tenant": "acme", "min_amount": 10},
        "requester": "alice",
        "requester_tenant": "acme",
        "reason": "month-end export",
        **fields,
    }
    return client.post("/v1/approvals", json=body, headers=_auth(approver))


def _call(client: TestClient, min_amount: int = 10, mode: str = "run") -> Any:
    return client.post(
        "/v1/calls",
        json={"entry": ENTRY, "params": {"min_amount": min_amount}, "mode": mode},
        headers=_auth("alice"),
    )


def _assert_blocked(client: TestClient, response: Any, state: str) -> None:
    """403 problem naming ``state``; the ledger's last entry is its call.denied."""
    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "policy_denied"
    assert problem["determining_policies"] == ["forbid-requires-approval"]
    if state != "missing":
        assert f" {state}" in problem["detail"]
    else:
        assert "no approval of items.approved" in problem["detail"]
    ledger = _runtime(client).ledger
    denied = ledger.list_entries(ledger.size() - 1, 1)[0]
    assert problem["ledger_seq"] == denied.seq  # blocked: refused and ledgered, never ran
    assert denied.kind.value == "call.denied"
    assert denied.body["reason"] == problem["detail"]
    contract: Any = denied.body["contract"]
    assert contract["approval"]["state"] == state
    assert contract["policy"]["determining_policies"] == ["forbid-requires-approval"]


def test_missing_approval_blocks_the_call_and_is_ledgered(client: TestClient) -> None:
    _assert_blocked(client, _call(client), "missing")


def test_an_operator_approves_the_analysts_exact_inputs_and_the_call_runs(
    client: TestClient, clock: MovableClock
) -> None:
    granted = _grant(client, ttl_s=3600)
    assert granted.status_code == 201, granted.text
    approval = granted.json()
    assert approval["requester"] == "alice"
    assert approval["approver"] == "carol"
    assert approval["inputs"] == {"tenant": "acme", "min_amount": 10}
    assert approval["expires_at"] == "2026-06-30T13:00:00.000000Z"
    entry = _runtime(client).ledger.list_entries(approval["seq"], 1)[0]
    assert entry.kind.value == "approval.granted"
    assert entry.body["approval_id"] == approval["approval_id"]
    approver: Any = entry.body["approver"]
    assert approver["id"] == "carol"
    assert "tok-carol" not in str(entry.body)
    clock.now = T0 + timedelta(minutes=1)
    ran = _call(client)
    assert ran.status_code == 201, ran.text
    assert ran.json()["verdict"] == "ran_clean"
    terms = ran.json()["contract"]["approval"]
    assert terms == {
        "state": "valid",
        "approval_id": approval["approval_id"],
        "approval_seq": approval["seq"],
        "expires_at": "2026-06-30T13:00:00.000000Z",
        "evaluated_at": "2026-06-30T12:01:00.000000Z",
    }
    # Other inputs: no approval for them.
    _assert_blocked(client, _call(client, min_amount=11), "missing")
    # Auditors and operators list approvals; analysts may not.
    listed = client.get(f"/v1/approvals?entry={ENTRY}", headers=_auth("bob"))
    assert listed.status_code == 200
    assert [a["approval_id"] for a in listed.json()] == [approval["approval_id"]]
    ledger = _runtime(client).ledger
    read = ledger.get(ledger.size() - 1)
    assert (read.kind, read.body["read"]) == ("access.read", "approval.list")
    reader = read.body["principal"]
    assert isinstance(reader, dict)
    assert reader["id"] == "bob"
    assert read.body["target"] == {"entry": ENTRY, "limit": 100, "returned": 1}
    size = ledger.size()
    assert client.get("/v1/approvals", headers=_auth("alice")).status_code == 403
    assert ledger.size() == size  # a refused read is no read: nothing recorded


def test_near_expiry_passes_and_just_expired_blocks(
    client: TestClient, clock: MovableClock
) -> None:
    assert _grant(client, ttl_s=3600).status_code == 201
    clock.now = T0 + timedelta(minutes=57)
    ran = _call(client)
    assert ran.status_code == 201, ran.text
    assert ran.json()["contract"]["approval"]["state"] == "near_expiry"
    clock.now = T0 + timedelta(minutes=61)  # expired one minute ago
    blocked = _call(client)
    _assert_blocked(client, blocked, "just_expired")
    assert "just_expired at 2026-06-30T13:00:00.000000Z" in blocked.json()["detail"]
    clock.now = T0 + timedelta(hours=2)  # long expired: as if there were none
    _assert_blocked(client, _call(client), "missing")


def _approval_denied(client: TestClient, problem: dict[str, Any]) -> dict[str, Any]:
    """The ``approval.denied`` entry a refused grant's problem points at."""
    entry = _runtime(client).ledger.get(problem["ledger_seq"])
    assert entry.kind.value == "approval.denied"
    assert entry.body["code"] == problem["code"]
    assert entry.body["reason"] == problem["detail"]
    assert "month-end export" not in str(entry.body)  # the free-text reason is not recorded
    return entry.body


def test_self_approval_is_refused_and_ledgered(client: TestClient) -> None:
    refused = _grant(client, approver="carol", requester="carol", requester_tenant="*")
    assert refused.status_code == 403
    problem = refused.json()
    assert problem["code"] == "policy_denied"
    assert "never approves their own call" in problem["detail"]
    denied = _approval_denied(client, problem)
    assert (denied["entry_id"], denied["requester"]) == (ENTRY, "carol")
    assert denied["approver"]["id"] == "carol"
    assert denied["determining_policies"] == ["forbid-self-approval"]
    # Analysts cannot approve at all; nothing was granted.
    by_analyst = _grant(client, approver="alice", requester="bob")
    assert by_analyst.status_code == 403
    assert _approval_denied(client, by_analyst.json())["approver"]["id"] == "alice"
    assert _runtime(client).approvals.latest() == []


def test_grant_refusals_are_ledgered(client: TestClient) -> None:
    not_needed = _grant(client, entry="items.all", params={})
    assert not_needed.status_code == 422
    assert not_needed.json()["code"] == "approval_refused"
    assert "does not require approval" in not_needed.json()["detail"]
    assert _approval_denied(client, not_needed.json())["where"] == "entry"
    too_long = _grant(client, ttl_s=86401)
    assert too_long.status_code == 422
    assert "above the maximum 86400" in too_long.json()["detail"]
    assert _approval_denied(client, too_long.json())["where"] == "ttl_s"
    unknown = _grant(client, entry="items.nope", params={})
    assert unknown.status_code == 404
    assert _approval_denied(client, unknown.json())["entry_id"] == "items.nope"


def test_dry_run_reports_the_approval_state_without_running(client: TestClient) -> None:
    dry = _call(client, mode="dry_run")
    assert dry.status_code == 200, dry.text
    assert dry.json()["verdict"] is None
    assert dry.json()["contract"]["approval"]["state"] == "missing"
    checks = {c["check"]: c for c in dry.json()["dry_run"]["checks"]}
    assert checks["approval"]["passed"] is False
    assert checks["approval"]["detail"].startswith("missing at ")
    assert checks["policy"]["passed"] is False  # forbid-requires-approval
    assert "forbid-requires-approval" in checks["policy"]["detail"]
    assert dry.json()["dry_run"]["would_run"] is False
    assert _grant(client).status_code == 201
    dry = _call(client, mode="dry_run")
    assert dry.json()["contract"]["approval"]["state"] == "valid"
    assert dry.json()["dry_run"]["would_run"] is True
    assert dry.json()["ledger"]["started"] is None


def test_an_approval_goes_stale_when_the_entry_changes(
    approval_world: Settings, clock: MovableClock
) -> None:
    with TestClient(create_app(approval_world, clock=clock)) as first:
        assert _grant(first).status_code == 201
    catalog_dir = approval_world.catalog_dir
    toml = catalog_dir / "catalog.toml"
    toml.write_text(toml.read_text().replace("with an approval", "with an approval (v2)"))
    write_seal(catalog_dir / SEAL_FILE, compute_seal(load_catalog_dir(catalog_dir), T0))
    with TestClient(create_app(approval_world, clock=clock)) as second:
        _assert_blocked(second, _call(second), "stale")


def test_govex_approvals_grant_and_list_from_the_command_line(approval_world: Settings) -> None:
    env = {
        **world_env(approval_world),
    }
    grant = ["approvals", "grant", "--entry", ENTRY, "--requester", "alice"]
    grant += ["--requester-tenant", "acme", "-p", "tenant=acme", "-p", "min_amount=10"]
    grant += ["--ttl", "30m", "--reason", "month-end export"]
    runner = CliRunner()
    refused = runner.invoke(app, [*grant, "--key", "tok-alice"], env=env)
    assert refused.exit_code == 4, refused.stderr  # blocked: policy_denied
    assert "error [policy_denied]" in refused.stderr
    granted = runner.invoke(app, [*grant, "--key", "tok-carol"], env=env)
    assert granted.exit_code == 0, granted.stderr
    approval = json.loads(granted.stdout)
    assert approval["inputs"] == {"tenant": "acme", "min_amount": 10}  # typed from text
    call = runner.invoke(app, ["call", ENTRY, "-p", "min_amount=10", "--key", "tok-alice"], env=env)
    assert call.exit_code == 0, call.stderr
    assert json.loads(call.stdout)["contract"]["approval"]["approval_id"] == approval["approval_id"]
    listed = runner.invoke(
        app, ["approvals", "list", "--entry", ENTRY, "--key", "tok-bob"], env=env
    )
    assert listed.exit_code == 0, listed.stderr
    assert [a["approval_id"] for a in json.loads(listed.stdout)] == [approval["approval_id"]]
    assert (
        runner.invoke(app, [*grant, "--ttl", "soon", "--key", "tok-carol"], env=env).exit_code == 2
    )
