"""Who is calling, by API key: a bearer token's SHA-256 looked up in the keys file.

The keys file (``govex.keys/v1``, :mod:`service.api_keys`) never holds a token, only
its hash. The token itself never reaches a log, the ledger or a packet: only the key
id does. :mod:`service.authenticate` takes the token out of the ``Authorization``
header and decides whether it goes here or to the JWT verifier.

A keyring loaded from a file follows it: each lookup compares the file's identity
(device, inode, size, modification time) with the one loaded and reloads on a change,
so ``govex keys revoke`` and ``govex keys create`` take effect without a restart. A
file that no longer loads refuses every API key (fail closed) until it is fixed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Literal

import structlog
from pydantic import BaseModel, ConfigDict

from service.api_keys import KeyRecord, read_keys_file, token_hash
from service.errors import ConfigurationError, StartupRefused, Unauthenticated
from service.file_stamp import FileStamp, file_stamp

PLATFORM_TENANT = "*"

_log = structlog.get_logger("govex.identity")


class Principal(BaseModel):
    """An authenticated caller, as recorded in contracts (never with its credential)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    id: str
    roles: tuple[str, ...]
    tenant: str
    auth_method: Literal["api_key", "jwt"]
    key_id: str


def api_key_principal(record: KeyRecord) -> Principal:
    """The principal an active API key ``record`` signs in as."""
    return Principal(
        id=record.principal,
        roles=record.roles,
        tenant=record.tenant,
        auth_method="api_key",
        key_id=record.key_id,
    )


class ApiKeyring:
    """API keys by token hash; empty means nobody gets in."""

    def __init__(self, records: Mapping[str, KeyRecord], *, path: Path | None = None) -> None:
        """Keys by token hash; with ``path``, the file they came from, followed on change."""
        self._by_hash = dict(records)
        self._path = path
        self._stamp = None if path is None else file_stamp(path)
        self._broken = False
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path) -> ApiKeyring:
        """Load a ``govex.keys/v1`` file; refuse it whole when any record is invalid.

        Raises :class:`StartupRefused` naming the file (and the JSON pointer).
        """
        stamp = file_stamp(path)
        try:
            parsed = read_keys_file(path)
        except ConfigurationError as exc:
            raise StartupRefused(exc.message, where=exc.where) from None
        keyring = cls({record.sha256: record for record in parsed.keys}, path=path)
        keyring._stamp = stamp  # the file as read, even if it changed since
        return keyring

    def verify(self, token: str, now: datetime) -> Principal:
        """The principal of an API token.

        Raises :class:`Unauthenticated` for an unknown token, a revoked key or an expired
        one (the message names the key id, never the token), and
        :class:`ConfigurationError` while the keys file cannot be loaded.
        """
        record = self._records().get(token_hash(token))
        if record is None:
            raise Unauthenticated("unknown API key", where="api_key")
        status = record.status(now)
        if status != "active":
            raise Unauthenticated(f"API key {record.key_id} is {status}", where=record.key_id)
        return api_key_principal(record)

    def _records(self) -> Mapping[str, KeyRecord]:
        if self._path is None:
            return self._by_hash
        stamp = file_stamp(self._path)
        with self._lock:
            if stamp != self._stamp:
                self._reload(self._path, stamp)
            if self._broken:
                raise ConfigurationError(
                    "the API keys file cannot be loaded: API keys are refused until an "
                    "operator fixes it",
                    where="keys_file",
                )
            return self._by_hash

    def _reload(self, path: Path, stamp: FileStamp | None) -> None:
        """Replace the keys with the file's; on failure hold none (fail closed); private."""
        self._stamp = stamp
        try:
            parsed = read_keys_file(path)
        except ConfigurationError as exc:
            self._by_hash = {}
            self._broken = True
            _log.error("keys_file.invalid", detail=exc.message, where=exc.where)
            return
        self._by_hash = {record.sha256: record for record in parsed.keys}
        self._broken = False
        _log.info("keys_file.reloaded", path=str(path), keys=len(self._by_hash))
