"""Identity end to end: JWTs in the contract, 401s naming the check, throttling, `govex keys`."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.store import LedgerStore
from service.app import create_app
from service.cli import app as cli_app
from service.errors import ConfigurationError, StartupRefused
from service.settings import Settings
from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer

PROBLEM = "application/problem+json"
KID = "e2e-ed-1"


class SettableClock:
    """A real clock that a test moves forward: the runtime's time, injected (STYLE G5)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _with(world: Settings, **changes: object) -> Settings:
    return Settings(**{**world.model_dump(), **changes})


@pytest.fixture
def issuer() -> Issuer:
    return Issuer.generate(KID)


@pytest.fixture
def jwt_world(world: Settings, issuer: Issuer, tmp_path: Path) -> Settings:
    """The e2e world with JWTs enabled: a JWKS file holding the issuer's Ed25519 key."""
    return _with(
        world,
        jwt_jwks_file=issuer.write_jwks(tmp_path / "jwks.json"),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )


@pytest.fixture
def jwt_client(jwt_world: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(jwt_world), raise_server_exceptions=False) as client:
        yield client


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ledger_bytes(settings: Settings) -> bytes:
    store = LedgerStore.open(settings.ledger_url)
    try:
        return b"\n".join(store.iter_leaf_inputs())
    finally:
        store.close()


def _entries(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _ledger_bytes(settings).splitlines()]


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


# --- JWT -------------------------------------------------------------------------------------


def test_a_jwt_call_runs_and_its_contract_names_the_jwt_identity(
    jwt_client: TestClient, jwt_world: Settings, issuer: Issuer
) -> None:
    token = issuer.token()
    with structlog.testing.capture_logs() as logs:
        response = jwt_client.post(
            "/v1/calls",
            json={"entry": "items.by_tenant", "params": {"tenant": "acme", "min_amount": 990}},
            headers=_bearer(token),
        )
        assert response.status_code == 201, response.text
        result = response.json()
        packet = jwt_client.get(f"/v1/packets/{result['packet_id']}", headers=_bearer(token))
    assert result["verdict"] == "ran_clean"
    identity = {
        "id": "dave",
        "roles": ["analyst"],
        "tenant": "acme",
        "auth_method": "jwt",
        "key_id": KID,
    }
    assert result["contract"]["identity"] == identity
    started = [e for e in _entries(jwt_world) if e["kind"] == "call.started"]
    assert [e["body"]["contract"]["identity"] for e in started] == [identity]

    # The credential is nowhere: not in the ledger, the packet, the answer or the logs.
    assert packet.status_code == 200
    with zipfile.ZipFile(io.BytesIO(packet.content)) as bag:
        packet_text = b"".join(bag.read(name) for name in bag.namelist())
    signature = token.rsplit(".", 1)[1].encode()
    for haystack in (_ledger_bytes(jwt_world), packet_text, response.content, repr(logs).encode()):
        assert token.encode() not in haystack
        assert signature not in haystack


def test_api_keys_still_work_next_to_jwts(jwt_client: TestClient) -> None:
    response = jwt_client.get("/v1/catalog", headers=_bearer("tok-alice"))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("claims", "where", "detail"),
    [
        pytest.param({"aud": "another-service"}, "aud", "audience", id="audience"),
        pytest.param({"iss": "https://evil.test"}, "iss", "issuer", id="issuer"),
        pytest.param({"exp": 1_000_000_000}, "exp", "expired", id="expired"),
        pytest.param({"tenant": None}, "tenant", "tenant is required", id="no-tenant"),
    ],
)
def test_a_bad_jwt_is_a_401_problem_naming_the_check(
    jwt_client: TestClient, issuer: Issuer, claims: dict[str, Any], where: str, detail: str
) -> None:
    token = issuer.token(**claims)
    response = jwt_client.get("/v1/catalog", headers=_bearer(token))
    body = _problem(response, 401, "unauthenticated")
    assert detail in body["detail"]
    assert body["errors"] == [{"where": where, "detail": body["detail"]}]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert token not in response.text
    assert token.rsplit(".", 1)[1] not in response.text


def test_a_jwt_signed_by_an_unknown_key_is_refused(jwt_client: TestClient) -> None:
    impostor = Issuer.generate(KID)  # claims the configured kid, holds another key
    body = _problem(
        jwt_client.get("/v1/catalog", headers=_bearer(impostor.token())), 401, "unauthenticated"
    )
    assert body["errors"][0]["where"] == "signature"


def test_rotating_the_jwks_file_takes_effect_without_a_restart_and_fails_closed(
    jwt_client: TestClient, jwt_world: Settings, issuer: Issuer
) -> None:
    jwks = jwt_world.jwt_jwks_file
    assert jwks is not None
    old_token = issuer.token()
    assert jwt_client.get("/v1/catalog", headers=_bearer(old_token)).status_code == 200
    successor = Issuer.generate("rotated-key")
    successor.write_jwks(jwks)  # the old key is gone from the file
    assert jwt_client.get("/v1/catalog", headers=_bearer(successor.token())).status_code == 200
    refused = _problem(
        jwt_client.get("/v1/catalog", headers=_bearer(old_token)), 401, "unauthenticated"
    )
    assert refused["errors"][0]["where"] == "header.kid"
    jwks.write_text("{not json")  # a broken file holds no key: every JWT refused, naming it
    broken = _problem(
        jwt_client.get("/v1/catalog", headers=_bearer(successor.token())),
        500,
        "configuration_error",
    )
    assert str(jwks) in broken["detail"]
    assert jwt_client.get("/v1/catalog", headers=_bearer("tok-alice")).status_code == 200
    successor.write_jwks(jwks)
    assert jwt_client.get("/v1/catalog", headers=_bearer(successor.token())).status_code == 200


def test_without_jwt_settings_a_jwt_is_refused_as_not_enabled(
    client: TestClient, issuer: Issuer
) -> None:
    body = _problem(
        client.get("/v1/catalog", headers=_bearer(issuer.token())), 401, "unauthenticated"
    )
    assert "JWT bearer tokens are not enabled" in body["detail"]


def test_a_missing_jwks_file_refuses_start_naming_it(jwt_world: Settings) -> None:
    assert jwt_world.jwt_jwks_file is not None
    jwt_world.jwt_jwks_file.unlink()
    with (
        pytest.raises(StartupRefused, match=re.escape(str(jwt_world.jwt_jwks_file))),
        TestClient(create_app(jwt_world)),
    ):
        pass


def test_a_jwt_key_without_issuer_refuses_start(jwt_world: Settings) -> None:
    settings = _with(jwt_world, jwt_issuer=None)
    with (
        pytest.raises(ConfigurationError, match="GOVEX_JWT_ISSUER"),
        TestClient(create_app(settings)),
    ):
        pass


def test_govex_serve_refuses_half_configured_jwts(jwt_world: Settings) -> None:
    env = {
        "GOVEX_CATALOG_DIR": str(jwt_world.catalog_dir),
        "GOVEX_SOURCES": json.dumps(jwt_world.sources),
        "GOVEX_KEYS_FILE": str(jwt_world.keys_file),
        "GOVEX_LEDGER_URL": jwt_world.ledger_url,
        "GOVEX_PACKET_ROOT": str(jwt_world.packet_root),
        "GOVEX_JWT_JWKS_FILE": str(jwt_world.jwt_jwks_file),
        "GOVEX_JWT_ISSUER": ISSUER,
    }
    result = CliRunner().invoke(cli_app, ["serve"], env=env)
    assert result.exit_code == 2
    assert "GOVEX_JWT_AUDIENCE" in result.stderr
    assert "Traceback" not in result.stderr


# --- throttling ------------------------------------------------------------------------------


def test_repeated_failures_from_one_client_are_throttled_and_others_are_not(
    world: Settings,
) -> None:
    clock = SettableClock()
    app = create_app(world, clock=clock)
    wrong = _bearer("tok-nobody")
    with TestClient(app, raise_server_exceptions=False, client=("127.0.0.1", 5001)) as attacker:
        neighbour = TestClient(app, raise_server_exceptions=False, client=("127.0.0.2", 123))
        for _ in range(5):
            _problem(attacker.get("/v1/catalog", headers=wrong), 401, "unauthenticated")
            clock.advance(1)
        # The 6th attempt is refused before its credential is looked at, valid or not.
        throttled = attacker.get("/v1/catalog", headers=_bearer("tok-alice"))
        body = _problem(throttled, 429, "auth_throttled")
        assert throttled.headers["Retry-After"] == "55"  # the first failure leaves at 60 s
        assert "retry in 55 s" in body["detail"]
        assert "127.0.0.1" not in throttled.text
        _problem(attacker.post("/v1/calls", json={"entry": "items.all"}), 429, "auth_throttled")

        assert neighbour.get("/v1/catalog", headers=_bearer("tok-alice")).status_code == 200
        _problem(neighbour.get("/v1/catalog", headers=wrong), 401, "unauthenticated")

        clock.advance(55)  # the window has passed the first failure
        assert attacker.get("/v1/catalog", headers=_bearer("tok-alice")).status_code == 200
        _problem(attacker.get("/v1/catalog", headers=wrong), 401, "unauthenticated")
        _problem(attacker.get("/v1/catalog", headers=wrong), 429, "auth_throttled")


# --- govex keys ------------------------------------------------------------------------------


def _keys(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_app, ["keys", *args])
    return result.exit_code, result.stdout, result.stderr


def test_keys_create_list_revoke_round_trip_over_http(world: Settings) -> None:
    keys_file = str(world.keys_file)
    code, out, err = _keys(
        "create",
        "--principal",
        "erin",
        "--role",
        "analyst",
        "--role",
        "auditor",
        "--tenant",
        "acme",
        "--days",
        "7",
        "--keys-file",
        keys_file,
    )
    assert code == 0, err
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    key_id, token = fields["key_id"], fields["token"]
    assert token not in err
    assert token not in world.keys_file.read_text()

    with TestClient(create_app(world), raise_server_exceptions=False) as client:
        catalog = client.get("/v1/catalog", headers=_bearer(token))
        assert catalog.status_code == 200, catalog.text
        call = client.post(
            "/v1/calls", json={"entry": "items.all", "mode": "dry_run"}, headers=_bearer(token)
        ).json()
        assert call["contract"]["identity"]["key_id"] == key_id
        assert call["contract"]["identity"]["roles"] == ["analyst", "auditor"]

        code, out, _ = _keys("list", "--keys-file", keys_file)
        assert code == 0
        (line,) = [line for line in out.splitlines() if line.startswith(key_id)]
        assert line.split()[1:4] == ["erin", "analyst,auditor", "acme"]
        assert line.split()[-1] == "active"
        assert re.search(r"[0-9a-f]{64}", out) is None  # never a hash

        code, out, err = _keys("revoke", key_id, "--keys-file", keys_file)
        assert code == 0, err
        assert f"revoked {key_id}" in out
        # The running service follows the file: the next request is refused, no restart.
        body = _problem(client.get("/v1/catalog", headers=_bearer(token)), 401, "unauthenticated")
        assert f"API key {key_id} is revoked" in body["detail"]
        assert client.get("/v1/catalog", headers=_bearer("tok-alice")).status_code == 200

    code, out, _ = _keys("list", "--keys-file", keys_file, "--json")
    listed = {row["key_id"]: row for row in json.loads(out)}
    assert listed[key_id]["status"] == "revoked"
    assert listed["k-alice"]["status"] == "active"
    assert all("sha256" not in row for row in listed.values())
    code, out, _ = _keys("revoke", key_id, "--keys-file", keys_file)
    assert code == 0
    assert "already revoked" in out
    with TestClient(create_app(world), raise_server_exceptions=False) as client:  # a restart
        _problem(client.get("/v1/catalog", headers=_bearer(token)), 401, "unauthenticated")
    assert token not in _ledger_bytes(world).decode()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--days", "1", "--expires", "2099-01-01"], "not both", id="both-expiries"),
        pytest.param(["--expires", "2001-01-01"], "not in the future", id="past"),
        pytest.param(["--expires", "soon"], "ISO 8601", id="not-a-date"),
        pytest.param(["--key-id", "k-alice"], "already in", id="taken-key-id"),
    ],
)
def test_keys_create_refuses_what_cannot_work(
    world: Settings, args: list[str], needle: str
) -> None:
    before = world.keys_file.read_bytes()
    code, out, err = _keys(
        "create",
        "--principal",
        "x",
        "--role",
        "analyst",
        "--tenant",
        "acme",
        "--keys-file",
        str(world.keys_file),
        *args,
    )
    assert code == 2
    assert needle in err
    assert out == ""
    assert world.keys_file.read_bytes() == before


def test_keys_create_with_an_expiry_lists_it(tmp_path: Path) -> None:
    keys_file = str(tmp_path / "new-keys.json")
    code, _, err = _keys(
        "create",
        "--principal",
        "fay",
        "--role",
        "auditor",
        "--tenant",
        "globex",
        "--expires",
        "2099-01-01T00:00:00+01:00",
        "--key-id",
        "fay-1",
        "--keys-file",
        keys_file,
    )
    assert code == 0, err
    code, out, _ = _keys("list", "--keys-file", keys_file, "--json")
    assert json.loads(out) == [
        {
            "key_id": "fay-1",
            "principal": "fay",
            "roles": ["auditor"],
            "tenant": "globex",
            "expires_at": "2098-12-31T23:00:00Z",
            "revoked_at": None,
            "status": "active",
        }
    ]


def test_revoking_an_unknown_key_exits_2_naming_it(world: Settings) -> None:
    code, _, err = _keys("revoke", "k-nope", "--keys-file", str(world.keys_file))
    assert code == 2
    assert "k-nope" in err


def test_keys_generate_is_for_the_ledger() -> None:
    code, out, _ = _keys("generate", "--help")
    assert code == 0
    text = " ".join(out.split())  # the help is wrapped to the terminal
    assert "For the LEDGER" in text
    assert "Not an API key: see 'govex keys create'" in text
