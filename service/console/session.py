"""Console sessions: a signed, expiring cookie that names a principal, never a credential.

Sign-in authenticates a bearer credential exactly as the API does; the console then keeps
the outcome, not the credential, in a cookie:

    v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(cookie key, "v1." + claims part))>

The claims (:class:`SessionClaims`) hold a random session id (the CSRF binding), how the
principal signed in, its id and key id, and the times. For an API key they also hold a
fingerprint (an HMAC of the key's token hash), so that a key id given later to another
key does not inherit its sessions; for a JWT, the roles and tenant it verified with, and
an expiry no later than the token's ``exp``. The cookie is ``HttpOnly``,
``SameSite=Strict``, limited to ``/console``, and ``Secure`` over HTTPS.

Each request checks the signature, then the expiry, then the principal again
(:func:`session_principal`): the API key must still be in the keys file, active, and the
same key; a JWT's signing key must still be configured. So revoking or rotating a key
ends its sessions at the next request. A cookie whose signature does not verify is a
forgery: :func:`read_claims` raises ``Unauthenticated`` (ledgered and throttled by
:mod:`service.console.refusals`); an expired or ended one raises :class:`SignInRequired`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from service.console.errors import SignInRequired
from service.errors import Unauthenticated
from service.identity import Principal, api_key_principal
from service.jwt_auth import JwtVerifier
from service.jwt_follow import FollowedJwtVerifier
from service.jwt_keys import b64url_decode

if TYPE_CHECKING:
    from datetime import datetime

    from service.api_keys import KeyRecord
    from service.console.key_records import KeyRecords
    from service.console.session_key import SessionKeys
    from service.runtime import Runtime

COOKIE = "govex_console"
COOKIE_PATH = "/console"
_VERSION = "v1"
_WHERE = "session"


class SessionClaims(BaseModel):
    """What a session cookie says; read only after its signature verified."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: Literal[1]
    sid: str
    method: Literal["api_key", "jwt"]
    principal: str
    key_id: str
    fingerprint: str | None = None  # API keys: binds the session to that key's token hash
    roles: tuple[str, ...] = ()  # JWTs: as verified at sign-in
    tenant: str | None = None  # JWTs: as verified at sign-in
    iat: int
    exp: int


@dataclass(frozen=True)
class IssuedSession:
    """A new session's cookie value and its claims."""

    cookie: str
    claims: SessionClaims


def key_fingerprint(keys: SessionKeys, token_sha256: str) -> str:
    """Which API key a session belongs to: an HMAC of its token hash (not the hash itself)."""
    return hmac.new(keys.fingerprint, token_sha256.encode(), hashlib.sha256).hexdigest()[:32]


def issue_session(
    keys: SessionKeys,
    principal: Principal,
    *,
    now: datetime,
    ttl_s: int,
    key_record: KeyRecord | None = None,
    token_exp: int | None = None,
) -> IssuedSession:
    """A session for ``principal`` that ends ``ttl_s`` from ``now`` (or at ``token_exp``).

    An API key principal needs its ``key_record`` (for the fingerprint); a JWT principal
    its token's ``exp``.
    """
    issued = int(now.timestamp())
    expires = issued + ttl_s if token_exp is None else min(issued + ttl_s, token_exp)
    jwt = principal.auth_method == "jwt"
    claims = SessionClaims(
        v=1,
        sid=secrets.token_urlsafe(16),
        method=principal.auth_method,
        principal=principal.id,
        key_id=principal.key_id,
        fingerprint=None if key_record is None else key_fingerprint(keys, key_record.sha256),
        roles=principal.roles if jwt else (),
        tenant=principal.tenant if jwt else None,
        iat=issued,
        exp=expires,
    )
    return IssuedSession(cookie=encode_claims(keys, claims), claims=claims)


def encode_claims(keys: SessionKeys, claims: SessionClaims) -> str:
    """The cookie value of ``claims``: the JSON part and its HMAC (module docstring)."""
    data = json.dumps(claims.model_dump(mode="json"), separators=(",", ":"), sort_keys=True)
    signed = f"{_VERSION}.{_b64(data.encode())}"
    return f"{signed}.{_b64(_mac(keys, signed))}"


def read_claims(keys: SessionKeys, cookie: str, now: datetime) -> SessionClaims:
    """The claims of a cookie whose signature verifies and that has not expired.

    Raises ``Unauthenticated`` (``where``: ``session``) for a cookie that is malformed or
    whose signature does not verify, and :class:`SignInRequired` for an expired one.
    """
    version, _, rest = cookie.partition(".")
    body, _, signature = rest.partition(".")
    mac = b64url_decode(signature)
    if version != _VERSION or not body or mac is None:
        raise Unauthenticated("the console session cookie is malformed", where=_WHERE)
    if not hmac.compare_digest(mac, _mac(keys, f"{version}.{body}")):
        raise Unauthenticated(
            "the console session cookie's signature does not verify", where=_WHERE
        )
    try:
        claims = SessionClaims.model_validate_json(_unb64(body))
    except (ValidationError, ValueError):
        raise Unauthenticated(
            "the console session cookie's claims are malformed", where=_WHERE
        ) from None
    if claims.exp <= int(now.timestamp()):
        raise SignInRequired("your console session expired", where="expired")
    return claims


def session_principal(
    runtime: Runtime, keys: SessionKeys, records: KeyRecords, claims: SessionClaims
) -> Principal:
    """The principal of a verified session, checked again against the keys in force now.

    Raises :class:`SignInRequired` (``where``: ``ended``) when the key was removed,
    replaced, revoked or has expired, or the JWT key is no longer configured; and
    ``ConfigurationError`` while the keys file cannot be loaded.
    """
    if claims.method == "api_key":
        record = records.get(claims.key_id)
        if (
            record is None
            or record.principal != claims.principal
            or claims.fingerprint is None
            or not hmac.compare_digest(key_fingerprint(keys, record.sha256), claims.fingerprint)
        ):
            raise SignInRequired(
                f"API key {claims.key_id} of this session was removed or replaced", where="ended"
            )
        status = record.status(runtime.clock())
        if status != "active":
            raise SignInRequired(f"API key {record.key_id} is {status}", where="ended")
        return api_key_principal(record)
    verifier = runtime.auth.jwt
    key_ids = verifier.key_ids if isinstance(verifier, FollowedJwtVerifier | JwtVerifier) else ()
    if claims.key_id not in key_ids or claims.tenant is None:
        raise SignInRequired(
            f"the JWT key {claims.key_id} of this session is no longer configured", where="ended"
        )
    return Principal(
        id=claims.principal,
        roles=claims.roles,
        tenant=claims.tenant,
        auth_method="jwt",
        key_id=claims.key_id,
    )


def token_expiry(token: str) -> int | None:
    """The ``exp`` claim of a JWT that has already been verified; None if it cannot be read."""
    parts = token.split(".")
    payload = b64url_decode(parts[1]) if len(parts) == 3 else None  # noqa: PLR2004 - JWS parts
    if payload is None:
        return None
    try:
        exp = json.loads(payload).get("exp")
    except (ValueError, AttributeError):
        return None
    return int(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _mac(keys: SessionKeys, signed: str) -> bytes:
    return hmac.new(keys.cookie, signed.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
