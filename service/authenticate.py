"""Authentication in one place: an ``Authorization`` header (and its client) -> Principal.

The HTTP dependency (``service.deps``) and ``govex call`` both go through
:meth:`Authenticator.authenticate`, which runs these steps in order:

1. throttle: a client that failed too often lately is refused with
   :class:`TooManyAuthFailures` before its credential is looked at
   (:mod:`service.auth_throttle`; no client, as for the local CLI, is not throttled);
2. header: present, scheme ``Bearer`` (any case), a token that is not empty;
3. route: a token of three dot-separated base64url parts is a JWS compact token and
   goes to the JWT verifier when one is configured (otherwise it is refused: JWTs are
   not enabled); any other token is an API key (API tokens that govex issues never
   contain a dot);
4. verify: :meth:`JwtVerifier.verify` or :meth:`ApiKeyring.verify` at the runtime's
   ``now``; an expired or revoked key is refused.

Every :class:`Unauthenticated` of steps 2 to 4 counts as one failure of the client. No
credential, no principal: nothing is let through on a missing or broken header. The
token never reaches a message, an exception, a log, the ledger or a packet; the
principal records the key id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Protocol

import structlog

from service.auth_throttle import AuthFailureThrottle
from service.errors import ConfigurationError, Unauthenticated
from service.identity import ApiKeyring, Principal
from service.jwt_auth import JwtVerifier
from service.jwt_follow import FollowedJwtVerifier
from service.jwt_keys import SUPPORTED_ALGORITHMS
from service.settings import Settings

_log = structlog.get_logger("govex.auth")
# A JWS compact token: header.payload.signature, each base64url (an empty signature is
# still a JWT, for the verifier to refuse as unsigned).
_JWS_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class TokenVerifier(Protocol):
    """Bearer JWTs to principals (:class:`JwtVerifier`, or one following its key file)."""

    def verify(self, token: str, now: datetime) -> Principal: ...


@dataclass(frozen=True)
class Authenticator:
    """API keys, an optional JWT verifier and the failure throttle of one runtime."""

    keyring: ApiKeyring
    jwt: TokenVerifier | None = None  # None: API keys only
    throttle: AuthFailureThrottle = field(default_factory=AuthFailureThrottle)

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        """Load the keys file and, when configured, the JWT keys; the start-up I/O.

        Raises :class:`ConfigurationError` (``where``: the setting) for JWT settings that
        do not go together, and :class:`StartupRefused` (``where``: the file) for a keys,
        JWKS or PEM file that cannot be read or is refused.
        """
        return cls(
            keyring=ApiKeyring.from_file(settings.keys_file),
            jwt=jwt_verifier(settings),
            throttle=AuthFailureThrottle(
                limit=settings.auth_failure_limit, window_s=settings.auth_failure_window_s
            ),
        )

    def authenticate(
        self, authorization: str | None, now: datetime, *, client: str | None = None
    ) -> Principal:
        """The principal of an ``Authorization`` header value, by the steps above.

        ``client`` names the caller for throttling (the peer address over HTTP).
        Raises :class:`TooManyAuthFailures`, :class:`Unauthenticated` (naming what was
        wrong, never the token), or :class:`ConfigurationError` while the keys file
        cannot be loaded (not counted against the client).
        """
        if client is not None:
            self.throttle.check(client, now)
        try:
            return self._verify(bearer_token(authorization), now)
        except Unauthenticated as exc:
            if client is not None:
                self.throttle.record_failure(client, now)
            _log.info("auth.failed", client=client, where=exc.where)
            raise

    def may_block(self, authorization: str | None) -> bool:
        """Whether authenticating ``authorization`` may wait on I/O beyond a file's stat.

        A JWT goes to a verifier that may fetch or reload keys; an API key is a hash looked
        up in memory (the keys file is stat-ed, and re-read only when it changed).
        """
        if self.jwt is None or authorization is None:
            return False
        return is_jws_compact(authorization.partition(" ")[2].strip())

    def _verify(self, token: str, now: datetime) -> Principal:
        """Steps 3 and 4: a JWT to the verifier (when enabled), anything else to the keyring."""
        if not is_jws_compact(token):
            return self.keyring.verify(token, now)
        if self.jwt is None:
            raise Unauthenticated(
                "JWT bearer tokens are not enabled on this service: use an API key", where="jwt"
            )
        return self.jwt.verify(token, now)


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` value (RFC 6750), stripped.

    Raises :class:`Unauthenticated` (``where``: ``authorization``) for a missing or
    empty header, another scheme, or an empty token; the message never repeats the
    value, which may be a credential sent without a scheme.
    """
    if authorization is None or not authorization.strip():
        raise Unauthenticated(
            "no credential: send 'Authorization: Bearer <token>' (an API key, or a JWT "
            "where enabled)",
            where="authorization",
        )
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated(
            "unsupported authorization scheme: use 'Bearer <token>'", where="authorization"
        )
    token = token.strip()
    if not token:
        raise Unauthenticated("empty bearer token after 'Bearer'", where="authorization")
    return token


def is_jws_compact(token: str) -> bool:
    """Whether ``token`` has the shape of a JWS compact token (three base64url parts)."""
    return _JWS_COMPACT.fullmatch(token) is not None


def jwt_verifier(settings: Settings) -> TokenVerifier | None:
    """The JWT verifier the settings ask for, following its key file; None without JWTs.

    At most one of ``GOVEX_JWT_JWKS_FILE`` and ``GOVEX_JWT_PUBLIC_KEY_FILE``; with one,
    ``GOVEX_JWT_ISSUER`` and ``GOVEX_JWT_AUDIENCE`` are required; issuer, audience or
    algorithms without a key file are refused too (a half-configured JWT setup is a
    mistake, not "API keys only"). Raises :class:`ConfigurationError` naming the
    variable, or :class:`StartupRefused` naming the key file.
    """
    jwks, pem = settings.jwt_jwks_file, settings.jwt_public_key_file
    if jwks is not None and pem is not None:
        raise ConfigurationError(
            "set at most one of GOVEX_JWT_JWKS_FILE and GOVEX_JWT_PUBLIC_KEY_FILE",
            where="jwt_public_key_file",
        )
    given = {
        "jwt_issuer": settings.jwt_issuer,
        "jwt_audience": settings.jwt_audience,
        "jwt_algorithms": settings.jwt_algorithms,
    }
    if jwks is None and pem is None:
        stray = [name for name, value in given.items() if value]
        if stray:
            raise ConfigurationError(
                f"GOVEX_{stray[0].upper()} is set but no JWT key is: set GOVEX_JWT_JWKS_FILE "
                "or GOVEX_JWT_PUBLIC_KEY_FILE, or unset it for API keys only",
                where=stray[0],
            )
        return None
    missing = [name for name in ("jwt_issuer", "jwt_audience") if not given[name]]
    if missing:
        names = " and ".join(f"GOVEX_{name.upper()}" for name in missing)
        key_setting = "GOVEX_JWT_JWKS_FILE" if jwks is not None else "GOVEX_JWT_PUBLIC_KEY_FILE"
        raise ConfigurationError(
            f"{key_setting} is set but {names} {'is' if len(missing) == 1 else 'are'} not: "
            "every token's iss and aud are checked against them",
            where=missing[0],
        )
    load = partial(
        JwtVerifier.from_files,
        jwks_path=jwks,
        pem_path=pem,
        issuer=settings.jwt_issuer or "",
        audience=settings.jwt_audience or "",
        algorithms=settings.jwt_algorithms or SUPPORTED_ALGORITHMS,
        leeway_s=settings.jwt_leeway_s,
    )
    key_file = jwks if jwks is not None else pem
    assert key_file is not None  # noqa: S101 - one of them is set (checked above)
    try:
        return FollowedJwtVerifier(key_file, load)
    except ConfigurationError as exc:
        setting = f"jwt_{exc.where}" if exc.where else "jwt"
        raise ConfigurationError(f"GOVEX_{setting.upper()}: {exc.message}", where=setting) from None
