"""The one canonical JSON encoder for catalog documents (RFC 8785, JCS).

Every hashed catalog document goes through :func:`jcs`; nothing hashes the
output of ``json.dumps``.
"""

from __future__ import annotations

from typing import Any

import rfc8785

from catalog.errors import CanonicalizationError


def jcs(obj: Any, where: str = "") -> bytes:  # noqa: ANN401 - any JSON value
    """Return the RFC 8785 bytes of ``obj``.

    Raises :class:`CanonicalizationError` naming ``where`` (a JSON pointer or
    a description of the document) when ``obj`` holds a value JCS cannot
    encode: a non-finite float, an integer outside the IEEE 754 safe range,
    or a non-JSON type.
    """
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(
            f"cannot canonicalize {where or 'document'}: {exc}", where=where
        ) from exc
