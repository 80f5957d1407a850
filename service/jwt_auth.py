"""Who is calling, by JWT: bearer tokens verified against configured public keys.

Verified mode only. A token is believed once its signature checks out with a configured
public key (``service.jwt_keys``: a JWKS file or one PEM public key) under an allowlisted
asymmetric algorithm, and its claims pass. Loading is the only I/O
(``JwtVerifier.from_files``); ``JwtVerifier.verify(token, now)`` reads no file and no
clock (STYLE G4).

``verify`` runs these checks in this order. Each refusal is an :class:`Unauthenticated`
whose message names the check and whose ``where`` names the place: ``token``, ``header``,
a header field (``header.alg``), ``signature``, ``payload`` or a claim name (``exp``).

1. token: ASCII, at most ``MAX_TOKEN_CHARS``, three dot-separated segments, each unpadded,
   canonical base64url; the header and payload segments are not empty.
2. header: a JSON object without duplicate members and without ``crit`` or ``b64`` (no
   extension is supported). ``jku``, ``jwk``, ``x5u`` and ``x5c`` are never used to find a key.
3. header.alg: on the allowlist. The allowlist holds only asymmetric algorithms, so
   ``none`` and every ``HS*`` are refused before any key is touched (no HS/RS confusion).
4. header.kid: with a JWKS the kid selects the key, and a token without kid is accepted
   only when exactly one key is usable. With a PEM key the one key is used; a kid in the
   token is not compared, since a PEM file names no kid.
5. the key fits the algorithm: its type and curve, and its JWK ``alg`` when it has one.
6. signature: PyJWT's JWS verifier, given the key object and that one algorithm.
7. payload, parsed only now: a JSON object without duplicate members.
8. claims: ``exp`` (required), ``nbf``, ``iat``, the lifetime, ``iss``, ``aud``, ``sub``,
   the roles claim, the tenant claim (see :class:`JwtRules`).

The principal is ``Principal(id=sub, roles=<roles claim>, tenant=<tenant claim>,
auth_method="jwt", key_id=<the key's id>)``; the key id is the JWK ``kid``, or the key's
RFC 9278 thumbprint URI for a PEM key (``service.jwt_keys``).

The token text never reaches a message or an exception. Messages quote claim values
(shortened) and key ids, never a segment, and no library exception is chained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from service.errors import ConfigurationError, StartupRefused, Unauthenticated
from service.identity import PLATFORM_TENANT, Principal
from service.jwt_keys import (
    SUPPORTED_ALGORITHMS,
    Algorithm,
    JwtKey,
    MalformedJson,
    b64url_decode,
    load_jwks,
    load_pem,
    strict_json,
)

MAX_TOKEN_CHARS = 16_384
DEFAULT_LEEWAY_S = 60
MAX_LEEWAY_S = 300
DEFAULT_MAX_LIFETIME_S = 86_400
_LATEST_NUMERIC_DATE = 253_402_300_799  # 9999-12-31T23:59:59Z: keeps date arithmetic exact


class JwtRules(BaseModel):
    """What a verified token must satisfy; the constructor refuses settings that cannot work.

    ``exp`` is required: a token is expired once ``now >= exp + leeway``. ``nbf`` and
    ``iat``, when present, may lie at most ``leeway_s`` after now. A token lives at most
    ``max_lifetime_s``: ``exp - iat`` may not exceed it, nor ``exp - now`` exceed it plus
    the leeway. ``iss`` must equal ``issuer``; ``aud`` must equal ``audience`` or, as a
    list, contain it (RFC 7519 §4.1.3). ``sub`` is the principal id. The roles claim,
    when present, is a list of non-empty strings (absent: no roles, so policy says no);
    the tenant claim is required, and the platform tenant ``*`` only when allowed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    algorithms: tuple[Algorithm, ...] = Field(default=SUPPORTED_ALGORITHMS, min_length=1)
    leeway_s: int = Field(default=DEFAULT_LEEWAY_S, ge=0, le=MAX_LEEWAY_S)
    max_lifetime_s: int = Field(default=DEFAULT_MAX_LIFETIME_S, gt=0)
    roles_claim: str = Field(default="roles", min_length=1)
    tenant_claim: str = Field(default="tenant", min_length=1)
    # The platform tenant sees every tenant's calls: an issuer may grant it only if allowed here.
    platform_tenant_allowed: bool = False

    @field_validator("algorithms")
    @classmethod
    def _distinct(cls, value: tuple[Algorithm, ...]) -> tuple[Algorithm, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists an algorithm twice")
        return value


class JwtVerifier:
    """Bearer JWTs to principals, against fixed keys and rules; no key means nobody gets in."""

    def __init__(
        self, keys: Sequence[JwtKey], rules: JwtRules, *, kid_selects: bool = True
    ) -> None:
        """Keys and rules; ``kid_selects=False`` (one PEM key) uses the one key for any kid.

        Raises :class:`ValueError` for two keys with one kid, or several keys without
        kid selection.
        """
        kids = [key.kid for key in keys if key.kid is not None]
        if len(set(kids)) != len(kids):
            raise ValueError("two keys share a kid")
        if not kid_selects and len(keys) != 1:
            raise ValueError("without kid selection there must be exactly one key")
        self._keys = tuple(keys)
        self._by_kid = {key.kid: key for key in keys if key.kid is not None}
        self._kid_selects = kid_selects
        self._rules = rules
        self._usable = tuple(key for key in keys if key.algorithms & set(rules.algorithms))
        # Only the allowlisted algorithms are registered: `none` and HS* are not even known.
        self._jws = jwt.PyJWS(
            algorithms=list(rules.algorithms),
            options={"verify_signature": True, "enforce_minimum_key_length": True},
        )

    @property
    def rules(self) -> JwtRules:
        return self._rules

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of the keys that can verify at least one allowed algorithm."""
        return tuple(key.key_id for key in self._usable)

    @classmethod
    def from_jwks(cls, data: bytes, rules: JwtRules, *, source: str) -> JwtVerifier:
        """A verifier over the signing keys of a JWKS document; pure.

        Raises :class:`StartupRefused` naming ``source`` for what
        :func:`service.jwt_keys.load_jwks` refuses, or when no key can verify any
        allowed algorithm.
        """
        verifier = cls(load_jwks(data, source=source), rules, kid_selects=True)
        if not verifier._usable:
            raise StartupRefused(
                f"JWKS file {source} holds no public signing key usable with the allowed "
                f"algorithms ({', '.join(rules.algorithms)})",
                where=source,
            )
        return verifier

    @classmethod
    def from_pem(cls, data: bytes, rules: JwtRules, *, source: str) -> JwtVerifier:
        """A verifier over one PEM public key; pure.

        Raises :class:`StartupRefused` naming ``source`` for what
        :func:`service.jwt_keys.load_pem` refuses, or a key no allowed algorithm can use.
        """
        key = load_pem(data, source=source)
        if not key.algorithms & set(rules.algorithms):
            raise StartupRefused(
                f"PEM file {source} holds an {key.kind} key, which none of the allowed "
                f"algorithms ({', '.join(rules.algorithms)}) can use",
                where=source,
            )
        return cls([key], rules, kid_selects=False)

    @classmethod
    def from_files(  # noqa: PLR0913 - one keyword per setting, as the settings layer holds them
        cls,
        *,
        jwks_path: Path | None = None,
        pem_path: Path | None = None,
        issuer: str,
        audience: str,
        algorithms: Sequence[str] = SUPPORTED_ALGORITHMS,
        leeway_s: int = DEFAULT_LEEWAY_S,
        max_lifetime_s: int = DEFAULT_MAX_LIFETIME_S,
        roles_claim: str = "roles",
        tenant_claim: str = "tenant",
        platform_tenant_allowed: bool = False,
    ) -> JwtVerifier:
        """Read exactly one of a JWKS file and a PEM public key file; the only I/O here.

        Raises :class:`ConfigurationError` (``where`` = the parameter) for settings that
        cannot work, and :class:`StartupRefused` (``where`` = the file) for a file that
        cannot be read or is refused by :meth:`from_jwks` or :meth:`from_pem`.
        """
        if (jwks_path is None) == (pem_path is None):
            raise ConfigurationError(
                "configure exactly one of a JWKS file and a PEM public key file for JWTs",
                where="jwks_path",
            )
        allowlist = (algorithms,) if isinstance(algorithms, str) else tuple(algorithms)
        for alg in allowlist:
            if alg not in SUPPORTED_ALGORITHMS:
                raise ConfigurationError(
                    f"algorithm {_shown(alg)} is not supported for JWTs (supported: "
                    f"{', '.join(SUPPORTED_ALGORITHMS)}; none and HS* are never accepted)",
                    where="algorithms",
                )
        rules = _rules(
            {
                "issuer": issuer,
                "audience": audience,
                "algorithms": allowlist,
                "leeway_s": leeway_s,
                "max_lifetime_s": max_lifetime_s,
                "roles_claim": roles_claim,
                "tenant_claim": tenant_claim,
                "platform_tenant_allowed": platform_tenant_allowed,
            }
        )
        if jwks_path is not None:
            return cls.from_jwks(_read(jwks_path, "JWKS"), rules, source=str(jwks_path))
        assert pem_path is not None  # noqa: S101 - exactly one path was checked above
        return cls.from_pem(_read(pem_path, "PEM"), rules, source=str(pem_path))

    def verify(self, token: str, now: datetime) -> Principal:
        """The principal of a token that passes every check in the module docstring, in order.

        Raises :class:`Unauthenticated` naming the failed check and its place; neither
        holds the token. Raises :class:`ValueError` for a naive ``now``.
        """
        if now.utcoffset() is None:
            raise ValueError("now must be timezone-aware")
        header = _header(token)  # 1, 2
        alg = self._allowed_algorithm(header)  # 3
        key = self._key_for(header, alg)  # 4, 5
        payload = self._verified_payload(token, key, alg)  # 6
        claims = _token_json(payload, "payload")  # 7
        return self._principal(claims, key, now.timestamp())  # 8

    def _allowed_algorithm(self, header: Mapping[str, object]) -> str:
        for field in ("crit", "b64"):
            if field in header:
                raise Unauthenticated(
                    f"token header sets {field}: no JWS extension is supported",
                    where=f"header.{field}",
                )
        alg = header.get("alg")
        if not isinstance(alg, str):
            raise Unauthenticated("token header has no alg string", where="header.alg")
        if alg in self._rules.algorithms:
            return alg
        if alg.lower() == "none":
            why = ": unsigned tokens are never accepted"
        elif alg.upper().startswith("HS"):
            why = ": shared-secret (HMAC) algorithms are never accepted"
        else:
            why = ""
        allowed = ", ".join(self._rules.algorithms)
        raise Unauthenticated(
            f"algorithm {_name(alg)} is not allowed{why} (allowed: {allowed})", where="header.alg"
        )

    def _key_for(self, header: Mapping[str, object], alg: str) -> JwtKey:
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid):
            raise Unauthenticated("token kid is not a non-empty string", where="header.kid")
        if not self._kid_selects:
            key = self._keys[0]
        elif isinstance(kid, str):
            found = self._by_kid.get(kid)
            if found is None:
                known = ", ".join(sorted(self._by_kid)[:10]) or "none"
                raise Unauthenticated(
                    f"no key with kid {_name(kid)} in the JWKS (known: {known})",
                    where="header.kid",
                )
            key = found
        elif len(self._usable) == 1:
            key = self._usable[0]
        else:
            raise Unauthenticated(
                f"token has no kid and the JWKS holds {len(self._usable)} usable keys: "
                "a kid is required",
                where="header.kid",
            )
        if alg not in key.algorithms:
            fits = ", ".join(sorted(key.algorithms)) or "no supported algorithm"
            raise Unauthenticated(
                f"key {key.key_id} ({key.kind}) cannot verify {alg} tokens (it fits: {fits})",
                where="header.alg",
            )
        return key

    def _verified_payload(self, token: str, key: JwtKey, alg: str) -> bytes:
        # `from None`: a library exception must not carry token bytes into a traceback.
        try:
            decoded = self._jws.decode_complete(token, key=key.public_key, algorithms=[alg])
        except jwt.InvalidSignatureError:
            raise Unauthenticated(
                f"signature does not verify with key {key.key_id} ({alg})", where="signature"
            ) from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(
                f"token refused by the JWS verifier ({type(exc).__name__})", where="token"
            ) from None
        payload = decoded["payload"]
        if not isinstance(payload, bytes):
            raise Unauthenticated("token payload is not bytes after verification", where="payload")
        return payload

    def _principal(self, claims: Mapping[str, object], key: JwtKey, now: float) -> Principal:
        rules = self._rules
        _check_times(claims, now, rules)
        _check_equal(claims, "iss", rules.issuer, "issuer")
        _check_audience(claims, rules.audience)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            what = "has no sub claim" if sub is None else "has a sub claim that is not a string"
            raise Unauthenticated(f"token {what}: the principal id is required", where="sub")
        return Principal(
            id=sub,
            roles=_roles(claims, rules.roles_claim),
            tenant=_tenant(claims, rules),
            auth_method="jwt",
            key_id=key.key_id,
        )


def _header(token: str) -> dict[str, object]:
    """Checks 1 and 2: the compact form's shape, then the header's JSON; private."""
    if len(token) > MAX_TOKEN_CHARS:
        raise Unauthenticated(
            f"token is {len(token)} characters long, over the limit of {MAX_TOKEN_CHARS}",
            where="token",
        )
    if not token.isascii():
        raise Unauthenticated("token holds non-ASCII characters", where="token")
    segments = token.split(".")
    if len(segments) != 3:  # noqa: PLR2004 - header, payload, signature
        raise Unauthenticated(
            f"token has {len(segments)} dot-separated segments, not 3 (JWS compact form)",
            where="token",
        )
    decoded: list[bytes] = []
    for name, segment in zip(("header", "payload", "signature"), segments, strict=True):
        raw = b64url_decode(segment)
        if raw is None:
            raise Unauthenticated(
                f"token {name} segment is not unpadded, canonical base64url", where=name
            )
        if not raw and name != "signature":
            raise Unauthenticated(f"token {name} segment is empty", where=name)
        decoded.append(raw)
    return _token_json(decoded[0], "header")


def _token_json(data: bytes, where: str) -> dict[str, object]:
    try:
        value = strict_json(data)
    except MalformedJson as exc:
        raise Unauthenticated(f"token {where} is not JSON: {exc.detail}", where=where) from None
    if not isinstance(value, dict):
        raise Unauthenticated(f"token {where} is not a JSON object", where=where)
    return value


def _check_times(claims: Mapping[str, object], now: float, rules: JwtRules) -> None:
    leeway = rules.leeway_s
    clock = f"(now {_iso(now)}, leeway {leeway} s)"
    exp = _numeric_date(claims, "exp")
    if exp is None:
        raise Unauthenticated("token has no exp claim: an expiry is required", where="exp")
    if now >= exp + leeway:
        raise Unauthenticated(f"token expired at {_iso(exp)} {clock}", where="exp")
    nbf = _numeric_date(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise Unauthenticated(f"token is not valid before {_iso(nbf)} {clock}", where="nbf")
    iat = _numeric_date(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise Unauthenticated(f"token is issued in the future, at {_iso(iat)} {clock}", where="iat")
    longest = rules.max_lifetime_s
    if iat is not None and exp - iat > longest:
        raise Unauthenticated(
            f"token lifetime {exp - iat:g} s (iat to exp) exceeds the maximum {longest} s",
            where="exp",
        )
    if exp - now > longest + leeway:
        raise Unauthenticated(
            f"token expires at {_iso(exp)}, more than the maximum lifetime {longest} s "
            f"(plus leeway {leeway} s) after now ({_iso(now)})",
            where="exp",
        )


def _numeric_date(claims: Mapping[str, object], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthenticated(
            f"{name} claim is not a NumericDate (seconds since the epoch)", where=name
        )
    if not 0 <= value <= _LATEST_NUMERIC_DATE:
        raise Unauthenticated(
            f"{name} claim {_shown(value)} is outside 1970-01-01 to 9999-12-31", where=name
        )
    return float(value)


def _check_equal(claims: Mapping[str, object], name: str, expected: str, label: str) -> None:
    value = claims.get(name)
    if value is None:
        raise Unauthenticated(f"token has no {name} claim (expected {expected!r})", where=name)
    if value != expected:
        raise Unauthenticated(f"{label} {_shown(value)} is not {expected!r}", where=name)


def _check_audience(claims: Mapping[str, object], expected: str) -> None:
    aud = claims.get("aud")
    if isinstance(aud, list) and aud and all(isinstance(item, str) for item in aud):
        if expected not in aud:
            raise Unauthenticated(
                f"audience {_shown(aud)} does not include {expected!r}", where="aud"
            )
        return
    if aud is not None and not isinstance(aud, str):
        raise Unauthenticated("aud claim is not a string or a list of strings", where="aud")
    _check_equal(claims, "aud", expected, "audience")


def _roles(claims: Mapping[str, object], name: str) -> tuple[str, ...]:
    value = claims.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(r, str) and r for r in value):
        raise Unauthenticated(f"claim {name!r} is not a list of non-empty strings", where=name)
    return tuple(value)


def _tenant(claims: Mapping[str, object], rules: JwtRules) -> str:
    name = rules.tenant_claim
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        what = "has no" if value is None else "has a non-string or empty"
        raise Unauthenticated(f"token {what} {name!r} claim: the tenant is required", where=name)
    if value == PLATFORM_TENANT and not rules.platform_tenant_allowed:
        raise Unauthenticated(
            f"tenant {PLATFORM_TENANT!r} (platform-wide) is not accepted from a JWT here",
            where=name,
        )
    return value


def _read(path: Path, kind: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StartupRefused(
            f"cannot read {kind} file {path}: {exc.strerror}", where=str(path)
        ) from exc


def _rules(settings: Mapping[str, object]) -> JwtRules:
    """Settings to rules; a pydantic error becomes a ConfigurationError naming the field."""
    try:
        return JwtRules.model_validate(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "jwt"
        raise ConfigurationError(f"JWT setting {field}: {first['msg']}", where=field) from None


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    spec = "seconds" if moment.microsecond == 0 else "auto"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def _shown(value: object) -> str:
    """A token-chosen value for a message: its repr, cut at 80 characters; private."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004 - one message line


def _name(value: str) -> str:
    """An algorithm or kid as written when it is plain, else quoted and cut; private."""
    plain = 0 < len(value) <= 64 and all(c.isalnum() or c in "._:+-" for c in value)  # noqa: PLR2004
    return value if plain and value.isascii() else _shown(value)
