"""Authentication in one place: the header, the JWT/API-key route, throttling, JWT settings."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from service.api_keys import token_hash
from service.authenticate import Authenticator, bearer_token, is_jws_compact, jwt_verifier
from service.errors import (
    ConfigurationError,
    StartupRefused,
    TooManyAuthFailures,
    Unauthenticated,
)
from service.settings import Settings
from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
API_TOKEN = "gvx_s3cret-api-token"
ISSUER_KEY = Issuer.generate("idp-ed-1")


def _keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    record = {
        "key_id": "k-alice",
        "principal": "alice",
        "roles": ["analyst"],
        "tenant": "acme",
        "sha256": token_hash(API_TOKEN),
        "expires_at": None,
    }
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": [record]}))
    return path


def _settings(tmp_path: Path, **jwt: object) -> Settings:
    return Settings(catalog_dir=tmp_path, keys_file=_keys_file(tmp_path), **jwt)  # type: ignore[arg-type]


def _jwt_settings(tmp_path: Path, **overrides: object) -> Settings:
    jwks = ISSUER_KEY.write_jwks(tmp_path / "jwks.json")
    fields: dict[str, object] = {
        "jwt_jwks_file": jwks,
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        **overrides,
    }
    return _settings(tmp_path, **fields)


def _jwt(**claims: object) -> str:
    return ISSUER_KEY.token(now=NOW.timestamp(), **claims)


# --- the header --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(None, "no credential", id="missing"),
        pytest.param("", "no credential", id="empty"),
        pytest.param("   ", "no credential", id="blank"),
        pytest.param(f"Basic {API_TOKEN}", "unsupported authorization scheme", id="basic"),
        pytest.param(API_TOKEN, "unsupported authorization scheme", id="no-scheme"),
        pytest.param("Bearer", "empty bearer token", id="bearer-alone"),
        pytest.param("Bearer    ", "empty bearer token", id="bearer-spaces"),
        pytest.param(f"Bearer{API_TOKEN}", "unsupported authorization scheme", id="no-space"),
    ],
)
def test_a_missing_or_malformed_header_names_what_is_wrong(
    header: str | None, message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message) as caught:
        bearer_token(header)
    assert caught.value.where == "authorization"
    assert API_TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(f"Bearer {API_TOKEN}", id="plain"),
        pytest.param(f"bearer {API_TOKEN}", id="lower-case-scheme"),
        pytest.param(f"  BEARER   {API_TOKEN}  ", id="spaces"),
    ],
)
def test_the_bearer_token_is_taken_out(header: str) -> None:
    assert bearer_token(header) == API_TOKEN


@pytest.mark.parametrize(
    ("token", "jws"),
    [
        pytest.param("a.b.c", True, id="three-parts"),
        pytest.param("eyJh.eyJz.", True, id="unsigned-still-a-jwt"),
        pytest.param(API_TOKEN, False, id="api-key"),
        pytest.param("a.b", False, id="two-parts"),
        pytest.param("a.b.c.d", False, id="four-parts"),
        pytest.param("a.b=.c", False, id="padding"),
        pytest.param("a..c", False, id="empty-payload"),
    ],
)
def test_what_counts_as_a_jwt(token: str, jws: bool) -> None:
    assert is_jws_compact(token) is jws


# --- routing -----------------------------------------------------------------------------


def test_api_keys_only_without_jwt_settings(tmp_path: Path) -> None:
    auth = Authenticator.from_settings(_settings(tmp_path))
    assert auth.jwt is None
    assert auth.authenticate(f"Bearer {API_TOKEN}", NOW).auth_method == "api_key"
    token = _jwt()
    with pytest.raises(Unauthenticated, match="JWT bearer tokens are not enabled") as caught:
        auth.authenticate(f"Bearer {token}", NOW)
    assert caught.value.where == "jwt"
    assert token not in str(caught.value)


def test_a_jwt_goes_to_the_verifier_and_an_api_key_to_the_keyring(tmp_path: Path) -> None:
    auth = Authenticator.from_settings(_jwt_settings(tmp_path))
    by_jwt = auth.authenticate(f"Bearer {_jwt()}", NOW)
    assert by_jwt.model_dump() == {
        "id": "dave",
        "roles": ("analyst",),
        "tenant": "acme",
        "auth_method": "jwt",
        "key_id": "idp-ed-1",
    }
    assert auth.authenticate(f"Bearer {API_TOKEN}", NOW).key_id == "k-alice"


@pytest.mark.parametrize(
    ("token", "where"),
    [
        pytest.param(_jwt(aud="someone-else"), "aud", id="audience"),
        pytest.param(_jwt(iss="https://evil.test"), "iss", id="issuer"),
        pytest.param(_jwt(exp=int(NOW.timestamp()) - 120), "exp", id="expired"),
        pytest.param(_jwt(nbf=int(NOW.timestamp()) + 120), "nbf", id="not-yet"),
        pytest.param(Issuer.generate("idp-ed-1").token(now=NOW.timestamp()), "signature", id="sig"),
        pytest.param("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "header.alg", id="alg-none"),
    ],
)
def test_a_bad_jwt_is_refused_naming_the_check(tmp_path: Path, token: str, where: str) -> None:
    auth = Authenticator.from_settings(_jwt_settings(tmp_path))
    with pytest.raises(Unauthenticated) as caught:
        auth.authenticate(f"Bearer {token}", NOW)
    assert caught.value.where == where
    assert token not in str(caught.value)
    signature = token.rsplit(".", 1)[-1]
    assert not signature or signature not in str(caught.value)


def test_the_leeway_setting_bounds_clock_skew(tmp_path: Path) -> None:
    late = _jwt(exp=int(NOW.timestamp()) - 30)
    lenient = Authenticator.from_settings(_jwt_settings(tmp_path))
    assert lenient.authenticate(f"Bearer {late}", NOW).id == "dave"
    strict = Authenticator.from_settings(_jwt_settings(tmp_path, jwt_leeway_s=10))
    with pytest.raises(Unauthenticated, match="expired"):
        strict.authenticate(f"Bearer {late}", NOW)


def test_the_algorithm_allowlist_is_applied(tmp_path: Path) -> None:
    with pytest.raises(StartupRefused, match="no public signing key usable"):
        Authenticator.from_settings(_jwt_settings(tmp_path, jwt_algorithms=("ES256",)))
    auth = Authenticator.from_settings(_jwt_settings(tmp_path, jwt_algorithms=("EdDSA",)))
    assert auth.authenticate(f"Bearer {_jwt()}", NOW).auth_method == "jwt"


# --- throttling --------------------------------------------------------------------------


def test_repeated_failures_throttle_that_client_only(tmp_path: Path) -> None:
    auth = Authenticator.from_settings(_settings(tmp_path))
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            auth.authenticate("Bearer wrong", NOW, client="10.0.0.1")
    with pytest.raises(TooManyAuthFailures) as caught:  # even with a valid key
        auth.authenticate(f"Bearer {API_TOKEN}", NOW + timedelta(seconds=1), client="10.0.0.1")
    assert caught.value.retry_after_s == 59
    assert auth.authenticate(f"Bearer {API_TOKEN}", NOW, client="10.0.0.2").id == "alice"
    later = NOW + timedelta(seconds=60)
    assert auth.authenticate(f"Bearer {API_TOKEN}", later, client="10.0.0.1").id == "alice"


def test_a_success_does_not_erase_earlier_failures(tmp_path: Path) -> None:
    auth = Authenticator.from_settings(_settings(tmp_path))
    for n in range(5):
        with pytest.raises(Unauthenticated):
            auth.authenticate(None, NOW, client="c")
        if n == 2:
            auth.authenticate(f"Bearer {API_TOKEN}", NOW, client="c")
    with pytest.raises(TooManyAuthFailures):
        auth.authenticate(f"Bearer {API_TOKEN}", NOW, client="c")


def test_the_limit_and_window_come_from_the_settings(tmp_path: Path) -> None:
    settings = _settings(tmp_path, auth_failure_limit=2, auth_failure_window_s=5)
    auth = Authenticator.from_settings(settings)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            auth.authenticate("Bearer wrong", NOW, client="c")
    with pytest.raises(TooManyAuthFailures) as caught:
        auth.authenticate("Bearer wrong", NOW, client="c")
    assert caught.value.retry_after_s == 5


def test_without_a_client_nothing_is_throttled(tmp_path: Path) -> None:
    auth = Authenticator.from_settings(_settings(tmp_path))
    for _ in range(20):
        with pytest.raises(Unauthenticated):
            auth.authenticate("Bearer wrong", NOW)
    assert auth.authenticate(f"Bearer {API_TOKEN}", NOW).id == "alice"
    assert auth.throttle.tracked_clients() == 0


def test_a_broken_keys_file_is_not_held_against_clients(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    auth = Authenticator.from_settings(settings)
    settings.keys_file.write_text("not json")
    for _ in range(10):
        with pytest.raises(ConfigurationError):
            auth.authenticate(f"Bearer {API_TOKEN}", NOW, client="c")
    assert auth.throttle.tracked_clients() == 0


def test_no_token_reaches_a_log(tmp_path: Path) -> None:
    auth = Authenticator.from_settings(_jwt_settings(tmp_path))
    tokens = [API_TOKEN, _jwt(), _jwt(aud="x"), "Bearer-less-secret", "wrong-secret"]
    with capture_logs() as logs:
        for token in tokens:
            for header in (f"Bearer {token}", token):
                with contextlib.suppress(Unauthenticated, TooManyAuthFailures):
                    auth.authenticate(header, NOW, client="c")
    assert any(event["event"] == "auth.failed" for event in logs)
    text = repr(logs)
    for token in tokens:
        assert token not in text
        assert token.rsplit(".", 1)[-1] not in text


# --- JWT settings ------------------------------------------------------------------------


def test_no_jwt_settings_means_no_verifier(tmp_path: Path) -> None:
    assert jwt_verifier(_settings(tmp_path)) is None


@pytest.mark.parametrize(
    ("overrides", "where", "message"),
    [
        pytest.param(
            {"jwt_public_key_file": Path("key.pem")},
            "jwt_public_key_file",
            "at most one of GOVEX_JWT_JWKS_FILE and GOVEX_JWT_PUBLIC_KEY_FILE",
            id="both-key-files",
        ),
        pytest.param({"jwt_issuer": None}, "jwt_issuer", "GOVEX_JWT_ISSUER is not", id="no-issuer"),
        pytest.param(
            {"jwt_audience": ""}, "jwt_audience", "GOVEX_JWT_AUDIENCE is not", id="no-audience"
        ),
        pytest.param(
            {"jwt_issuer": None, "jwt_audience": None},
            "jwt_issuer",
            "GOVEX_JWT_ISSUER and GOVEX_JWT_AUDIENCE are not",
            id="neither",
        ),
        pytest.param(
            {"jwt_algorithms": ("EdDSA", "HS256")},
            "jwt_algorithms",
            "GOVEX_JWT_ALGORITHMS: algorithm 'HS256' is not supported",
            id="hmac",
        ),
        pytest.param(
            {"jwt_algorithms": ("none",)},
            "jwt_algorithms",
            "none and HS. are never accepted",
            id="none",
        ),
    ],
)
def test_jwt_settings_that_do_not_go_together_refuse_start(
    tmp_path: Path, overrides: dict[str, object], where: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        jwt_verifier(_jwt_settings(tmp_path, **overrides))
    assert caught.value.where == where


@pytest.mark.parametrize("name", ["jwt_issuer", "jwt_audience", "jwt_algorithms"])
def test_jwt_settings_without_a_key_file_refuse_start(tmp_path: Path, name: str) -> None:
    value: object = ("EdDSA",) if name == "jwt_algorithms" else "x"
    with pytest.raises(ConfigurationError, match=f"GOVEX_{name.upper()} is set but no JWT key"):
        jwt_verifier(_settings(tmp_path, **{name: value}))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "cannot read JWKS file", id="missing"),
        pytest.param(b"{not json", "jwks.json", id="not-json"),
        pytest.param(b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "jwks.json", id="secret"),
    ],
)
def test_a_bad_jwks_file_refuses_start_naming_it(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    settings = _jwt_settings(tmp_path)
    assert settings.jwt_jwks_file is not None
    if content is None:
        settings.jwt_jwks_file.unlink()
    else:
        settings.jwt_jwks_file.write_bytes(content)
    with pytest.raises(StartupRefused, match=message) as caught:
        Authenticator.from_settings(settings)
    assert str(settings.jwt_jwks_file) in caught.value.where


def test_a_pem_public_key_works_too(tmp_path: Path) -> None:
    pem = tmp_path / "idp.pem"
    pem.write_bytes(
        ISSUER_KEY.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    settings = _settings(
        tmp_path, jwt_public_key_file=pem, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    )
    principal = Authenticator.from_settings(settings).authenticate(f"Bearer {_jwt()}", NOW)
    assert principal.auth_method == "jwt"
    assert principal.key_id.startswith("urn:ietf:params:oauth:jwk-thumbprint:sha-256:")


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        pytest.param("EdDSA", ("EdDSA",), id="one"),
        pytest.param("EdDSA, ES256", ("EdDSA", "ES256"), id="comma-separated"),
        pytest.param('["EdDSA", "RS256"]', ("EdDSA", "RS256"), id="json"),
        pytest.param("", None, id="empty"),
    ],
)
def test_the_algorithm_allowlist_reads_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: str, parsed: tuple[str, ...] | None
) -> None:
    monkeypatch.setenv("GOVEX_CATALOG_DIR", str(tmp_path))
    monkeypatch.setenv("GOVEX_KEYS_FILE", str(tmp_path / "keys.json"))
    monkeypatch.setenv("GOVEX_JWT_ALGORITHMS", raw)
    monkeypatch.setenv("GOVEX_JWT_LEEWAY_S", "30")
    settings = Settings()
    assert settings.jwt_algorithms == parsed
    assert settings.jwt_leeway_s == 30


def test_a_leeway_beyond_five_minutes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="less than or equal to 300"):
        _settings(tmp_path, jwt_leeway_s=301)
