"""Public keys for JWT verification: a JWKS document (RFC 7517) or one PEM public key.

Loading is pure: it takes the file's bytes and a ``source`` name for messages, and
refuses at startup (:class:`StartupRefused`, ``where`` = ``source#/json/pointer``)
anything that is not an asymmetric public signing key this service can use: private key
material in any JWK (``d``, ``p``, ``q``, ``dp``, ``dq``, ``qi``, ``oth``, ``k``), a
symmetric ``oct`` key, a PEM private key, RSA under 2048 bits, EC curves other than
P-256 and P-384, OKP curves other than Ed25519 and Ed448, a JWK ``alg`` that does not
fit its key, a repeated kid. JWKs for encryption (``use`` other than ``sig``, or
``key_ops`` without ``verify``) are skipped, not refused: identity providers publish
them next to their signing keys.

A key's id (``JwtKey.key_id``, recorded as ``Principal.key_id``) is its JWK ``kid``; a
PEM key, or a JWK without kid, is named by the RFC 9278 URI of its RFC 7638 SHA-256
thumbprint (``urn:ietf:params:oauth:jwk-thumbprint:sha-256:<base64url>``), computed
from the key itself, so one key has one id whichever file form it comes in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from catalog.canonical import jcs
from service.errors import StartupRefused

Algorithm: TypeAlias = Literal["EdDSA", "ES256", "ES384", "PS256", "RS256"]
PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

SUPPORTED_ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
MIN_RSA_BITS = 2048
THUMBPRINT_URI_PREFIX = "urn:ietf:params:oauth:jwk-thumbprint:sha-256:"

_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_EC_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
}
_JWK_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_OKP_CURVES = {"Ed25519": 32, "Ed448": 57}
_BASE64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class JwtKey:
    """One configured public key.

    ``algorithms`` are those the key can verify: what its type and curve fit, narrowed
    by its JWK ``alg`` when it has one (empty when that ``alg`` is not one of
    ``SUPPORTED_ALGORITHMS``). ``kid`` is the JWK's, ``None`` for a PEM key.
    """

    key_id: str
    kid: str | None
    public_key: PublicKey
    algorithms: frozenset[str]
    kind: str


class MalformedJson(ValueError):
    """Bytes that are not strict JSON; ``detail`` says why and never quotes the input."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def load_jwks(data: bytes, *, source: str) -> tuple[JwtKey, ...]:
    """The public signing keys of a JWKS document, in file order; refusals as above."""
    try:
        document = strict_json(data)
    except MalformedJson as exc:
        raise StartupRefused(
            f"JWKS file {source} is not valid JSON: {exc.detail}", where=source
        ) from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise StartupRefused(
            f"JWKS file {source} is invalid at /keys: not a JWK Set (no keys array)",
            where=f"{source}#/keys",
        )
    keys: list[JwtKey] = []
    for index, jwk in enumerate(entries):
        pointer = f"/keys/{index}"
        try:
            key = _jwk_key(jwk)
        except _KeyProblem as exc:
            at = f"{pointer}/{exc.member}" if exc.member else pointer
            raise StartupRefused(
                f"JWKS file {source} is invalid at {at}: {exc.detail}", where=f"{source}#{at}"
            ) from None
        if key is None:
            continue
        if key.kid is not None and any(k.kid == key.kid for k in keys):
            raise StartupRefused(
                f"JWKS file {source} is invalid at {pointer}/kid: kid {_shown(key.kid)} repeats",
                where=f"{source}#{pointer}/kid",
            )
        keys.append(key)
    return tuple(keys)


def load_pem(data: bytes, *, source: str) -> JwtKey:
    """The one public key of a PEM file (SubjectPublicKeyInfo, or PKCS#1 for RSA)."""
    if b"PRIVATE KEY-----" in data:
        raise StartupRefused(
            f"PEM file {source} holds a private key: configure the issuer's public key",
            where=source,
        )
    if data.count(b"-----BEGIN ") != 1:
        raise StartupRefused(
            f"PEM file {source} must hold exactly one PEM block (a public key)", where=source
        )
    try:
        loaded = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise StartupRefused(f"PEM file {source} is not a PEM public key", where=source) from None
    try:
        public = _as_supported(loaded)
        kind, fits = _profile(public)
    except _KeyProblem as exc:
        raise StartupRefused(f"PEM file {source}: {exc.detail}", where=source) from None
    return JwtKey(
        key_id=jwk_thumbprint_uri(public), kid=None, public_key=public, algorithms=fits, kind=kind
    )


def jwk_thumbprint_uri(key: PublicKey) -> str:
    """RFC 9278 URI of the RFC 7638 SHA-256 thumbprint of ``key``'s required JWK members.

    Raises :class:`ValueError` for an EC curve that has no JWK name.
    """
    members = _thumbprint_members(key)
    # RFC 7638 §3.3: members sorted, no whitespace; for these all-string members, that is JCS.
    digest = hashlib.sha256(jcs(members, "JWK thumbprint members")).digest()
    return THUMBPRINT_URI_PREFIX + b64url_encode(digest)


def strict_json(data: bytes) -> object:
    """Parse UTF-8 JSON refusing duplicate members, NaN and Infinity.

    Raises :class:`MalformedJson`; its detail names the position or the member, never
    the input text.
    """

    def no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
        obj: dict[str, object] = {}
        for name, value in pairs:
            if name in obj:
                raise MalformedJson(f"duplicate member {_shown(name)}")
            obj[name] = value
        return obj

    def no_constant(name: str) -> object:
        raise MalformedJson(f"{name} is not JSON")

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedJson("not UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except MalformedJson:
        raise
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # too many digits, too deep
        raise MalformedJson(type(exc).__name__) from None


def b64url_encode(raw: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes | None:
    """The bytes of unpadded, canonical base64url (zero trailing bits), else ``None``."""
    if len(text) % 4 == 1 or not _BASE64URL.issuperset(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if b64url_encode(raw) == text else None


class _KeyProblem(Exception):
    """A JWK or PEM key refused; ``member`` is the JWK member to point at, if any; private."""

    def __init__(self, detail: str, member: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.member = member


def _jwk_key(jwk: object) -> JwtKey | None:
    """One JWK as a public signing key, ``None`` for an encryption key; private."""
    if not isinstance(jwk, dict):
        raise _KeyProblem("a key is not a JSON object")
    if jwk.get("kty") == "oct":
        raise _KeyProblem("a symmetric key (kty oct): only asymmetric public keys", "kty")
    private = [member for member in _PRIVATE_JWK_MEMBERS if member in jwk]
    if private:
        raise _KeyProblem(
            f"holds private key material ({', '.join(private)}): give public keys only",
            private[0],
        )
    ops = jwk.get("key_ops")
    if jwk.get("use", "sig") != "sig" or (
        ops is not None and not (isinstance(ops, list) and "verify" in ops)
    ):
        return None
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise _KeyProblem("kid is not a non-empty string", "kid")
    public = _jwk_public_key(jwk)
    kind, fits = _profile(public)
    alg = jwk.get("alg")
    if alg is not None:
        if not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS"):
            raise _KeyProblem(f"alg {_shown(alg)} is not an asymmetric signature algorithm", "alg")
        if alg in SUPPORTED_ALGORITHMS and alg not in fits:
            raise _KeyProblem(f"alg {alg} does not fit its {kind} key", "alg")
        fits &= {alg}  # an alg verified nowhere here (say RS512) leaves the key unusable
    key_id = kid if isinstance(kid, str) else jwk_thumbprint_uri(public)
    return JwtKey(key_id=key_id, kid=kid, public_key=public, algorithms=fits, kind=kind)


def _jwk_public_key(jwk: Mapping[str, object]) -> PublicKey:
    kty = jwk.get("kty")
    if kty == "RSA":
        n = int.from_bytes(_jwk_bytes(jwk, "n"), "big")
        e = int.from_bytes(_jwk_bytes(jwk, "e"), "big")
        try:
            return rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError:
            raise _KeyProblem("n, e is not a valid RSA public key", "n") from None
    crv = jwk.get("crv")
    if kty == "EC":
        if not isinstance(crv, str) or crv not in _EC_CURVES:
            raise _KeyProblem(f"curve {_shown(crv)} is not supported (P-256, P-384)", "crv")
        curve, size = _EC_CURVES[crv]
        point = b"\x04" + _jwk_bytes(jwk, "x", size) + _jwk_bytes(jwk, "y", size)
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        except ValueError:
            raise _KeyProblem(f"x, y is not a point on {crv}", "x") from None
    if kty == "OKP":
        if not isinstance(crv, str) or crv not in _OKP_CURVES:
            raise _KeyProblem(f"curve {_shown(crv)} is not supported (Ed25519, Ed448)", "crv")
        x = _jwk_bytes(jwk, "x", _OKP_CURVES[crv])
        if crv == "Ed25519":
            return ed25519.Ed25519PublicKey.from_public_bytes(x)
        return ed448.Ed448PublicKey.from_public_bytes(x)
    raise _KeyProblem(f"key type {_shown(kty)} is not supported (RSA, EC, OKP)", "kty")


def _jwk_bytes(jwk: Mapping[str, object], member: str, size: int | None = None) -> bytes:
    value = jwk.get(member)
    raw = b64url_decode(value) if isinstance(value, str) else None
    if not raw:
        raise _KeyProblem(f"{member} is not a non-empty base64url string", member)
    if size is not None and len(raw) != size:
        raise _KeyProblem(f"{member} is {len(raw)} bytes, not {size}", member)
    return raw


def _as_supported(key: object) -> PublicKey:
    if isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return key
    raise _KeyProblem(f"a {type(key).__name__} is not a supported signature key")


def _profile(key: PublicKey) -> tuple[str, frozenset[str]]:
    """The key's description and the algorithms its type fits; refuses weak or odd keys."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise _KeyProblem(f"an RSA key of {key.key_size} bits is under {MIN_RSA_BITS}", "n")
        return f"RSA-{key.key_size}", frozenset({"RS256", "PS256"})
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "EC P-256", frozenset({"ES256"})
        if isinstance(key.curve, ec.SECP384R1):
            return "EC P-384", frozenset({"ES384"})
        raise _KeyProblem(f"curve {key.curve.name} is not supported (P-256, P-384)", "crv")
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", frozenset({"EdDSA"})
    return "Ed448", frozenset({"EdDSA"})


def _thumbprint_members(key: PublicKey) -> dict[str, str]:
    """RFC 7638 §3.2: the required members only, from the key itself (not from its JWK)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        return {
            "e": b64url_encode(_uint(numbers.e)),
            "kty": "RSA",
            "n": b64url_encode(_uint(numbers.n)),
        }
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = _JWK_CURVE_NAMES.get(key.curve.name)
        if crv is None:
            raise ValueError(f"curve {key.curve.name} has no JWK name")
        size = (key.curve.key_size + 7) // 8
        point = key.public_numbers()
        return {
            "crv": crv,
            "kty": "EC",
            "x": b64url_encode(point.x.to_bytes(size, "big")),
            "y": b64url_encode(point.y.to_bytes(size, "big")),
        }
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    crv = "Ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "Ed448"
    return {"crv": crv, "kty": "OKP", "x": b64url_encode(raw)}


def _uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _shown(value: object) -> str:
    """A file- or token-chosen value for a message: its repr, cut at 80 characters; private."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004 - one message line
