"""Leases in the call path: a full gate is a ledgered refusal (429 + Retry-After), checked
before anything runs; a held lease is named in the contract and released when the call ends."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from ledger.store import LedgerStore
from service.app import create_app
from service.leases import Lease
from service.runtime import Runtime
from service.settings import Settings
from tests.e2e.conftest import make_world

LEASED_TOML = """
[[query]]
id = "items.leased"
title = "One run at a time"
source = "items"
sql = "queries/all.sql"
lease = { max_concurrent = 1 }

[[query]]
id = "items.leased_slow"
title = "One slow run at a time"
source = "items"
sql = "queries/slow.sql"
timeout_ms = 1500
lease = { max_concurrent = 1 }

[[query]]
id = "items.leased_by_tenant"
title = "One run at a time per tenant"
source = "items"
sql = "queries/by_tenant.sql"
tenant_scoped = true
tenant_param = "tenant"
lease = { max_concurrent = 1, resource_param = "tenant", grace_ms = 1000 }
[query.params.tenant]
type = "enum"
choices = ["acme", "globex"]
[query.params.min_amount]
type = "integer"
min = 0
max = 1000
default = 0
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def leased_world(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    return make_world(tmp_path, ledger_url=pg_url, extra_toml=LEASED_TOML, rows=50)


@pytest.fixture
def client(leased_world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(leased_world), raise_server_exceptions=False) as test_client:
        yield test_client
    packets = leased_world.packet_root
    if packets.exists():
        shutil.rmtree(packets)


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _runtime(client: TestClient) -> Runtime:
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return runtime


def _hold(client: TestClient, scope: str, *, ago_s: float = 0, ttl_s: float = 30) -> Lease:
    """A lease held by another (pretend) call, taken ``ago_s`` seconds ago."""
    runtime = _runtime(client)
    return runtime.leases.acquire(
        scope,
        "01OTHERCALL",
        max_concurrent=1,
        ttl=timedelta(seconds=ttl_s),
        now=runtime.clock() - timedelta(seconds=ago_s),
    )


def _held_scopes(client: TestClient) -> list[str]:
    with _runtime(client).ledger.engine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text("SELECT scope FROM govex_leases"))]


def _last_entry(settings: Settings) -> dict[str, Any]:
    with LedgerStore.open(settings.ledger_url) as store:
        return store.get(store.size() - 1).model_dump(mode="json")


def _call(client: TestClient, entry: str, who: str = "alice", **body: Any) -> Any:
    return client.post("/v1/calls", json={"entry": entry, **body}, headers=_auth(who))


def test_a_full_gate_is_a_ledgered_429_with_retry_after_and_nothing_runs(
    client: TestClient, leased_world: Settings
) -> None:
    held = _hold(client, "items.leased", ago_s=10)
    response = _call(client, "items.leased")
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(response.headers["Retry-After"]) <= 20  # the held lease ends in 20 s
    problem = response.json()
    assert problem["code"] == "lease_unavailable"
    assert (
        "lease unavailable for entry 'items.leased': 1 of 1 runs in progress" in problem["detail"]
    )
    denied = _last_entry(leased_world)
    assert denied["kind"] == "call.denied"
    assert denied["body"]["code"] == "lease_unavailable"
    assert denied["body"]["contract"]["lease"] == {
        "scope": "items.leased",
        "max_concurrent": 1,
        "ttl_ms": 30_000 + 5_000,
        "lease_id": None,
        "expires_at": None,
    }
    assert not list(leased_world.packet_root.glob("*.zip"))  # nothing ran
    assert _runtime(client).leases.release(held)


def test_a_call_names_its_lease_in_the_contract_and_releases_it(
    client: TestClient, leased_world: Settings
) -> None:
    response = _call(client, "items.leased")
    assert response.status_code == 201, response.text
    with LedgerStore.open(leased_world.ledger_url) as store:
        entries = [e.model_dump(mode="json") for e in store.list_entries(0, 100)]
    started = [e for e in entries if e["kind"] == "call.started"][-1]
    lease = started["body"]["contract"]["lease"]
    assert lease["scope"] == "items.leased"
    assert lease["lease_id"]
    assert lease["expires_at"] > started["ts"]
    assert _held_scopes(client) == []  # released when the call ended
    assert _call(client, "items.leased").status_code == 201  # so the next one gets it


def test_a_running_call_holds_its_lease_until_it_ends(client: TestClient) -> None:
    first: list[Any] = []
    runner = threading.Thread(target=lambda: first.append(_call(client, "items.leased_slow")))
    runner.start()
    deadline = time.monotonic() + 10
    while _held_scopes(client) != ["items.leased_slow"]:
        assert time.monotonic() < deadline, "the first call never took its lease"
        time.sleep(0.01)
    second = _call(client, "items.leased_slow")
    assert second.status_code == 429, second.text
    runner.join(timeout=30)
    assert first[0].status_code == 201  # it ran to its deadline: verdict timed_out
    assert first[0].json()["verdict"] == "timed_out"
    assert _held_scopes(client) == []


def test_a_crashed_holders_lease_is_reclaimed_after_its_ttl(client: TestClient) -> None:
    _hold(client, "items.leased", ago_s=60, ttl_s=35)  # its holder died 25 s ago
    assert _call(client, "items.leased").status_code == 201
    assert _held_scopes(client) == []


def test_leases_are_counted_per_resource_key(client: TestClient) -> None:
    _hold(client, 'items.leased_by_tenant|"acme"')
    blocked = _call(client, "items.leased_by_tenant", "carol", params={"tenant": "acme"})
    assert blocked.status_code == 429, blocked.text
    other = _call(client, "items.leased_by_tenant", "carol", params={"tenant": "globex"})
    assert other.status_code == 201, other.text
    assert _held_scopes(client) == ['items.leased_by_tenant|"acme"']


def test_a_dry_run_reports_a_full_gate_and_never_takes_a_lease(
    client: TestClient, leased_world: Settings
) -> None:
    held = _hold(client, "items.leased")
    full = _call(client, "items.leased", mode="dry_run")
    assert full.status_code == 200, full.text
    report = full.json()["dry_run"]
    assert report["would_run"] is False
    lease = next(c for c in report["checks"] if c["check"] == "lease")
    assert (lease["passed"], lease["code"]) == (False, "lease_unavailable")
    assert "1 of 1 runs in progress" in lease["detail"]
    ledgered = _last_entry(leased_world)
    assert (ledgered["kind"], ledgered["seq"]) == ("call.dry_run", full.json()["ledger"]["dry_run"])
    assert ledgered["body"]["checks"] == report["checks"]
    assert _runtime(client).leases.release(held)
    free = _call(client, "items.leased", mode="dry_run")
    assert free.status_code == 200, free.text
    assert free.json()["dry_run"]["would_run"] is True
    assert free.json()["contract"]["lease"]["lease_id"] is None
    assert _held_scopes(client) == []


def test_a_dry_run_reports_every_failing_check_not_only_the_first(client: TestClient) -> None:
    """bob (auditor) may dry-run but not run: the policy and the full gate are both reported."""
    _hold(client, "items.leased")
    response = _call(client, "items.leased", "bob", mode="dry_run")
    assert response.status_code == 200, response.text
    checks = {c["check"]: c for c in response.json()["dry_run"]["checks"]}
    assert list(checks) == ["entry", "inputs", "policy", "lease"]
    assert (checks["entry"]["passed"], checks["inputs"]["passed"]) == (True, True)
    assert (checks["policy"]["passed"], checks["policy"]["code"]) == (False, "policy_denied")
    assert "policy denies call of items.leased for bob" in checks["policy"]["detail"]
    assert (checks["lease"]["passed"], checks["lease"]["code"]) == (False, "lease_unavailable")
    assert response.json()["contract"]["policy"]["decision"] == "allow"  # the dry run's own
