"""API keys: hashes only, expiry, revocation, the file followed on change; tokens never repeated."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.api_keys import token_hash
from service.errors import ConfigurationError, StartupRefused, Unauthenticated
from service.identity import ApiKeyring

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "s3cret-token"


def _record(**overrides: object) -> dict[str, object]:
    return {
        "key_id": "k1",
        "principal": "alice",
        "roles": ["analyst"],
        "tenant": "acme",
        "sha256": token_hash(TOKEN),
        "expires_at": None,
        **overrides,
    }


def _keys(tmp_path: Path, *records: dict[str, object], **overrides: object) -> Path:
    path = tmp_path / "keys.json"
    listed = list(records) or [_record(**overrides)]
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": listed}))
    return path


def _refused(keyring: ApiKeyring, token: str, match: str) -> Unauthenticated:
    with pytest.raises(Unauthenticated, match=match) as caught:
        keyring.verify(token, NOW)
    assert token not in str(caught.value)
    assert token not in caught.value.where
    return caught.value


def test_a_known_token_resolves_to_its_principal(tmp_path: Path) -> None:
    principal = ApiKeyring.from_file(_keys(tmp_path)).verify(TOKEN, NOW)
    assert principal.model_dump() == {
        "id": "alice",
        "roles": ("analyst",),
        "tenant": "acme",
        "auth_method": "api_key",
        "key_id": "k1",
    }
    assert TOKEN not in principal.model_dump_json()


@pytest.mark.parametrize(
    ("overrides", "message", "where"),
    [
        pytest.param(
            {"expires_at": (NOW - timedelta(seconds=1)).isoformat()},
            "API key k1 is expired",
            "k1",
            id="expired",
        ),
        pytest.param({"expires_at": NOW.isoformat()}, "k1 is expired", "k1", id="expires-now"),
        pytest.param(
            {"revoked_at": (NOW - timedelta(days=1)).isoformat()},
            "API key k1 is revoked",
            "k1",
            id="revoked",
        ),
        pytest.param(
            {
                "revoked_at": (NOW + timedelta(days=1)).isoformat(),
                "expires_at": (NOW + timedelta(days=9)).isoformat(),
            },
            "k1 is revoked",
            "k1",
            id="revoked-whenever",
        ),
    ],
)
def test_expired_and_revoked_keys_are_refused(
    tmp_path: Path, overrides: dict[str, object], message: str, where: str
) -> None:
    keyring = ApiKeyring.from_file(_keys(tmp_path, **overrides))
    assert _refused(keyring, TOKEN, message).where == where


def test_a_key_that_expires_later_still_works(tmp_path: Path) -> None:
    keyring = ApiKeyring.from_file(_keys(tmp_path, expires_at="2026-11-23T12:00:01Z"))
    assert keyring.verify(TOKEN, NOW).key_id == "k1"


def test_an_unknown_token_is_refused_without_echoing_it(tmp_path: Path) -> None:
    _refused(ApiKeyring.from_file(_keys(tmp_path)), "wrong-token", "unknown API key")


@pytest.mark.parametrize(
    ("overrides", "pointer"),
    [
        pytest.param({"sha256": "plaintext-token"}, "/keys/0/sha256", id="not-a-hash"),
        pytest.param({"expires_at": "2027-01-01T00:00:00"}, "/keys/0/expires_at", id="naive"),
        pytest.param({"revoked_at": "yesterday"}, "/keys/0/revoked_at", id="bad-revoked-at"),
        pytest.param({"token": TOKEN}, "/keys/0/token", id="extra-member"),
    ],
)
def test_an_invalid_keys_file_refuses_start_with_the_pointer(
    tmp_path: Path, overrides: dict[str, object], pointer: str
) -> None:
    with pytest.raises(StartupRefused, match=pointer) as caught:
        ApiKeyring.from_file(_keys(tmp_path, **overrides))
    assert caught.value.where.endswith(f"keys.json#{pointer}")
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(_record(key_id="k2"), id="same-hash"),
        pytest.param(_record(sha256=token_hash("other")), id="same-key-id"),
    ],
)
def test_a_key_listed_twice_refuses_start(tmp_path: Path, second: dict[str, object]) -> None:
    with pytest.raises(StartupRefused, match="listed twice"):
        ApiKeyring.from_file(_keys(tmp_path, _record(), second))


def test_a_missing_keys_file_refuses_start_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StartupRefused, match="cannot read keys file") as caught:
        ApiKeyring.from_file(tmp_path / "absent.json")
    assert caught.value.where == str(tmp_path / "absent.json")


def test_an_empty_keyring_lets_nobody_in() -> None:
    with pytest.raises(Unauthenticated):
        ApiKeyring({}).verify("anything", NOW)


def _replace(path: Path, *records: dict[str, object]) -> None:
    """Replace the keys file as `govex keys` does: a new file renamed over the old one."""
    new = path.with_name("keys.new")
    new.write_text(json.dumps({"format": "govex.keys/v1", "keys": list(records)}))
    new.replace(path)


def test_the_keyring_follows_its_file_revocation_without_restart(tmp_path: Path) -> None:
    path = _keys(tmp_path)
    keyring = ApiKeyring.from_file(path)
    assert keyring.verify(TOKEN, NOW).key_id == "k1"
    _replace(path, _record(revoked_at=NOW.isoformat()), _record(key_id="k2", sha256="a" * 64))
    _refused(keyring, TOKEN, "k1 is revoked")


def test_a_key_added_to_the_file_is_accepted_without_restart(tmp_path: Path) -> None:
    path = _keys(tmp_path)
    keyring = ApiKeyring.from_file(path)
    _refused(keyring, "new-token", "unknown API key")
    _replace(path, _record(), _record(key_id="k2", sha256=token_hash("new-token")))
    assert keyring.verify("new-token", NOW).key_id == "k2"


def test_a_file_rewritten_in_place_is_followed_too(tmp_path: Path) -> None:
    path = _keys(tmp_path)
    keyring = ApiKeyring.from_file(path)
    before = path.stat()
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": []}))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    _refused(keyring, TOKEN, "unknown API key")


@pytest.mark.parametrize(
    "breakage",
    [pytest.param("garbage", id="invalid"), pytest.param(None, id="deleted")],
)
def test_a_broken_or_missing_file_fails_closed_until_fixed(
    tmp_path: Path, breakage: str | None
) -> None:
    path = _keys(tmp_path)
    keyring = ApiKeyring.from_file(path)
    if breakage is None:
        path.unlink()
    else:
        path.write_text(breakage)
    with pytest.raises(ConfigurationError, match="API keys are refused") as caught:
        keyring.verify(TOKEN, NOW)
    assert str(path) not in str(caught.value)  # a client sees no server path
    _replace(path, _record())
    assert keyring.verify(TOKEN, NOW).key_id == "k1"
