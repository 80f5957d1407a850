"""The API keys file (``govex.keys/v1``): its records, reading it, and changing it safely.

The file never holds a token, only the SHA-256 of one. A record may carry
``expires_at`` and ``revoked_at`` (``revoked_at`` came later: absent means not revoked,
so older files still load, and a record is written without it until it is revoked).
Tokens are made by :func:`issue_key`, shown once by ``govex keys create`` and never
stored.

A change (:func:`issue_key`, :func:`revoke_key`) reads and checks the whole file, then
replaces it: the new text goes to a temporary file in the same folder with mode 0600,
is flushed to disk and renamed over the old file, all under an exclusive lock on the
sibling ``.<name>.lock``, so that two commands cannot lose each other's change. A
reader (the running service) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from service.errors import ConfigurationError, NotFound
from service.ids import new_ulid

KEYS_FORMAT = "govex.keys/v1"
TOKEN_PREFIX = "gvx_"  # noqa: S105 - a marker on issued tokens, not a secret
KEY_FILE_MODE = 0o600
# Ids chosen on the command line: plain, so they print and grep well (loaded files may differ).
NEW_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
KeyStatus = Literal["active", "expired", "revoked"]


class KeyRecord(BaseModel):
    """One API key: whom it stands for, and the hash of its token (never the token)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(min_length=1)
    principal: str = Field(min_length=1)
    roles: tuple[str, ...]
    tenant: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    expires_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None

    def status(self, now: datetime) -> KeyStatus:
        """``revoked`` once revoked (whenever that was); else ``expired`` from ``expires_at``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


class KeysFile(BaseModel):
    """A whole keys file. Key ids and token hashes are each unique (checked on reading)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["govex.keys/v1"]
    keys: tuple[KeyRecord, ...]

    def text(self) -> str:
        """The file's JSON text; ``revoked_at`` only where set, so older readers still load it."""
        keys = [
            record.model_dump(
                mode="json", exclude={"revoked_at"} if record.revoked_at is None else None
            )
            for record in self.keys
        ]
        return json.dumps({"format": self.format, "keys": keys}, indent=2) + "\n"


@dataclass(frozen=True)
class IssuedKey:
    """A new key's record and its token: the only time the token exists outside a client."""

    record: KeyRecord
    token: str = field(repr=False)


def token_hash(token: str) -> str:
    """Hex SHA-256 of the token's UTF-8 bytes: what the keys file stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh API token: ``gvx_`` and 256 random bits in base64url (never three dot parts)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_keys_file(data: bytes, *, source: str) -> KeysFile:
    """The keys document in ``data``; pure.

    Raises :class:`ConfigurationError` whose ``where`` is ``source#/json/pointer`` for an
    invalid document, or ``source`` for a key id or token hash listed twice.
    """
    try:
        parsed = KeysFile.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        pointer = "/" + "/".join(str(p) for p in first["loc"])
        raise ConfigurationError(
            f"keys file {source} is invalid at {pointer}: {first['msg']}",
            where=f"{source}#{pointer}",
        ) from None
    ids: set[str] = set()
    hashes: set[str] = set()
    for record in parsed.keys:
        if record.key_id in ids or record.sha256 in hashes:
            raise ConfigurationError(
                f"keys file {source}: key {record.key_id} is listed twice", where=source
            )
        ids.add(record.key_id)
        hashes.add(record.sha256)
    return parsed


def read_keys_file(path: Path) -> KeysFile:
    """The keys file at ``path``; :class:`ConfigurationError` (``where``: the file) otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read keys file {path}: {exc.strerror}", where=str(path)
        ) from None
    return parse_keys_file(data, source=str(path))


def issue_key(
    path: Path,
    *,
    principal: str,
    roles: tuple[str, ...],
    tenant: str,
    expires_at: datetime | None,
    now: datetime,
    key_id: str | None = None,
) -> IssuedKey:
    """Add a new key to the keys file (created when missing) and return it with its token.

    ``key_id`` defaults to ``k-<ULID>``. Raises :class:`ConfigurationError` for a key id
    that is taken or not plain (``where``: ``key_id``), an invalid record or file, or a
    file that cannot be written.
    """
    key_id = key_id if key_id is not None else f"k-{new_ulid(now)}"
    if not NEW_KEY_ID.fullmatch(key_id):
        raise ConfigurationError(
            f"key id {key_id!r} is not 1 to 64 letters, digits, '.', '_', ':' or '-'",
            where="key_id",
        )
    token = new_token()
    try:
        record = KeyRecord(
            key_id=key_id,
            principal=principal,
            roles=roles,
            tenant=tenant,
            sha256=token_hash(token),
            expires_at=expires_at,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "key"
        raise ConfigurationError(f"new key: {name}: {first['msg']}", where=name) from None
    with _locked(path):
        current = _existing(path)
        if any(existing.key_id == key_id for existing in current.keys):
            raise ConfigurationError(f"key id {key_id} is already in {path}", where="key_id")
        _replace(path, KeysFile(format=KEYS_FORMAT, keys=(*current.keys, record)))
    return IssuedKey(record=record, token=token)


def revoke_key(path: Path, key_id: str, now: datetime) -> tuple[KeyRecord, bool]:
    """Mark ``key_id`` revoked at ``now``; the record, and whether this call revoked it.

    A key already revoked keeps its first ``revoked_at`` (the answer is ``False``).
    Raises :class:`NotFound` for an unknown key id and :class:`ConfigurationError` for a
    file that cannot be read, is invalid, or cannot be written.
    """
    with _locked(path):
        current = read_keys_file(path)
        found = next((r for r in current.keys if r.key_id == key_id), None)
        if found is None:
            raise NotFound("API key", key_id)
        if found.revoked_at is not None:
            return found, False
        revoked = found.model_copy(update={"revoked_at": now})
        keys = tuple(revoked if r.key_id == key_id else r for r in current.keys)
        _replace(path, KeysFile(format=current.format, keys=keys))
    return revoked, True


def _existing(path: Path) -> KeysFile:
    """The keys file, or an empty one when there is no file yet; private."""
    if not path.exists():
        return KeysFile(format=KEYS_FORMAT, keys=())
    return read_keys_file(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``.<name>.lock`` next to ``path``; private."""
    lock = path.with_name(f".{path.name}.lock")
    try:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, KEY_FILE_MODE)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot lock keys file {path} ({lock}): {exc.strerror}", where=str(path)
        ) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def _replace(path: Path, keys: KeysFile) -> None:
    """Write ``keys`` to a 0600 temporary file, fsync it, rename it over ``path``; private."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), KEY_FILE_MODE)  # exactly 0600, whatever the umask
            handle.write(keys.text().encode())
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a crash
        finally:
            os.close(folder)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigurationError(
            f"cannot write keys file {path}: {exc.strerror}", where=str(path)
        ) from None
