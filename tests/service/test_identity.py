"""API keys: hashes only, expiry, schemes; the token is never repeated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.errors import StartupRefused, Unauthenticated
from service.identity import ApiKeyring, token_hash

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _keys(tmp_path: Path, **overrides: object) -> Path:
    record = {
        "key_id": "k1",
        "principal": "alice",
        "roles": ["analyst"],
        "tenant": "acme",
        "sha256": token_hash("s3cret-token"),
        "expires_at": None,
        **overrides,
    }
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": [record]}))
    return path


def test_a_known_token_resolves_to_its_principal(tmp_path: Path) -> None:
    principal = ApiKeyring.from_file(_keys(tmp_path)).authenticate("Bearer s3cret-token", NOW)
    assert (principal.id, principal.roles, principal.tenant, principal.key_id) == (
        "alice",
        ("analyst",),
        "acme",
        "k1",
    )
    assert "s3cret-token" not in principal.model_dump_json()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(None, "no credential", id="missing"),
        pytest.param("Basic s3cret-token", "unsupported authorization scheme", id="basic"),
        pytest.param("Bearer ", "unsupported authorization scheme", id="empty"),
        pytest.param("Bearer wrong-token", "unknown API key", id="unknown"),
    ],
)
def test_bad_credentials_are_refused_without_echoing_them(
    tmp_path: Path, header: str | None, message: str
) -> None:
    with pytest.raises(Unauthenticated, match=message) as caught:
        ApiKeyring.from_file(_keys(tmp_path)).authenticate(header, NOW)
    assert "s3cret" not in str(caught.value)
    assert "wrong-token" not in str(caught.value)


def test_an_expired_key_is_refused(tmp_path: Path) -> None:
    keyring = ApiKeyring.from_file(
        _keys(tmp_path, expires_at=(NOW - timedelta(seconds=1)).isoformat())
    )
    with pytest.raises(Unauthenticated, match="k1 expired"):
        keyring.authenticate("Bearer s3cret-token", NOW)


def test_an_invalid_keys_file_refuses_start_with_the_pointer(tmp_path: Path) -> None:
    with pytest.raises(StartupRefused, match=r"/keys/0/sha256"):
        ApiKeyring.from_file(_keys(tmp_path, sha256="plaintext-token"))


def test_an_empty_keyring_lets_nobody_in() -> None:
    with pytest.raises(Unauthenticated):
        ApiKeyring({}).authenticate("Bearer anything", NOW)
