"""JWT public keys: JWKS and PEM loading, thumbprints, strict JSON and base64url.

Public JWKs come from PyJWT's encoder, an implementation independent of the loader.
"""

from __future__ import annotations

import base64
import json
from functools import cache

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x25519
from hypothesis import given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from service.errors import StartupRefused
from service.jwt_keys import (
    THUMBPRINT_URI_PREFIX,
    MalformedJson,
    PublicKey,
    b64url_decode,
    b64url_encode,
    jwk_thumbprint_uri,
    load_jwks,
    load_pem,
    strict_json,
)

# RFC 7638 §3.1 (and RFC 9278 §3): the example RSA key and its SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@cache
def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


@cache
def _rsa_1024() -> rsa.RSAPrivateKey:
    """A key the loader must refuse as too weak."""
    return rsa.generate_private_key(65537, 1024)  # noqa: S505 - the weak key under test


@cache
def _ed() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@cache
def _p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _jwk(public: PublicKey, **members: object) -> dict[str, object]:
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, **members}


def _jwks(*keys: object) -> bytes:
    return json.dumps({"keys": list(keys)}).encode()


def _pem(public: object) -> bytes:
    assert isinstance(public, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | x25519.X25519PublicKey)
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- ids ------------------------------------------------------------------------------------


def test_a_jwk_without_kid_is_named_by_the_rfc7638_thumbprint_vector() -> None:
    (key,) = load_jwks(_jwks({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}), source="rfc.jwks")
    assert key.key_id == THUMBPRINT_URI_PREFIX + RFC7638_THUMBPRINT
    assert key.kid is None


def test_a_jwk_with_kid_is_named_by_its_kid() -> None:
    jwk = {"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "kid": "2011-04-29"}
    (key,) = load_jwks(_jwks(jwk), source="rfc.jwks")
    assert (key.key_id, key.kid) == ("2011-04-29", "2011-04-29")


@pytest.mark.parametrize(
    "private",
    [
        pytest.param(_rsa, id="rsa"),
        pytest.param(_p256, id="p256"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP384R1()), id="p384"),
        pytest.param(_ed, id="ed25519"),
        pytest.param(ed448.Ed448PrivateKey.generate, id="ed448"),
    ],
)
def test_one_key_has_one_id_as_pem_and_as_jwk(private: object) -> None:
    assert callable(private)
    public = private().public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (from_jwk,) = load_jwks(_jwks(_jwk(public)), source="k.jwks")
    from_pem = load_pem(pem, source="k.pem")
    assert from_pem.key_id == from_jwk.key_id == jwk_thumbprint_uri(public)
    assert from_pem.algorithms == from_jwk.algorithms
    assert from_pem.kind == from_jwk.kind


@pytest.mark.parametrize(
    ("private", "kind", "algorithms"),
    [
        pytest.param(_rsa, "RSA-2048", {"RS256", "PS256"}, id="rsa"),
        pytest.param(_p256, "EC P-256", {"ES256"}, id="p256"),
        pytest.param(_ed, "Ed25519", {"EdDSA"}, id="ed25519"),
    ],
)
def test_a_key_fits_the_algorithms_of_its_type(
    private: object, kind: str, algorithms: set[str]
) -> None:
    assert callable(private)
    (key,) = load_jwks(_jwks(_jwk(private().public_key())), source="k.jwks")
    assert (key.kind, set(key.algorithms)) == (kind, algorithms)


@pytest.mark.parametrize(
    ("alg", "algorithms"),
    [
        pytest.param("PS256", {"PS256"}, id="narrowed-to-ps256"),
        pytest.param("RS512", set(), id="an-alg-verified-nowhere-here"),
    ],
)
def test_a_jwk_alg_narrows_its_key(alg: str, algorithms: set[str]) -> None:
    (key,) = load_jwks(_jwks(_jwk(_rsa().public_key(), alg=alg)), source="k.jwks")
    assert set(key.algorithms) == algorithms


@pytest.mark.parametrize(
    "members",
    [
        pytest.param({"use": "enc"}, id="use-enc"),
        pytest.param({"key_ops": ["encrypt", "wrapKey"]}, id="key-ops-without-verify"),
        pytest.param({"key_ops": "verify"}, id="key-ops-not-a-list"),
    ],
)
def test_encryption_keys_are_skipped(members: dict[str, object]) -> None:
    data = _jwks(_jwk(_rsa().public_key(), kid="enc", **members), _jwk(_ed().public_key()))
    assert [key.kind for key in load_jwks(data, source="k.jwks")] == ["Ed25519"]


def test_signing_keys_by_use_or_key_ops_are_kept() -> None:
    data = _jwks(
        _jwk(_ed().public_key(), kid="a", use="sig"),
        _jwk(_ed().public_key(), kid="b", key_ops=["verify"]),
    )
    assert [key.kid for key in load_jwks(data, source="k.jwks")] == ["a", "b"]


# --- JWKS refusals ---------------------------------------------------------------------------


def _private_jwk(private: object) -> dict[str, object]:
    if isinstance(private, rsa.RSAPrivateKey):
        return RSAAlgorithm.to_jwk(private, as_dict=True)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return ECAlgorithm.to_jwk(private, as_dict=True)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    return OKPAlgorithm.to_jwk(private, as_dict=True)


def _off_curve_p256() -> dict[str, object]:
    return {"kty": "EC", "crv": "P-256", "x": _b64(b"\x01" * 32), "y": _b64(b"\x02" * 32)}


JWKS_REFUSALS = [
    pytest.param(
        lambda: _jwks(_private_jwk(_rsa())),
        "/keys/0/d",
        "is invalid at /keys/0/d: holds private key material (d, p, q, dp, dq, qi): "
        "give public keys only",
        id="rsa-private-jwk",
    ),
    pytest.param(
        lambda: _jwks(_jwk(_ed().public_key()), _private_jwk(_p256())),
        "/keys/1/d",
        "holds private key material (d)",
        id="ec-private-jwk-second",
    ),
    pytest.param(
        lambda: _jwks(_private_jwk(_ed())),
        "/keys/0/d",
        "holds private key material (d)",
        id="okp-private-jwk",
    ),
    pytest.param(
        lambda: _jwks(_private_jwk(_rsa()) | {"use": "enc"}),
        "/keys/0/d",
        "holds private key material",
        id="private-jwk-even-for-encryption",
    ),
    pytest.param(
        lambda: _jwks({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "s"}),
        "/keys/0/kty",
        "a symmetric key (kty oct): only asymmetric public keys",
        id="oct-jwk",
    ),
    pytest.param(lambda: b"{", "", "is not valid JSON: Expecting", id="bad-json"),
    pytest.param(
        lambda: b'{"keys": [], "keys": []}',
        "",
        "is not valid JSON: duplicate member 'keys'",
        id="duplicate-member",
    ),
    pytest.param(lambda: b"[]", "/keys", "not a JWK Set (no keys array)", id="not-an-object"),
    pytest.param(lambda: b'{"keys": {}}', "/keys", "no keys array", id="keys-not-a-list"),
    pytest.param(lambda: _jwks("k"), "/keys/0", "a key is not a JSON object", id="key-a-string"),
    pytest.param(
        lambda: _jwks({"kty": "DSA"}),
        "/keys/0/kty",
        "key type 'DSA' is not supported (RSA, EC, OKP)",
        id="unsupported-kty",
    ),
    pytest.param(
        lambda: _jwks(_jwk(ec.generate_private_key(ec.SECP521R1()).public_key())),
        "/keys/0/crv",
        "curve 'P-521' is not supported (P-256, P-384)",
        id="p521",
    ),
    pytest.param(
        lambda: _jwks({"kty": "OKP", "crv": "X25519", "x": _b64(b"\x09" * 32)}),
        "/keys/0/crv",
        "curve 'X25519' is not supported (Ed25519, Ed448)",
        id="x25519",
    ),
    pytest.param(
        lambda: _jwks(_off_curve_p256()),
        "/keys/0/x",
        "x, y is not a point on P-256",
        id="ec-point-off-the-curve",
    ),
    pytest.param(
        lambda: _jwks(_off_curve_p256() | {"x": _b64(b"\x01" * 31)}),
        "/keys/0/x",
        "x is 31 bytes, not 32",
        id="ec-x-short",
    ),
    pytest.param(
        lambda: _jwks(_jwk(_rsa_1024().public_key())),
        "/keys/0/n",
        "an RSA key of 1024 bits is under 2048",
        id="rsa-1024",
    ),
    pytest.param(
        lambda: _jwks({"kty": "RSA", "n": RFC7638_N + "=", "e": "AQAB"}),
        "/keys/0/n",
        "n is not a non-empty base64url string",
        id="rsa-n-padded",
    ),
    pytest.param(
        lambda: _jwks(_jwk(_rsa().public_key(), alg="ES256")),
        "/keys/0/alg",
        "alg ES256 does not fit its RSA-2048 key",
        id="jwk-alg-not-fitting",
    ),
    pytest.param(
        lambda: _jwks(_jwk(_rsa().public_key(), alg="HS256")),
        "/keys/0/alg",
        "alg 'HS256' is not an asymmetric signature algorithm",
        id="jwk-alg-hs256",
    ),
    pytest.param(
        lambda: _jwks(_jwk(_ed().public_key(), kid="")),
        "/keys/0/kid",
        "kid is not a non-empty string",
        id="empty-kid",
    ),
    pytest.param(
        lambda: _jwks(_jwk(_ed().public_key(), kid="a"), _jwk(_p256().public_key(), kid="a")),
        "/keys/1/kid",
        "kid 'a' repeats",
        id="repeated-kid",
    ),
]


@pytest.mark.parametrize(("build", "pointer", "message"), JWKS_REFUSALS)
def test_a_jwks_is_refused_naming_the_file_and_the_place(
    build: object, pointer: str, message: str
) -> None:
    assert callable(build)
    with pytest.raises(StartupRefused) as caught:
        load_jwks(build(), source="idp.jwks")
    assert caught.value.where == "idp.jwks" + (f"#{pointer}" if pointer else "")
    assert caught.value.message.startswith("JWKS file idp.jwks ")
    assert message in caught.value.message


# --- PEM -------------------------------------------------------------------------------------


def _private_pem(fmt: serialization.PrivateFormat) -> bytes:
    return _rsa().private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())


PEM_REFUSALS = [
    pytest.param(
        lambda: _private_pem(serialization.PrivateFormat.PKCS8),
        "holds a private key: configure the issuer's public key",
        id="pkcs8-private-key",
    ),
    pytest.param(
        lambda: _private_pem(serialization.PrivateFormat.TraditionalOpenSSL),
        "holds a private key",
        id="rsa-private-key",
    ),
    pytest.param(
        lambda: _pem(_rsa().public_key()) + _private_pem(serialization.PrivateFormat.PKCS8),
        "holds a private key",
        id="public-then-private",
    ),
    pytest.param(
        lambda: _pem(_rsa().public_key()) + _pem(_p256().public_key()),
        "must hold exactly one PEM block",
        id="two-public-keys",
    ),
    pytest.param(lambda: b"not a key", "must hold exactly one PEM block", id="no-pem-block"),
    pytest.param(
        lambda: b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "is not a PEM public key",
        id="garbage-in-a-pem-block",
    ),
    pytest.param(
        lambda: _pem(x25519.X25519PrivateKey.generate().public_key()),
        "a X25519PublicKey is not a supported signature key",
        id="x25519",
    ),
    pytest.param(
        lambda: _pem(ec.generate_private_key(ec.SECP521R1()).public_key()),
        "curve secp521r1 is not supported (P-256, P-384)",
        id="p521",
    ),
    pytest.param(
        lambda: _pem(_rsa_1024().public_key()),
        "an RSA key of 1024 bits is under 2048",
        id="rsa-1024",
    ),
]


@pytest.mark.parametrize(("build", "message"), PEM_REFUSALS)
def test_a_pem_file_is_refused_naming_the_file(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(StartupRefused) as caught:
        load_pem(build(), source="idp.pem")
    assert caught.value.where == "idp.pem"
    assert caught.value.message.startswith("PEM file idp.pem")
    assert message in caught.value.message


def test_a_pkcs1_rsa_public_key_is_accepted() -> None:
    pem = (
        _rsa()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    )
    assert load_pem(pem, source="k.pem").key_id == jwk_thumbprint_uri(_rsa().public_key())


# --- strict JSON and base64url ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        pytest.param(b'{"a": 1, "a": 2}', "duplicate member 'a'", id="duplicate-member"),
        pytest.param(b'{"a": NaN}', "NaN is not JSON", id="nan"),
        pytest.param(b"[Infinity]", "Infinity is not JSON", id="infinity"),
        pytest.param(b'"\xff"', "not UTF-8", id="not-utf8"),
        pytest.param(b"[" * 100_000, "RecursionError", id="too-deep"),
        pytest.param(b"1" * 5000, "ValueError", id="too-many-digits"),
        pytest.param(b"{", "Expecting property name", id="truncated"),
    ],
)
def test_strict_json_refuses_what_json_loads_would_let_through(data: bytes, detail: str) -> None:
    with pytest.raises(MalformedJson) as caught:
        strict_json(data)
    assert detail in caught.value.detail


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("AB", id="nonzero-trailing-bits"),
        pytest.param("AA==", id="padded"),
        pytest.param("A", id="one-char-remainder"),
        pytest.param("a+b/", id="standard-alphabet"),
        pytest.param("AA AA", id="whitespace"),
        pytest.param("ÀÀ", id="non-ascii"),
    ],
)
def test_b64url_decode_refuses_non_canonical_text(text: str) -> None:
    assert b64url_decode(text) is None


@given(st.binary(max_size=200))
def test_b64url_round_trips_any_bytes(raw: bytes) -> None:
    assert b64url_decode(b64url_encode(raw)) == raw


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/."))
def test_b64url_decode_accepts_only_the_one_encoding_of_its_bytes(text: str) -> None:
    raw = b64url_decode(text)
    assert raw is None or b64url_encode(raw) == text
