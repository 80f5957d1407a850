"""Every refusal class end to end, on SQLite and PostgreSQL ledgers: the verdict, the HTTP
status, the problem+json detail and the ledger entry (or, before a principal is known, that
nothing was ledgered).

Refusals before authentication (no credential, a bad token) have no principal and so no
call: they are ledgered as ``auth.refused`` (never the credential) and answered 401; a client
over the failure limit gets 429 and adds no entry. Refusals of an authenticated call are
ledgered as ``call.denied`` before the answer.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.store import LedgerStore
from service.app import create_app
from service.settings import Settings
from service.verdicts import Verdict
from tests.e2e.conftest import make_world
from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer

PROBLEM = "application/problem+json"
KID = "refusals-test-key"
SECRET = "AKIAIOSFODNN7EXAMPLE"

# A free-text parameter (not tenant-scoped), so a secret-like value reaches the input checks.
NOTES_TOML = """
[[query]]
id = "items.named"
title = "Items of a tenant named in free text"
source = "items"
sql = "queries/by_tenant.sql"
[query.params.tenant]
type = "string"
max_length = 200
[query.params.min_amount]
type = "integer"
default = 0
"""


@pytest.fixture
def issuer() -> Issuer:
    return Issuer.generate(KID)


@pytest.fixture(params=["sqlite", "postgresql"])
def refusal_world(request: pytest.FixtureRequest, tmp_path: Path, issuer: Issuer) -> Settings:
    pg_url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    world = make_world(tmp_path, ledger_url=pg_url, extra_toml=NOTES_TOML, rows=20)
    return Settings(
        **{
            **world.model_dump(),
            "jwt_jwks_file": issuer.write_jwks(tmp_path / "jwks.json"),
            "jwt_issuer": ISSUER,
            "jwt_audience": AUDIENCE,
            # Enough room for every bad-credential case of a test without a 429.
            "auth_failure_limit": 50,
        }
    )


@pytest.fixture
def client(refusal_world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(refusal_world), raise_server_exceptions=False) as test_client:
        yield test_client
    if refusal_world.packet_root.exists():
        shutil.rmtree(refusal_world.packet_root)


def _auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _call(client: TestClient, headers: dict[str, str], entry: str, **body: Any) -> Any:
    return client.post("/v1/calls", json={"entry": entry, **body}, headers=headers)


def _ledger(settings: Settings) -> list[dict[str, Any]]:
    store = LedgerStore.open(settings.ledger_url)
    try:
        return [e.model_dump() for e in store.list_entries(0, 10_000)]
    finally:
        store.close()


def _ledger_text(settings: Settings) -> bytes:
    store = LedgerStore.open(settings.ledger_url)
    try:
        return b"\n".join(store.iter_leaf_inputs())
    finally:
        store.close()


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def _denied(settings: Settings, problem: dict[str, Any]) -> dict[str, Any]:
    """The ``call.denied`` entry a refused call's problem points at."""
    entry = _ledger(settings)[problem["ledger_seq"]]
    assert entry["kind"] == "call.denied"
    assert entry["body"]["call_id"] == problem["call_id"]
    assert entry["body"]["code"] == problem["code"]
    body: dict[str, Any] = entry["body"]
    return body


# --- before a principal is known: 401, ledgered as auth.refused -------------------------------


def _auth_refused(settings: Settings, problem: dict[str, Any]) -> dict[str, Any]:
    """The ``auth.refused`` entry a 401 points at."""
    entry = _ledger(settings)[problem["ledger_seq"]]
    assert entry["kind"] == "auth.refused"
    body: dict[str, Any] = entry["body"]
    assert body["via"] == "http"
    assert body["request"] == "POST /v1/calls"
    assert body["request_id"] == problem["request_id"]
    assert body["code"] == "unauthenticated"
    assert body["reason"] == problem["detail"]
    return body


def test_no_credential_is_401_naming_the_header_and_ledgered(
    client: TestClient, refusal_world: Settings
) -> None:
    response = _call(client, {}, "items.all")
    problem = _problem(response, 401, "unauthenticated")
    assert "Authorization" in problem["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    refused = _auth_refused(refusal_world, problem)
    assert (refused["where"], refused["client"]) == ("authorization", "testclient")


@pytest.mark.parametrize(
    ("claims", "where"),
    [
        pytest.param({"exp": 1_000_000_000}, "exp", id="expired"),
        pytest.param({"aud": "another-service"}, "aud", id="audience"),
    ],
)
def test_a_bad_jwt_is_401_naming_the_failed_check_and_ledgered_without_the_token(
    client: TestClient,
    refusal_world: Settings,
    issuer: Issuer,
    claims: dict[str, Any],
    where: str,
) -> None:
    token = issuer.token(**claims)
    response = _call(client, {"Authorization": f"Bearer {token}"}, "items.all")
    problem = _problem(response, 401, "unauthenticated")
    assert problem["errors"] == [{"where": where, "detail": problem["detail"]}]
    assert token not in response.text
    assert _auth_refused(refusal_world, problem)["where"] == where
    ledger = _ledger_text(refusal_world)
    for part in token.split("."):
        assert part.encode() not in ledger


def test_a_wrong_api_key_is_401_and_ledgered_without_the_key(
    client: TestClient, refusal_world: Settings
) -> None:
    response = _call(client, {"Authorization": "Bearer gvx-not-a-key"}, "items.all")
    problem = _problem(response, 401, "unauthenticated")
    assert problem["detail"]
    assert "gvx-not-a-key" not in response.text
    _auth_refused(refusal_world, problem)
    assert b"gvx-not-a-key" not in _ledger_text(refusal_world)


def test_a_throttled_client_adds_no_entry_past_the_failure_limit(
    refusal_world: Settings,
) -> None:
    settings = Settings(**{**refusal_world.model_dump(), "auth_failure_limit": 2})
    with TestClient(create_app(settings), raise_server_exceptions=False) as throttled:
        before = len(_ledger(settings))
        codes = [_call(throttled, {}, "items.all").status_code for _ in range(5)]
        assert codes == [401, 401, 429, 429, 429]
        kinds = [e["kind"] for e in _ledger(settings)[before:]]
        assert kinds == ["auth.refused", "auth.refused"]


# --- an authenticated call refused: ledgered as call.denied -----------------------------------


def test_policy_deny_is_403_ledgered_with_the_determining_policy(
    client: TestClient, refusal_world: Settings
) -> None:
    response = _call(client, _auth("alice"), "items.secret")
    problem = _problem(response, 403, "policy_denied")
    assert problem["determining_policies"] == ["forbid-sensitive-non-operators"]
    assert "items.secret" in problem["detail"]
    denied = _denied(refusal_world, problem)
    assert denied["contract"]["policy"]["decision"] == "deny"
    assert denied["contract"]["policy"]["determining_policies"] == [
        "forbid-sensitive-non-operators"
    ]
    assert denied["contract"]["identity"]["id"] == "alice"
    # The verdict of a refused call is blocked, with its exit code (FORMATS section 6).
    assert denied["contract"]["exit_semantics"]["blocked"] == Verdict.blocked.exit_code
    assert not list(refusal_world.packet_root.glob("*.zip"))


def test_no_permit_is_a_deny_by_default(client: TestClient, refusal_world: Settings) -> None:
    """Auditors may dry-run but no policy permits them a run: an empty match is a deny."""
    problem = _problem(_call(client, _auth("bob"), "items.all"), 403, "policy_denied")
    assert problem["determining_policies"] == []
    assert _denied(refusal_world, problem)["contract"]["policy"]["decision"] == "deny"


def test_cross_tenant_is_403_forbid_cross_tenant_and_ledgered(
    client: TestClient, refusal_world: Settings
) -> None:
    response = _call(client, _auth("alice"), "items.by_tenant", params={"tenant": "globex"})
    problem = _problem(response, 403, "policy_denied")
    assert problem["determining_policies"] == ["forbid-cross-tenant"]
    denied = _denied(refusal_world, problem)
    assert denied["contract"]["tenant_relation"] == "cross"
    assert denied["contract"]["inputs"]["tenant"] == "globex"
    assert denied["contract"]["policy"]["determining_policies"] == ["forbid-cross-tenant"]


def test_secret_like_input_is_422_never_echoed_and_ledgered_by_name(
    client: TestClient, refusal_world: Settings
) -> None:
    response = _call(client, _auth("alice"), "items.named", params={"tenant": SECRET})
    problem = _problem(response, 422, "invalid_input")
    assert [e["parameter"] for e in problem["errors"]] == ["tenant"]
    assert "secret" in problem["errors"][0]["detail"]
    assert SECRET not in response.text
    denied = _denied(refusal_world, problem)
    assert denied["contract"]["parameters"] == ["tenant"]  # named; the value never recorded
    assert "tenant" in denied["reason"]
    assert SECRET.encode() not in _ledger_text(refusal_world)
