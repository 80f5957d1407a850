"""Masking of sensitive columns: a keyed digest replaces each value, row by row, while streaming.

A value ``v`` of a column an entry lists in ``sensitive_columns`` is written to the packet as
``"hmac-sha256:" + hex(HMAC-SHA256(key, JCS(cell)))``, where ``cell`` is the JSON value the
packet would have held (``bytes`` as their standard base64 text; an integer as its decimal
digits, which is its JCS form and stays exact past 2**53). The same value gives the same
mask under one key, so joins and grouping on a masked column still work; without the key a mask
cannot be reversed or checked against a guess. ``null`` stays ``null`` (it carries no value).

The key is 32 or more random bytes, kept as hex text in the file ``GOVEX_MASKING_KEY_FILE``
(``govex keys masking`` writes one). It never reaches a log, the ledger, a packet or a contract:
those name it by its ``key_id``, the first 16 hex digits of SHA-256 of the key bytes.

Pure: :func:`load_masking_key` is the one function that reads a file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from catalog.canonical import jcs
from catalog.errors import CatalogError
from service.errors import StartupRefused
from service.packets.errors import UnsupportedValueError

if TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Sequence
    from pathlib import Path

    from service.packets.tables import RowValue

MASK_ALGORITHM = "hmac-sha256"
MASK_PREFIX = f"{MASK_ALGORITHM}:"
MIN_KEY_BYTES = 32
KEY_ID_HEX = 16
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


@dataclass(frozen=True)
class MaskingKey:
    """The secret masking key; ``repr`` and ``str`` show only its id."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ValueError(f"a masking key holds at least {MIN_KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> MaskingKey:
        return cls(secrets.token_bytes(MIN_KEY_BYTES))

    @classmethod
    def from_text(cls, text: str) -> MaskingKey:
        """The key written as hex (surrounding whitespace ignored); ``ValueError`` otherwise."""
        stripped = text.strip()
        if not _HEX.fullmatch(stripped):
            raise ValueError("a masking key file holds the key as hex digits")
        return cls(bytes.fromhex(stripped))

    def text(self) -> str:
        """The file form: hex, one line."""
        return self.secret.hex()

    @property
    def key_id(self) -> str:
        """What contracts and packets record: the first 16 hex digits of SHA-256 of the key."""
        return hashlib.sha256(self.secret).hexdigest()[:KEY_ID_HEX]

    def __str__(self) -> str:
        return f"masking key {self.key_id}"

    def mask(self, value: RowValue) -> str | None:
        """The mask of one value: ``hmac-sha256:<hex>``; ``None`` stays ``None``.

        Raises ``ValueError`` for a value the packet could not hold (a non-finite float,
        a type other than int, float, str, bool, bytes).
        """
        if value is None:
            return None
        cell: object = value
        if type(value) is bytes:
            cell = base64.b64encode(value).decode("ascii")
        elif type(value) is float and not math.isfinite(value):
            raise ValueError("non-finite number")
        elif type(value) not in (int, float, str, bool):
            raise ValueError(f"{type(value).__name__} is not int, float, str, bool, None or bytes")
        if type(cell) is int:  # decimal text, which is JCS within its range and exact beyond it
            data = str(cell).encode("ascii")
        else:
            try:
                data = jcs(cell, "masked value")
            except CatalogError as exc:
                raise ValueError(str(exc)) from exc
        return MASK_PREFIX + hmac.new(self.secret, data, hashlib.sha256).hexdigest()


def load_masking_key(path: Path) -> MaskingKey:
    """The key in ``path``; :class:`StartupRefused` naming the file when it cannot be used."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StartupRefused(
            f"masking key file {path} cannot be read: {reason}", where="masking_key_file"
        ) from None
    try:
        return MaskingKey.from_text(text)
    except ValueError as exc:  # the message never holds the file's contents
        raise StartupRefused(
            f"masking key file {path} is not usable: {exc} (see 'govex keys masking')",
            where="masking_key_file",
        ) from None


class SensitiveColumnMissing(ValueError):
    """The result has no column of a name the entry lists as sensitive."""


def mask_positions(columns: Sequence[str], sensitive: Sequence[str]) -> tuple[int, ...]:
    """Positions of the ``sensitive`` columns in the result's ``columns``, matched by name.

    Raises :class:`SensitiveColumnMissing` naming every listed column the result lacks:
    a column that cannot be found is never silently left unmasked.
    """
    missing = [name for name in sensitive if name not in columns]
    if missing:
        raise SensitiveColumnMissing(
            f"sensitive column(s) {', '.join(missing)} not in the result's columns "
            f"({', '.join(columns)}): nothing was written unmasked"
        )
    return tuple(i for i, name in enumerate(columns) if name in set(sensitive))


def mask_rows(
    rows: Iterable[Sequence[RowValue]],
    positions: tuple[int, ...],
    key: MaskingKey,
    *,
    columns: Sequence[str],
    path: str,
) -> Generator[list[RowValue], None, None]:
    """Yield each row with the values at ``positions`` masked; one row at a time, lazily.

    Closing the generator closes ``rows`` when it can be closed (the writer closes what it
    is given when it stops early, so an engine cursor is released). A value that cannot be
    masked raises :class:`UnsupportedValueError` naming row and column.
    """
    iterator = iter(rows)
    try:
        for index, values in enumerate(iterator):
            masked = list(values)
            for position in positions:
                if position >= len(masked):
                    continue  # a short row: the writer refuses it, naming the row
                try:
                    masked[position] = key.mask(masked[position])
                except ValueError as exc:
                    raise UnsupportedValueError(
                        path=path, row=index, column=columns[position], detail=str(exc)
                    ) from None
            yield masked
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()
