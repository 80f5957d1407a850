"""JWT keys that follow their file: key rotation without a restart, failing closed.

An operator rotates the keys by rewriting (or replacing) the JWKS or PEM file; the
first token verified after the change is checked against the file's new keys. A file
that is gone, unreadable or refused holds no key: every JWT is refused, naming the
file, until an operator fixes it (API keys are not affected). The same rule as the
API keys file (:class:`service.identity.ApiKeyring`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from service.errors import ConfigurationError, StartupRefused
from service.file_stamp import file_stamp

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from service.identity import Principal
    from service.jwt_auth import JwtVerifier

_log = structlog.get_logger("govex.auth")


class FollowedJwtVerifier:
    """A :class:`JwtVerifier` rebuilt by ``load`` whenever ``path`` changes."""

    def __init__(self, path: Path, load: Callable[[], JwtVerifier]) -> None:
        """Load now; raises what ``load`` raises (the service refuses to start)."""
        self._path = path
        self._load = load
        self._stamp = file_stamp(path)
        self._verifier: JwtVerifier | None = load()
        self._lock = threading.Lock()

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of the keys in use now (empty while the file is refused)."""
        verifier = self._current()
        return () if verifier is None else verifier.key_ids

    def verify(self, token: str, now: datetime) -> Principal:
        """As :meth:`JwtVerifier.verify`, with the file's current keys.

        Raises :class:`ConfigurationError` (``where``: the file) while the file is refused.
        """
        verifier = self._current()
        if verifier is None:
            raise ConfigurationError(
                f"the JWT key file {self._path} cannot be loaded: JWTs are refused until an "
                "operator fixes it",
                where=str(self._path),
            )
        return verifier.verify(token, now)

    def _current(self) -> JwtVerifier | None:
        stamp = file_stamp(self._path)
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._verifier = self._load()
                except (StartupRefused, ConfigurationError) as exc:
                    self._verifier = None
                    _log.error("jwt_keys.invalid", detail=exc.message, where=exc.where)
                else:
                    _log.info("jwt_keys.reloaded", path=str(self._path), keys=self.key_count)
            return self._verifier

    @property
    def key_count(self) -> int:
        return 0 if self._verifier is None else len(self._verifier.key_ids)
