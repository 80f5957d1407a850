"""Console sessions: sign-in as the API authenticates, signed cookies, CSRF, keys that end."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api_keys import revoke_key, token_hash
from service.app import create_app
from service.console.session import COOKIE, issue_session
from service.console.sign_in import safe_next
from service.identity import Principal
from service.settings import Settings
from tests.e2e.conftest import TOKENS
from tests.e2e.console.conftest import csrf_of, make_console_world, sign_in
from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer


def _last(client: TestClient) -> tuple[str, dict[str, object]]:
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    entry = runtime.ledger.get(runtime.ledger.size() - 1)
    return entry.kind.value, dict(entry.body)


def _set_cookie(response_headers: list[str]) -> str:
    return next(h for h in response_headers if h.startswith(f"{COOKIE}="))


def test_sign_in_sets_a_signed_httponly_strict_cookie_that_holds_no_credential(
    console_world: Settings,
) -> None:
    with TestClient(create_app(console_world)) as client:
        form = client.get("/console/sign-in")
        answer = client.post(
            "/console/sign-in",
            data={"csrf": csrf_of(form.text), "token": TOKENS["carol"], "next": "/console/ledger"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/ledger"
        header = _set_cookie(answer.headers.get_list("set-cookie"))
        attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
        assert {"httponly", "max-age", "path", "samesite"} <= attributes
        assert "samesite=strict" in header.lower()
        assert "path=/console" in header.lower()
        value = header.split(";")[0].split("=", 1)[1]
        claims = json.loads(base64.urlsafe_b64decode(value.split(".")[1] + "=="))
        assert claims["principal"] == "carol"
        assert claims["key_id"] == "k-carol"
        assert TOKENS["carol"] not in value
        assert token_hash(TOKENS["carol"]) not in json.dumps(claims)
        assert client.get("/console/ledger").status_code == 200


def test_a_refused_sign_in_is_ledgered_as_auth_refused_and_sets_no_session(
    console_world: Settings,
) -> None:
    with TestClient(create_app(console_world)) as client:
        form = client.get("/console/sign-in")
        answer = client.post(
            "/console/sign-in", data={"csrf": csrf_of(form.text), "token": "tok-nobody"}
        )
        assert answer.status_code == 401
        assert "Sign-in refused: unknown API key" in answer.text
        assert COOKIE not in answer.cookies
        kind, body = _last(client)
        assert kind == "auth.refused"
        assert body["request"] == "POST /console/sign-in"
        assert body["code"] == "unauthenticated"
        assert body["where"] == "api_key"
        assert "tok-nobody" not in json.dumps(body)
        assert f"entry {client.app.state.runtime.ledger.size() - 1}" in answer.text  # type: ignore[attr-defined]


def test_sign_in_failures_are_throttled_per_client_like_the_api(tmp_path: Path) -> None:
    world = make_console_world(tmp_path, auth_failure_limit=2)
    with TestClient(create_app(world)) as client:
        for _ in range(2):
            form = client.get("/console/sign-in")
            refused = client.post(
                "/console/sign-in", data={"csrf": csrf_of(form.text), "token": "x"}
            )
            assert refused.status_code == 401
        size = client.app.state.runtime.ledger.size()  # type: ignore[attr-defined]
        form = client.get("/console/sign-in")
        throttled = client.post(
            "/console/sign-in", data={"csrf": csrf_of(form.text), "token": TOKENS["carol"]}
        )
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) >= 1
        assert "Too many failed authentications" in throttled.text
        assert client.app.state.runtime.ledger.size() == size  # type: ignore[attr-defined]
        # The API counts the same failures: it throttles this client too.
        api = client.get("/v1/catalog", headers={"Authorization": f"Bearer {TOKENS['carol']}"})
        assert api.status_code == 429


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda v: v[:-2] + ("A" if v[-2] != "A" else "B") + v[-1], id="signature"),
        pytest.param(
            lambda v: ".".join(
                [
                    v.split(".")[0],
                    base64.urlsafe_b64encode(
                        base64.urlsafe_b64decode(v.split(".")[1] + "==").replace(
                            b'"alice"', b'"carol"'
                        )
                    )
                    .rstrip(b"=")
                    .decode(),
                    v.split(".")[2],
                ]
            ),
            id="claims-principal",
        ),
        pytest.param(lambda _: "v1.e30.AAAA", id="made-up"),
        pytest.param(lambda _: "not-a-cookie", id="malformed"),
    ],
)
def test_a_tampered_session_cookie_is_refused_ledgered_and_forgotten(
    console_world: Settings, tamper: object
) -> None:
    with TestClient(create_app(console_world)) as client:
        sign_in(client, TOKENS["alice"])
        forged = tamper(client.cookies[COOKIE])  # type: ignore[operator]
        client.cookies.clear()
        client.cookies.set(COOKIE, forged, path="/console")
        answer = client.get("/console/ledger", follow_redirects=False)
        assert answer.status_code == 401
        assert "console session cookie" in answer.text
        assert 'govex_console=""' in answer.headers["set-cookie"]  # the browser forgets it
        kind, body = _last(client)
        assert kind == "auth.refused"
        assert body["where"] == "session"
        assert body["request"] == "GET /console/ledger"
        assert forged not in json.dumps(body)


def test_a_cookie_signed_by_another_services_key_is_refused(tmp_path: Path) -> None:
    first = make_console_world(tmp_path / "a")
    second = make_console_world(tmp_path / "b")  # its own ledger key: another secret
    with TestClient(create_app(first)) as one, TestClient(create_app(second)) as two:
        sign_in(one, TOKENS["carol"])
        two.cookies.set(COOKIE, one.cookies[COOKIE], path="/console")
        assert two.get("/console/catalog").status_code == 401


def test_workers_sharing_the_session_key_file_accept_each_others_sessions(tmp_path: Path) -> None:
    secret = tmp_path / "console.key"
    secret.write_text("ab" * 32 + "\n")
    first = make_console_world(tmp_path / "a", console_session_key_file=secret)
    second = first.model_copy(update={"ledger_url": f"sqlite:///{tmp_path / 'b.sqlite'}"})
    with TestClient(create_app(first)) as one, TestClient(create_app(second)) as two:
        sign_in(one, TOKENS["carol"])
        two.cookies.set(COOKIE, one.cookies[COOKIE], path="/console")
        answer = two.get("/console/catalog")
        assert answer.status_code == 200
        assert "Signed in as <strong>carol</strong>" in answer.text


def test_an_expired_session_asks_to_sign_in_again(console_world: Settings) -> None:
    with TestClient(create_app(console_world)) as client:
        state = client.app.state.console  # type: ignore[attr-defined]
        principal = Principal(
            id="carol", roles=("operator",), tenant="*", auth_method="api_key", key_id="k-carol"
        )
        record = state.records.get("k-carol")
        old = issue_session(
            state.keys,
            principal,
            now=datetime.now(UTC) - timedelta(seconds=state.ttl_s + 5),
            ttl_s=state.ttl_s,
            key_record=record,
        )
        client.cookies.set(COOKIE, old.cookie, path="/console")
        answer = client.get("/console/calls", follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/console/sign-in?notice=expired")
        assert "next=%2Fconsole%2Fcalls" in answer.headers["location"]
        notice = client.get(answer.headers["location"])
        assert "Your session expired" in notice.text


def test_revoking_or_replacing_the_key_ends_its_sessions_at_the_next_request(
    console_world: Settings,
) -> None:
    with TestClient(create_app(console_world)) as client:
        sign_in(client, TOKENS["alice"])
        assert client.get("/console/catalog").status_code == 200
        revoke_key(console_world.keys_file, "k-alice", datetime.now(UTC))
        ended = client.get("/console/catalog", follow_redirects=False)
        assert ended.status_code == 303
        assert "notice=ended" in ended.headers["location"]

        sign_in(client, TOKENS["bob"])
        keys = json.loads(console_world.keys_file.read_text())
        for record in keys["keys"]:
            if record["key_id"] == "k-bob":  # same key id, another token: another key
                record["sha256"] = token_hash("tok-bob-rotated")
        console_world.keys_file.write_text(json.dumps(keys))
        replaced = client.get("/console/catalog", follow_redirects=False)
        assert replaced.status_code == 303
        assert "notice=ended" in replaced.headers["location"]


def test_sign_out_needs_its_csrf_token_then_forgets_the_session(console_world: Settings) -> None:
    with TestClient(create_app(console_world)) as client:
        sign_in(client, TOKENS["carol"])
        refused = client.post("/console/sign-out", data={"other": "1"})
        assert refused.status_code == 403
        assert "CSRF" in refused.text
        token = csrf_of(client.get("/console/catalog").text)
        out = client.post("/console/sign-out", data={"csrf": token}, follow_redirects=False)
        assert out.status_code == 303
        assert out.headers["location"] == "/console/sign-in?notice=signed_out"
        assert 'govex_console=""' in out.headers["set-cookie"]
        assert client.get("/console/catalog", follow_redirects=False).status_code == 303


def test_post_forms_without_the_sessions_csrf_token_are_refused(tmp_path: Path) -> None:
    world = make_console_world(tmp_path)
    with TestClient(create_app(world)) as client:
        sign_in(client, TOKENS["alice"])
        other = csrf_of(client.get("/console/catalog/items.all").text)
        sign_in(client, TOKENS["carol"])  # a new session: alice's token is not its token
        size = client.app.state.runtime.ledger.size()  # type: ignore[attr-defined]
        for data in ({"other": "1"}, {"csrf": "forged"}, {"csrf": other}):
            answer = client.post("/console/catalog/items.all/dry-run", data=data)
            assert answer.status_code == 403
            assert "CSRF token" in answer.text
        assert client.app.state.runtime.ledger.size() == size  # type: ignore[attr-defined]
        client.cookies.clear()
        no_form_cookie = client.post("/console/sign-in", data={"csrf": "x", "token": "y"})
        assert no_form_cookie.status_code == 403
        client.cookies.set("govex_console_signin", "n", path="/console/sign-in")
        as_json = client.post("/console/sign-in", json={"token": TOKENS["carol"]})
        assert as_json.status_code == 415


def test_without_a_session_secret_the_console_is_unavailable_and_the_api_is_not(
    tmp_path: Path,
) -> None:
    world = make_console_world(tmp_path, ledger_key=False)
    with TestClient(create_app(world)) as client:
        answer = client.get("/console/sign-in")
        assert answer.status_code == 503
        assert "GOVEX_CONSOLE_SESSION_KEY_FILE" in answer.text
        api = client.get("/v1/catalog", headers={"Authorization": f"Bearer {TOKENS['alice']}"})
        assert api.status_code == 200


def test_a_session_key_file_that_is_too_short_keeps_sign_in_off(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_text("tooshort")
    world = make_console_world(tmp_path, console_session_key_file=short)
    with TestClient(create_app(world)) as client:
        answer = client.get("/console/sign-in")
        assert answer.status_code == 503
        assert "holds 8 bytes; at least 32" in answer.text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("/console/calls?entry=a", "/console/calls?entry=a", id="console-path"),
        pytest.param("https://elsewhere.example/x", "/console/catalog", id="absolute-url"),
        pytest.param("//elsewhere.example/console/", "/console/catalog", id="scheme-relative"),
        pytest.param("/console//elsewhere", "/console/catalog", id="double-slash"),
        pytest.param("/v1/calls", "/console/catalog", id="api-path"),
        pytest.param("/console/\\elsewhere", "/console/catalog", id="backslash"),
        pytest.param(None, "/console/catalog", id="none"),
    ],
)
def test_sign_in_returns_only_to_console_pages(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_a_jwt_signs_in_until_its_own_expiry_and_its_key_leaving_ends_the_session(
    tmp_path: Path,
) -> None:
    issuer = Issuer.generate("kid-1")
    jwks = issuer.write_jwks(tmp_path / "jwks.json")
    world = make_console_world(
        tmp_path, jwt_jwks_file=jwks, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    with TestClient(create_app(world)) as client:
        token = issuer.token()
        sign_in(client, f"Bearer {token}")
        claims = json.loads(base64.urlsafe_b64decode(client.cookies[COOKIE].split(".")[1] + "=="))
        assert claims["method"] == "jwt"
        assert token not in client.cookies[COOKIE]
        assert claims["principal"] == "dave"
        assert (
            claims["exp"] == json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))["exp"]
        )  # the token's 5 minutes, not the session's 8 hours
        catalog = client.get("/console/catalog")
        assert "Signed in as <strong>dave</strong> (analyst; tenant acme)" in catalog.text
        Issuer.generate("kid-2").write_jwks(jwks)  # the issuer rotated its key
        ended = client.get("/console/catalog", follow_redirects=False)
        assert ended.status_code == 303
        assert "notice=ended" in ended.headers["location"]
