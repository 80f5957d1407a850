"""The console's session secret: from its own key file, else derived from the ledger key.

Session cookies and CSRF tokens are HMACs, so every worker process must hold the same
secret: it comes from a file all of them read, never from memory of one process.

1. ``console_session_key_file`` (``GOVEX_CONSOLE_SESSION_KEY_FILE``): at least
   :data:`MIN_SECRET_BYTES` bytes (surrounding whitespace removed), e.g. 64 hex digits;
2. else ``ledger_key_file``: the ledger signing key (every worker reads it to sign
   checkpoints);
3. else none: console sign-in is off (:class:`ConsoleUnavailable`, a 503 page naming
   the setting).

The file's bytes are never used as a key directly: HKDF-SHA256 derives one key per use
(cookies, CSRF tokens, API key fingerprints), labelled, so a key of one use is no key
of another, and a session key says nothing about the ledger key it came from. Read once,
when the app is built (:mod:`service.console.mount`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from service.console.errors import ConsoleUnavailable

if TYPE_CHECKING:
    from pathlib import Path

    from service.settings import Settings

MIN_SECRET_BYTES = 32
_KEY_BYTES = 32
_INFO_PREFIX = b"govex console/v1 "


@dataclass(frozen=True)
class SessionKeys:
    """The derived keys (never printed) and which setting they came from."""

    cookie: bytes = field(repr=False)
    csrf: bytes = field(repr=False)
    fingerprint: bytes = field(repr=False)
    source: str


def session_keys(settings: Settings) -> SessionKeys:
    """The console's keys for ``settings``, by the order of the module docstring.

    Raises :class:`ConsoleUnavailable` naming the setting when neither file is set, or the
    file cannot be read or is too short; the message never shows its content.
    """
    if settings.console_session_key_file is not None:
        secret = _read(settings.console_session_key_file, "console_session_key_file")
        if len(secret) < MIN_SECRET_BYTES:
            raise ConsoleUnavailable(
                f"GOVEX_CONSOLE_SESSION_KEY_FILE {settings.console_session_key_file} holds "
                f"{len(secret)} bytes; at least {MIN_SECRET_BYTES} are needed (e.g. 64 hex digits)",
                where="console_session_key_file",
            )
        return derive_keys(secret, source="console_session_key_file")
    if settings.ledger_key_file is not None:
        return derive_keys(
            _read(settings.ledger_key_file, "ledger_key_file"), source="ledger_key_file"
        )
    raise ConsoleUnavailable(
        "console sign-in is off: set GOVEX_CONSOLE_SESSION_KEY_FILE (or GOVEX_LEDGER_KEY_FILE, "
        "which it is then derived from) so that session cookies can be signed",
        where="console_session_key_file",
    )


def derive_keys(secret: bytes, *, source: str) -> SessionKeys:
    """One HKDF-SHA256 key per use of ``secret``; pure."""
    return SessionKeys(
        cookie=_derive(secret, b"session cookie"),
        csrf=_derive(secret, b"csrf token"),
        fingerprint=_derive(secret, b"api key fingerprint"),
        source=source,
    )


def _derive(secret: bytes, label: bytes) -> bytes:
    kdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=_INFO_PREFIX + label)
    return kdf.derive(secret)


def _read(path: Path, setting: str) -> bytes:
    """Private: the file's bytes without surrounding whitespace; ConsoleUnavailable otherwise."""
    try:
        return path.read_bytes().strip()
    except OSError as exc:
        raise ConsoleUnavailable(
            f"GOVEX_{setting.upper()} {path} cannot be read: {exc.strerror or type(exc).__name__}",
            where=setting,
        ) from None
