"""Identifiers of FORMATS section 1: catalog entry ids and opaque call/packet ids."""

from __future__ import annotations

import re

ENTRY_ID_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
_ENTRY_ID = re.compile(ENTRY_ID_PATTERN)
# ULIDs and other opaque ids: URL-safe, never a path component trick.
OPAQUE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
_OPAQUE_ID = re.compile(OPAQUE_ID_PATTERN)


def is_entry_id(value: str) -> bool:
    return _ENTRY_ID.fullmatch(value) is not None


def is_opaque_id(value: str) -> bool:
    r"""True for a call or packet id: URL-safe, no ``/``, ``\``, ``..`` or NUL."""
    return _OPAQUE_ID.fullmatch(value) is not None
