"""The one canonical JSON encoder of the ledger (RFC 8785, JCS).

Every hashed ledger document goes through :func:`jcs`; nothing hashes the
output of ``json.dumps``. (``catalog`` has its own twin: the two packages do
not import each other.)
"""

from __future__ import annotations

from typing import Any

import rfc8785

from ledger.errors import CanonicalizationError


def jcs(obj: Any, where: str = "") -> bytes:  # noqa: ANN401 - any JSON value
    """Return the RFC 8785 bytes of ``obj``.

    Raises :class:`CanonicalizationError` naming ``where`` when ``obj`` holds a
    value JCS cannot encode: a non-finite float, an integer outside the IEEE
    754 safe range, a lone surrogate, a non-string key or a non-JSON type.
    """
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(
            f"cannot canonicalize {where or 'document'}: {exc}", where=where
        ) from exc
