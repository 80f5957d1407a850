"""Who is calling: bearer API keys, stored as SHA-256 hashes, resolved to a Principal.

The keys file (``govex.keys/v1``) never holds a token, only its hash. The token
itself never reaches a log, the ledger or a packet: only the key id does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.errors import StartupRefused, Unauthenticated

PLATFORM_TENANT = "*"


class Principal(BaseModel):
    """An authenticated caller, as recorded in contracts (never with its credential)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    id: str
    roles: tuple[str, ...]
    tenant: str
    auth_method: Literal["api_key", "jwt"]
    key_id: str


class _KeyRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(min_length=1)
    principal: str = Field(min_length=1)
    roles: tuple[str, ...]
    tenant: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    expires_at: datetime | None = None


class _KeysFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["govex.keys/v1"]
    keys: tuple[_KeyRecord, ...]


def token_hash(token: str) -> str:
    """Hex SHA-256 of the token's UTF-8 bytes: what the keys file stores."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeyring:
    """API keys by token hash; empty means nobody gets in."""

    def __init__(self, records: Mapping[str, _KeyRecord]) -> None:
        self._by_hash = dict(records)

    @classmethod
    def from_file(cls, path: Path) -> ApiKeyring:
        """Load a ``govex.keys/v1`` file; refuse it whole when any record is invalid."""
        try:
            parsed = _KeysFile.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise StartupRefused(
                f"cannot read keys file {path}: {exc.strerror}", where=str(path)
            ) from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            pointer = "/" + "/".join(str(p) for p in first["loc"])
            raise StartupRefused(
                f"keys file {path} is invalid at {pointer}: {first['msg']}",
                where=f"{path}#{pointer}",
            ) from exc
        by_hash: dict[str, _KeyRecord] = {}
        for record in parsed.keys:
            if record.sha256 in by_hash:
                raise StartupRefused(
                    f"keys file {path}: key {record.key_id} is listed twice", where=str(path)
                )
            by_hash[record.sha256] = record
        return cls(by_hash)

    def authenticate(self, authorization: str | None, now: datetime) -> Principal:
        """Resolve an ``Authorization: Bearer <token>`` value to its principal.

        Raises :class:`Unauthenticated` for a missing header, another scheme, an
        unknown token or an expired key; the message never repeats the token.
        """
        if not authorization:
            raise Unauthenticated("no credential: send 'Authorization: Bearer <api key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("unsupported authorization scheme: use 'Bearer <api key>'")
        record = self._by_hash.get(token_hash(token.strip()))
        if record is None:
            raise Unauthenticated("unknown API key")
        if record.expires_at is not None and record.expires_at <= now:
            raise Unauthenticated(f"API key {record.key_id} expired", where=record.key_id)
        return Principal(
            id=record.principal,
            roles=record.roles,
            tenant=record.tenant,
            auth_method="api_key",
            key_id=record.key_id,
        )
