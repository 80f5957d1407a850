"""The keys file: issuing and revoking keys, atomically, 0600, hashes only, old files still load."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.api_keys import (
    TOKEN_PREFIX,
    issue_key,
    read_keys_file,
    revoke_key,
    token_hash,
)
from service.authenticate import is_jws_compact
from service.errors import ConfigurationError, NotFound, Unauthenticated
from service.identity import ApiKeyring

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _issue(path: Path, **overrides: object) -> tuple[str, str]:
    fields: dict[str, object] = {
        "principal": "alice",
        "roles": ("analyst",),
        "tenant": "acme",
        "expires_at": None,
        "now": NOW,
        **overrides,
    }
    issued = issue_key(path, **fields)  # type: ignore[arg-type]
    return issued.record.key_id, issued.token


def test_a_new_key_creates_the_file_with_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key_id, token = _issue(path, expires_at=NOW + timedelta(days=30))
    assert token.startswith(TOKEN_PREFIX)
    assert len(token) > 40
    assert not is_jws_compact(token)  # never routed to the JWT verifier
    assert key_id.startswith("k-")
    text = path.read_text()
    assert token not in text
    assert token_hash(token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(text)
    assert document["format"] == "govex.keys/v1"
    assert document["keys"] == [
        {
            "key_id": key_id,
            "principal": "alice",
            "roles": ["analyst"],
            "tenant": "acme",
            "sha256": token_hash(token),
            "expires_at": "2026-12-23T12:00:00Z",
        }
    ]
    assert ApiKeyring.from_file(path).verify(token, NOW).key_id == key_id


def test_keys_are_appended_and_the_mode_stays_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": []}))
    path.chmod(0o644)
    first = _issue(path)
    second = _issue(path, principal="bob", roles=("auditor",), tenant="globex")
    assert [r.key_id for r in read_keys_file(path).keys] == [first[0], second[0]]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [".keys.json.lock", "keys.json"]


def test_an_existing_hand_written_file_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    old = {
        "key_id": "demo-1",
        "principal": "carol",
        "roles": ["operator"],
        "tenant": "*",
        "sha256": "a" * 64,
        "expires_at": None,
    }
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": [old]}))
    _issue(path, key_id="k-two")
    assert json.loads(path.read_text())["keys"][0] == old  # no revoked_at added


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        pytest.param({"key_id": "has space"}, "key_id", id="key-id-not-plain"),
        pytest.param({"key_id": "../k"}, "key_id", id="key-id-path"),
        pytest.param({"principal": ""}, "principal", id="empty-principal"),
        pytest.param({"tenant": ""}, "tenant", id="empty-tenant"),
    ],
)
def test_a_bad_new_key_is_refused_and_nothing_written(
    tmp_path: Path, overrides: dict[str, object], where: str
) -> None:
    path = tmp_path / "keys.json"
    with pytest.raises(ConfigurationError) as caught:
        _issue(path, **overrides)
    assert caught.value.where == where
    assert not path.exists()


def test_a_taken_key_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    _issue(path, key_id="k-1")
    before = path.read_bytes()
    with pytest.raises(ConfigurationError, match="already in"):
        _issue(path, key_id="k-1")
    assert path.read_bytes() == before


def test_an_invalid_file_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"format": "govex.keys/v1", "keys": [{"key_id": "x"}]}')
    with pytest.raises(ConfigurationError, match="/keys/0/"):
        _issue(path)
    assert "x" in path.read_text()


def test_revoke_marks_the_key_once_and_the_keyring_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key_id, token = _issue(path)
    other_id, other = _issue(path, principal="bob")
    keyring = ApiKeyring.from_file(path)
    record, changed = revoke_key(path, key_id, NOW)
    assert changed
    assert record.revoked_at == NOW
    assert record.status(NOW) == "revoked"
    again, changed = revoke_key(path, key_id, NOW + timedelta(hours=1))
    assert not changed
    assert again.revoked_at == NOW  # the first revocation stands
    assert json.loads(path.read_text())["keys"][0]["revoked_at"] == "2026-11-23T12:00:00Z"
    assert "revoked_at" not in json.loads(path.read_text())["keys"][1]
    with pytest.raises(Unauthenticated, match="is revoked"):
        keyring.verify(token, NOW)
    assert keyring.verify(other, NOW).key_id == other_id


def test_revoking_an_unknown_key_names_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    _issue(path)
    with pytest.raises(NotFound, match="no API key with id 'k-nope'"):
        revoke_key(path, "k-nope", NOW)


def test_concurrent_changes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    errors: list[BaseException] = []

    def issue(n: int) -> None:
        try:
            _issue(path, key_id=f"k-{n}")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.key_id for r in read_keys_file(path).keys) == sorted(
        f"k-{n}" for n in range(16)
    )
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_status_follows_expiry_and_revocation(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key_id, _ = _issue(path, expires_at=NOW + timedelta(seconds=10))
    (record,) = read_keys_file(path).keys
    assert record.key_id == key_id
    assert record.status(NOW) == "active"
    assert record.status(NOW + timedelta(seconds=10)) == "expired"
