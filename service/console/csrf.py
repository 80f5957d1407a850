"""CSRF tokens of the console's POST forms: an HMAC of what the form is bound to.

A signed-in form is bound to its session (``session:<sid>``), the sign-in form to a
random nonce in a cookie of its own (``pre:<nonce>``, a double submit). A page of
another site can neither read the token nor compute it without the console's key, and
the cookies are ``SameSite=Strict`` besides; so every POST must carry the token, or
:class:`CsrfRefused` turns it away before anything is done.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING

from service.console.errors import CsrfRefused

if TYPE_CHECKING:
    from service.console.session_key import SessionKeys

FIELD = "csrf"


def csrf_token(keys: SessionKeys, binding: str) -> str:
    """The token for forms bound to ``binding``; base64url without padding."""
    mac = hmac.new(keys.csrf, binding.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def check_csrf(keys: SessionKeys, binding: str, given: str | None) -> None:
    """Raise :class:`CsrfRefused` unless ``given`` is the token of ``binding``."""
    if not given:
        raise CsrfRefused(
            "the form carries no CSRF token: reload the page and submit it again", where=FIELD
        )
    if not hmac.compare_digest(given.encode(), csrf_token(keys, binding).encode()):
        raise CsrfRefused(
            "the form's CSRF token is not this session's: reload the page and submit it again",
            where=FIELD,
        )
