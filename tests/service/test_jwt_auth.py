"""JWT bearer tokens: real keys, a pinned clock, every refusal by name and place.

Tokens are built here with `cryptography` directly (not with PyJWT, which the verifier
uses), and public JWKs come from PyJWT's encoder (not from the loader under test).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import assume, given
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from service.errors import ConfigurationError, StartupRefused, Unauthenticated
from service.identity import Principal
from service.jwt_auth import JwtRules, JwtVerifier
from service.jwt_keys import THUMBPRINT_URI_PREFIX, jwk_thumbprint_uri

NOW = datetime(2026, 11, 23, 3, 5, tzinfo=UTC)
T = int(NOW.timestamp())
ISS = "https://idp.example.test"
AUD = "govex"
RULES = JwtRules(issuer=ISS, audience=AUD)
DROP = object()  # a claim or header field left out

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


@dataclass(frozen=True)
class Signer:
    """An issuer key: signs JWS compact tokens with `cryptography`, publishes its JWK."""

    alg: str
    kid: str
    private: PrivateKey = field(repr=False)

    def public_jwk(self, **members: object) -> dict[str, object]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        out: dict[str, object] = {**jwk, "kid": self.kid, **members}
        return {k: v for k, v in out.items() if v is not DROP}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, message: bytes) -> bytes:
        key = self.private
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(message)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            digest = hashes.SHA256() if key.curve.key_size == 256 else hashes.SHA384()
            r, s = decode_dss_signature(key.sign(message, ec.ECDSA(digest)))
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if self.alg == "PS256":
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return key.sign(message, pss, hashes.SHA256())
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    def token(
        self,
        claims: dict[str, object] | None = None,
        *,
        payload: bytes | None = None,
        **header: object,
    ) -> str:
        head = {"alg": self.alg, "typ": "JWT", "kid": self.kid, **header}
        head = {k: v for k, v in head.items() if v is not DROP}
        body = payload if payload is not None else _json(claims or _claims())
        signing_input = f"{_b64(_json(head))}.{_b64(body)}"
        return f"{signing_input}.{_b64(self.sign(signing_input.encode()))}"


@cache
def signer(name: str) -> Signer:
    """The test issuers, generated once per run."""
    made = {
        "ed": lambda: Signer("EdDSA", "ed-1", ed25519.Ed25519PrivateKey.generate()),
        "ed-2": lambda: Signer("EdDSA", "ed-2", ed25519.Ed25519PrivateKey.generate()),
        "es256": lambda: Signer("ES256", "ec-1", ec.generate_private_key(ec.SECP256R1())),
        "es384": lambda: Signer("ES384", "ec384-1", ec.generate_private_key(ec.SECP384R1())),
        "rs": lambda: Signer("RS256", "rsa-1", rsa.generate_private_key(65537, 2048)),
        "ps": lambda: Signer("PS256", "rsa-pss-1", rsa.generate_private_key(65537, 2048)),
        # Not configured anywhere: it claims ed-1's kid.
        "impostor": lambda: Signer("EdDSA", "ed-1", ed25519.Ed25519PrivateKey.generate()),
    }
    return made[name]()


CONFIGURED = ("ed", "ed-2", "es256", "es384", "rs", "ps")


def _claims(**overrides: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "alice",
        "roles": ["analyst"],
        "tenant": "acme",
        "iat": T - 10,
        "exp": T + 600,
        **overrides,
    }
    return {k: v for k, v in claims.items() if v is not DROP}


def _jwks(*jwks: dict[str, object]) -> bytes:
    return _json({"keys": list(jwks)})


@cache
def _verifier() -> JwtVerifier:
    """Every configured issuer key in one JWKS, default rules."""
    data = _jwks(*(signer(name).public_jwk() for name in CONFIGURED))
    return JwtVerifier.from_jwks(data, RULES, source="jwks.json")


def _refusal(verifier: JwtVerifier, token: str) -> Unauthenticated:
    """Verify, expect a refusal, and check it repeats no part of the token."""
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token, NOW)
    exc = caught.value
    shown = (str(exc), repr(exc), exc.message, exc.where)
    for part in (token, *(s for s in token.split(".") if len(s) >= 8)):
        assert all(part not in text for text in shown)
    # No library exception rides along in a traceback.
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    return exc


# --- tokens that verify --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ed", "es256", "es384", "rs", "ps"])
def test_a_valid_token_becomes_its_principal_under_the_key_its_kid_names(name: str) -> None:
    issuer = signer(name)
    principal = _verifier().verify(issuer.token(), NOW)
    assert principal == Principal(
        id="alice", roles=("analyst",), tenant="acme", auth_method="jwt", key_id=issuer.kid
    )


def test_the_kid_picks_between_two_keys_of_one_type() -> None:
    assert _verifier().verify(signer("ed").token(), NOW).key_id == "ed-1"
    assert _verifier().verify(signer("ed-2").token(), NOW).key_id == "ed-2"


def test_a_token_without_kid_is_accepted_when_the_jwks_holds_one_key() -> None:
    verifier = JwtVerifier.from_jwks(_jwks(signer("ed").public_jwk()), RULES, source="j")
    assert verifier.verify(signer("ed").token(kid=DROP), NOW).key_id == "ed-1"


def test_a_token_without_kid_is_accepted_when_one_key_is_usable_under_the_allowlist() -> None:
    data = _jwks(signer("ed").public_jwk(), signer("rs").public_jwk())
    rules = JwtRules(issuer=ISS, audience=AUD, algorithms=("EdDSA",))
    verifier = JwtVerifier.from_jwks(data, rules, source="j")
    assert verifier.key_ids == ("ed-1",)
    assert verifier.verify(signer("ed").token(kid=DROP), NOW).key_id == "ed-1"


def test_a_token_without_kid_is_refused_when_several_keys_are_usable() -> None:
    exc = _refusal(_verifier(), signer("ed").token(kid=DROP))
    assert exc.where == "header.kid"
    assert exc.message == "token has no kid and the JWKS holds 6 usable keys: a kid is required"


def test_a_jwk_without_kid_is_named_by_its_thumbprint() -> None:
    issuer = signer("es256")
    verifier = JwtVerifier.from_jwks(_jwks(issuer.public_jwk(kid=DROP)), RULES, source="j")
    principal = verifier.verify(issuer.token(kid=DROP), NOW)
    assert principal.key_id == jwk_thumbprint_uri(issuer.private.public_key())
    assert principal.key_id.startswith(THUMBPRINT_URI_PREFIX)


@pytest.mark.parametrize("name", ["ed", "es256", "rs"])
def test_a_pem_key_verifies_and_is_named_by_its_thumbprint(name: str) -> None:
    issuer = signer(name)
    from_pem = JwtVerifier.from_pem(issuer.public_pem(), RULES, source="issuer.pem")
    from_jwk = JwtVerifier.from_jwks(_jwks(issuer.public_jwk(kid=DROP)), RULES, source="j")
    principal = from_pem.verify(issuer.token(kid=DROP), NOW)
    assert principal.key_id.startswith(THUMBPRINT_URI_PREFIX)
    assert from_pem.key_ids == from_jwk.key_ids == (principal.key_id,)


def test_a_pem_key_does_not_compare_the_tokens_kid() -> None:
    issuer = signer("ed")
    verifier = JwtVerifier.from_pem(issuer.public_pem(), RULES, source="issuer.pem")
    assert verifier.verify(issuer.token(kid="any-name"), NOW).id == "alice"


def test_a_pem_key_still_refuses_a_token_signed_by_another_key() -> None:
    verifier = JwtVerifier.from_pem(signer("ed").public_pem(), RULES, source="issuer.pem")
    assert _refusal(verifier, signer("ed-2").token()).where == "signature"


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(_claims(exp=T - 59, iat=T - 600), id="expired-59s-ago"),
        pytest.param(_claims(nbf=T + 60), id="nbf-60s-ahead"),
        pytest.param(_claims(iat=T + 60), id="iat-60s-ahead"),
        pytest.param(_claims(iat=T, exp=T + 86_400), id="lifetime-exactly-24h"),
        pytest.param(_claims(iat=DROP, exp=T + 86_400 + 59), id="no-iat-24h-plus-59s"),
        pytest.param(_claims(aud=["other", AUD]), id="aud-list-holding-ours"),
        pytest.param(_claims(exp=T + 600.5, iat=T - 0.25), id="fractional-dates"),
    ],
)
def test_tokens_within_the_leeway_and_the_limits_are_accepted(claims: dict[str, object]) -> None:
    assert _verifier().verify(signer("ed").token(claims), NOW).id == "alice"


def test_the_leeway_is_configurable_down_to_zero() -> None:
    data = _jwks(signer("ed").public_jwk())
    strict = JwtVerifier.from_jwks(data, RULES.model_copy(update={"leeway_s": 0}), source="j")
    assert strict.verify(signer("ed").token(_claims(exp=T + 1)), NOW).id == "alice"
    exc = _refusal(strict, signer("ed").token(_claims(exp=T)))
    assert exc.message == (
        "token expired at 2026-11-23T03:05:00Z (now 2026-11-23T03:05:00Z, leeway 0 s)"
    )


def test_the_maximum_lifetime_is_configurable() -> None:
    rules = RULES.model_copy(update={"max_lifetime_s": 3600})
    verifier = JwtVerifier.from_jwks(_jwks(signer("ed").public_jwk()), rules, source="j")
    assert verifier.verify(signer("ed").token(_claims(iat=T, exp=T + 3600)), NOW).id == "alice"
    exc = _refusal(verifier, signer("ed").token(_claims(iat=T, exp=T + 3601)))
    assert (exc.where, exc.message) == (
        "exp",
        "token lifetime 3601 s (iat to exp) exceeds the maximum 3600 s",
    )


def test_roles_and_tenant_come_from_the_configured_claims() -> None:
    rules = RULES.model_copy(update={"roles_claim": "groups", "tenant_claim": "org"})
    verifier = JwtVerifier.from_jwks(_jwks(signer("ed").public_jwk()), rules, source="j")
    claims = _claims(groups=["auditor", "analyst"], org="globex", roles=DROP, tenant=DROP)
    principal = verifier.verify(signer("ed").token(claims), NOW)
    assert (principal.roles, principal.tenant) == (("auditor", "analyst"), "globex")


def test_a_token_without_the_roles_claim_has_no_roles() -> None:
    assert _verifier().verify(signer("ed").token(_claims(roles=DROP)), NOW).roles == ()


def test_the_platform_tenant_is_accepted_only_when_allowed() -> None:
    token = signer("ed").token(_claims(tenant="*"))
    assert _refusal(_verifier(), token).where == "tenant"
    rules = RULES.model_copy(update={"platform_tenant_allowed": True})
    verifier = JwtVerifier.from_jwks(_jwks(signer("ed").public_jwk()), rules, source="j")
    assert verifier.verify(token, NOW).tenant == "*"


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _verifier().verify(signer("ed").token(), NOW.replace(tzinfo=None))


# --- refusals --------------------------------------------------------------------------------


def _unsigned(header: dict[str, object], claims: dict[str, object] | None = None) -> str:
    return f"{_b64(_json(header))}.{_b64(_json(claims or _claims()))}."


def _hs256_with_the_rsa_public_key_as_secret() -> str:
    """The classic confusion: HMAC keyed with the bytes of the RSA public key (PEM)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    signing_input = f"{_b64(_json(header))}.{_b64(_json(_claims()))}"
    mac = hmac.new(signer("rs").public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _with_alg(name: str, alg: object, kid: object) -> str:
    """A token signed by ``name``'s key whose header claims ``alg`` and ``kid``."""
    return signer(name).token(alg=alg, kid=kid)


def _tampered_payload() -> str:
    header, _, signature = signer("ed").token().split(".")
    return f"{header}.{_b64(_json(_claims(sub='mallory')))}.{signature}"


def _spliced_signature() -> str:
    head, body, _ = signer("ed").token().split(".")
    other = signer("ed").token(_claims(sub="bob")).split(".")[2]
    return f"{head}.{body}.{other}"


def _signed_payload(payload: bytes) -> str:
    return signer("ed").token(payload=payload)


def _raw_header(header: bytes) -> str:
    return f"{_b64(header)}.{_b64(_json(_claims()))}.{_b64(b'x' * 64)}"


Build = Callable[[], str]
REFUSALS = [
    # header.alg: the allowlist, before any key is touched
    pytest.param(
        lambda: _unsigned({"alg": "none", "typ": "JWT"}),
        "header.alg",
        "algorithm none is not allowed: unsigned tokens are never accepted (allowed: EdDSA, "
        "ES256, ES384, PS256, RS256)",
        id="alg-none",
    ),
    pytest.param(
        lambda: _unsigned({"alg": "NoNe", "kid": "ed-1"}),
        "header.alg",
        "algorithm NoNe is not allowed: unsigned",
        id="alg-none-mixed-case",
    ),
    pytest.param(
        _hs256_with_the_rsa_public_key_as_secret,
        "header.alg",
        "algorithm HS256 is not allowed: shared-secret (HMAC) algorithms are never accepted",
        id="hs256-keyed-with-the-rsa-public-key",
    ),
    pytest.param(
        lambda: _with_alg("rs", "RS512", "rsa-1"),
        "header.alg",
        "algorithm RS512 is not allowed (allowed: EdDSA, ES256, ES384, PS256, RS256)",
        id="alg-not-on-the-allowlist",
    ),
    pytest.param(
        lambda: _with_alg("ed", DROP, "ed-1"),
        "header.alg",
        "token header has no alg string",
        id="alg-missing",
    ),
    # header.kid and the key's type
    pytest.param(
        lambda: _with_alg("es256", "ES256", "rsa-1"),
        "header.alg",
        r"key rsa-1 (RSA-2048) cannot verify ES256 tokens (it fits: PS256, RS256)",
        id="rsa-key-for-an-es256-token",
    ),
    pytest.param(
        lambda: _with_alg("ed", "EdDSA", "ec-1"),
        "header.alg",
        "key ec-1 (EC P-256) cannot verify EdDSA tokens",
        id="ec-key-for-an-eddsa-token",
    ),
    pytest.param(
        lambda: _with_alg("es384", "ES384", "ec-1"),
        "header.alg",
        "key ec-1 (EC P-256) cannot verify ES384 tokens (it fits: ES256)",
        id="p256-key-for-an-es384-token",
    ),
    pytest.param(
        lambda: _with_alg("rs", "RS256", "ed-1"),
        "header.alg",
        "key ed-1 (Ed25519) cannot verify RS256 tokens (it fits: EdDSA)",
        id="ed25519-key-for-an-rs256-token",
    ),
    pytest.param(
        lambda: _with_alg("ed", "EdDSA", "nope"),
        "header.kid",
        "no key with kid nope in the JWKS (known: ec-1, ec384-1, ed-1, ed-2, rsa-1, rsa-pss-1)",
        id="unknown-kid",
    ),
    pytest.param(
        lambda: _with_alg("ed", "EdDSA", 7),
        "header.kid",
        "token kid is not a non-empty string",
        id="kid-not-a-string",
    ),
    # signature
    pytest.param(
        lambda: signer("impostor").token(),
        "signature",
        "signature does not verify with key ed-1 (EdDSA)",
        id="signed-by-an-unconfigured-key",
    ),
    pytest.param(
        _tampered_payload,
        "signature",
        "signature does not verify with key ed-1 (EdDSA)",
        id="tampered-payload",
    ),
    pytest.param(
        _spliced_signature,
        "signature",
        "signature does not verify with key ed-1 (EdDSA)",
        id="signature-of-another-token",
    ),
    pytest.param(
        lambda: signer("es256").token().rsplit(".", 1)[0] + ".",
        "signature",
        "signature does not verify with key ec-1 (ES256)",
        id="empty-signature",
    ),
    pytest.param(
        lambda: signer("ed").token(crit=["exp"]),
        "header.crit",
        "token header sets crit: no JWS extension is supported",
        id="crit-header",
    ),
    pytest.param(
        lambda: signer("ed").token(b64=False),
        "header.b64",
        "token header sets b64: no JWS extension is supported",
        id="b64-header",
    ),
    # payload, parsed only after the signature
    pytest.param(
        lambda: _signed_payload(b"not json"),
        "payload",
        "token payload is not JSON: Expecting value at line 1 column 1",
        id="signed-non-json-payload",
    ),
    pytest.param(
        lambda: _signed_payload(b'["sub"]'),
        "payload",
        "token payload is not a JSON object",
        id="signed-json-array-payload",
    ),
    pytest.param(
        lambda: _signed_payload(b'{"sub": "alice", "sub": "root"}'),
        "payload",
        "token payload is not JSON: duplicate member 'sub'",
        id="signed-payload-with-a-duplicate-member",
    ),
    # exp, nbf, iat, lifetime
    pytest.param(
        lambda: signer("ed").token(_claims(exp=T - 300, iat=T - 900)),
        "exp",
        "token expired at 2026-11-23T03:00:00Z (now 2026-11-23T03:05:00Z, leeway 60 s)",
        id="expired-beyond-the-leeway",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(exp=T - 60, iat=T - 900)),
        "exp",
        "token expired at 2026-11-23T03:04:00Z (now 2026-11-23T03:05:00Z, leeway 60 s)",
        id="expired-exactly-at-the-leeway",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(exp=DROP)),
        "exp",
        "token has no exp claim: an expiry is required",
        id="no-exp",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(exp="tomorrow")),
        "exp",
        "exp claim is not a NumericDate (seconds since the epoch)",
        id="exp-a-string",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(exp=True)),
        "exp",
        "exp claim is not a NumericDate",
        id="exp-a-boolean",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(exp=10**30)),
        "exp",
        "exp claim 1000000000000000000000000000000 is outside 1970-01-01 to 9999-12-31",
        id="exp-beyond-year-9999",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(nbf=T + 61)),
        "nbf",
        "token is not valid before 2026-11-23T03:06:01Z (now 2026-11-23T03:05:00Z, leeway 60 s)",
        id="nbf-in-the-future",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(iat=T + 61)),
        "iat",
        "token is issued in the future, at 2026-11-23T03:06:01Z",
        id="iat-in-the-future",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(iat=T, exp=T + 86_401)),
        "exp",
        "token lifetime 86401 s (iat to exp) exceeds the maximum 86400 s",
        id="lifetime-from-iat-too-long",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(iat=DROP, exp=T + 86_400 + 61)),
        "exp",
        "token expires at 2026-11-24T03:06:01Z, more than the maximum lifetime 86400 s "
        "(plus leeway 60 s) after now (2026-11-23T03:05:00Z)",
        id="lifetime-from-now-too-long",
    ),
    # iss, aud
    pytest.param(
        lambda: signer("ed").token(_claims(iss="https://evil.example.test")),
        "iss",
        "issuer 'https://evil.example.test' is not 'https://idp.example.test'",
        id="wrong-issuer",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(iss=DROP)),
        "iss",
        "token has no iss claim (expected 'https://idp.example.test')",
        id="no-issuer",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(aud="x")),
        "aud",
        "audience 'x' is not 'govex'",
        id="wrong-audience",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(aud=["x", "y"])),
        "aud",
        "audience ['x', 'y'] does not include 'govex'",
        id="audience-list-without-ours",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(aud=DROP)),
        "aud",
        "token has no aud claim (expected 'govex')",
        id="no-audience",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(aud=[AUD, 5])),
        "aud",
        "aud claim is not a string or a list of strings",
        id="audience-list-with-a-number",
    ),
    # sub, roles, tenant
    pytest.param(
        lambda: signer("ed").token(_claims(sub=DROP)),
        "sub",
        "token has no sub claim: the principal id is required",
        id="no-sub",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(sub=42)),
        "sub",
        "token has a sub claim that is not a string",
        id="sub-a-number",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(roles="admin")),
        "roles",
        "claim 'roles' is not a list of non-empty strings",
        id="roles-a-string",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(roles=["analyst", 1])),
        "roles",
        "claim 'roles' is not a list of non-empty strings",
        id="roles-with-a-number",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(roles=[""])),
        "roles",
        "claim 'roles' is not a list of non-empty strings",
        id="roles-with-an-empty-string",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(tenant=DROP)),
        "tenant",
        "token has no 'tenant' claim: the tenant is required",
        id="no-tenant",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(tenant="*")),
        "tenant",
        "tenant '*' (platform-wide) is not accepted from a JWT here",
        id="platform-tenant",
    ),
    # the token's text
    pytest.param(
        lambda: "abc",
        "token",
        "token has 1 dot-separated segments, not 3 (JWS compact form)",
        id="one-segment",
    ),
    pytest.param(
        lambda: ".".join(signer("ed").token().split(".")[:2]),
        "token",
        "token has 2 dot-separated segments, not 3",
        id="two-segments",
    ),
    pytest.param(
        lambda: signer("ed").token() + ".e30",
        "token",
        "token has 4 dot-separated segments, not 3",
        id="four-segments",
    ),
    pytest.param(
        lambda: "!!!." + signer("ed").token().split(".", 1)[1],
        "header",
        "token header segment is not unpadded, canonical base64url",
        id="header-not-base64url",
    ),
    pytest.param(
        lambda: signer("ed").token().replace(".", "=.", 1),
        "header",
        "token header segment is not unpadded, canonical base64url",
        id="header-padded",
    ),
    pytest.param(
        lambda: "e30." + "x+y/." + "AA",
        "payload",
        "token payload segment is not unpadded, canonical base64url",
        id="payload-standard-base64-alphabet",
    ),
    pytest.param(
        lambda: "." + signer("ed").token().split(".", 1)[1],
        "header",
        "token header segment is empty",
        id="header-empty",
    ),
    pytest.param(
        lambda: _raw_header(b"not json at all"),
        "header",
        "token header is not JSON: Expecting value at line 1 column 1",
        id="header-not-json",
    ),
    pytest.param(
        lambda: _raw_header(b'["EdDSA"]'),
        "header",
        "token header is not a JSON object",
        id="header-a-json-array",
    ),
    pytest.param(
        lambda: _raw_header(b'{"alg": "EdDSA", "kid": "ed-1", "alg": "none"}'),
        "header",
        "token header is not JSON: duplicate member 'alg'",
        id="header-with-a-duplicate-alg",
    ),
    pytest.param(
        lambda: _raw_header(b'{"alg": "EdDSA", "kid": NaN}'),
        "header",
        "token header is not JSON: NaN is not JSON",
        id="header-with-nan",
    ),
    pytest.param(
        lambda: _raw_header(b'{"alg": "\xff"}'),
        "header",
        "token header is not JSON: not UTF-8",
        id="header-not-utf8",
    ),
    pytest.param(
        lambda: signer("ed").token() + "é",
        "token",
        "token holds non-ASCII characters",
        id="non-ascii",
    ),
    pytest.param(
        lambda: signer("ed").token(_claims(pad="x" * 20_000)),
        "token",
        "characters long, over the limit of 16384",
        id="too-long",
    ),
]


@pytest.mark.parametrize(("build", "where", "message"), REFUSALS)
def test_each_refusal_names_its_check_and_place_and_never_the_token(
    build: Build, where: str, message: str
) -> None:
    exc = _refusal(_verifier(), build())
    assert exc.where == where
    assert message in exc.message


def test_an_algorithm_outside_a_configured_subset_is_refused() -> None:
    rules = JwtRules(issuer=ISS, audience=AUD, algorithms=("EdDSA", "ES256"))
    data = _jwks(signer("ed").public_jwk(), signer("rs").public_jwk())
    verifier = JwtVerifier.from_jwks(data, rules, source="j")
    exc = _refusal(verifier, signer("rs").token())
    assert (exc.where, exc.message) == (
        "header.alg",
        "algorithm RS256 is not allowed (allowed: EdDSA, ES256)",
    )


def test_a_jwk_alg_member_restricts_its_key() -> None:
    data = _jwks(signer("rs").public_jwk(alg="PS256"))
    verifier = JwtVerifier.from_jwks(data, RULES, source="j")
    exc = _refusal(verifier, signer("rs").token())
    assert (exc.where, exc.message) == (
        "header.alg",
        "key rsa-1 (RSA-2048) cannot verify RS256 tokens (it fits: PS256)",
    )


@pytest.mark.parametrize("name", ["ed", "es256", "rs"])
@given(data=st.data())
def test_any_one_character_change_to_a_signed_token_is_refused(
    name: str, data: st.DataObject
) -> None:
    token = _fixed_token(name)
    index = data.draw(st.integers(0, len(token)), label="index")
    char = data.draw(st.sampled_from(_TOKEN_CHARS), label="char")
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="edit")
    if edit == "replace":
        mutated = token[:index] + char + token[index + 1 :]
    elif edit == "insert":
        mutated = token[:index] + char + token[index:]
    else:
        mutated = token[:index] + token[index + 1 :]
    assume(mutated != token)
    _refusal(_verifier(), mutated)


_TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="


@cache
def _fixed_token(name: str) -> str:
    token = signer(name).token()
    assert _verifier().verify(token, NOW).key_id == signer(name).kid
    return token


# --- building a verifier ---------------------------------------------------------------------


def test_a_jwks_with_no_key_for_the_allowed_algorithms_refuses_to_start() -> None:
    rules = JwtRules(issuer=ISS, audience=AUD, algorithms=("ES256",))
    with pytest.raises(StartupRefused) as caught:
        JwtVerifier.from_jwks(_jwks(signer("rs").public_jwk()), rules, source="idp.jwks")
    assert caught.value.message == (
        "JWKS file idp.jwks holds no public signing key usable with the allowed algorithms (ES256)"
    )


def test_a_pem_key_no_allowed_algorithm_can_use_refuses_to_start() -> None:
    rules = JwtRules(issuer=ISS, audience=AUD, algorithms=("EdDSA",))
    with pytest.raises(StartupRefused, match="holds an RSA-2048 key, which none of the allowed"):
        JwtVerifier.from_pem(signer("rs").public_pem(), rules, source="idp.pem")


def test_from_files_reads_a_jwks_file(tmp_path: Path) -> None:
    path = tmp_path / "idp.jwks"
    path.write_bytes(_jwks(signer("es256").public_jwk()))
    verifier = JwtVerifier.from_files(
        jwks_path=path, issuer=ISS, audience=AUD, algorithms=["ES256"], leeway_s=5
    )
    assert verifier.rules.algorithms == ("ES256",)
    assert verifier.rules.leeway_s == 5
    assert verifier.verify(signer("es256").token(), NOW).key_id == "ec-1"


def test_from_files_reads_a_pem_file(tmp_path: Path) -> None:
    path = tmp_path / "idp.pem"
    path.write_bytes(signer("ed").public_pem())
    verifier = JwtVerifier.from_files(pem_path=path, issuer=ISS, audience=AUD)
    assert verifier.verify(signer("ed").token(), NOW).id == "alice"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param("missing.jwks", None, "cannot read JWKS file {path}: ", id="unreadable"),
        pytest.param(
            "bad.jwks",
            b'{"keys": [',
            "JWKS file {path} is not valid JSON: Expecting value at line 1 column 11",
            id="bad-json",
        ),
        pytest.param(
            "private.jwks",
            _json({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "AA", "d": "AA"}]}),
            "JWKS file {path} is invalid at /keys/0/d: holds private key material (d)",
            id="private-jwk",
        ),
        pytest.param(
            "oct.jwks",
            _json({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            "JWKS file {path} is invalid at /keys/0/kty: a symmetric key (kty oct)",
            id="oct-jwk",
        ),
    ],
)
def test_from_files_refuses_to_start_naming_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StartupRefused) as caught:
        JwtVerifier.from_files(jwks_path=path, issuer=ISS, audience=AUD)
    assert caught.value.message.startswith(message.format(path=path))
    assert caught.value.where.startswith(str(path))


@pytest.mark.parametrize(
    ("settings", "where", "message"),
    [
        pytest.param({}, "jwks_path", "configure exactly one of", id="no-key-file"),
        pytest.param(
            {"pem_path": Path("b.pem")}, "jwks_path", "configure exactly one of", id="both-files"
        ),
        pytest.param(
            {"algorithms": ["ES256", "HS256"]},
            "algorithms",
            "algorithm 'HS256' is not supported for JWTs",
            id="hs256-in-the-allowlist",
        ),
        pytest.param(
            {"algorithms": ["none"]},
            "algorithms",
            "algorithm 'none' is not supported for JWTs",
            id="none-in-the-allowlist",
        ),
        pytest.param(
            {"algorithms": []}, "algorithms", "JWT setting algorithms: ", id="empty-allowlist"
        ),
        pytest.param(
            {"algorithms": ["ES256", "ES256"]},
            "algorithms",
            "lists an algorithm twice",
            id="repeated-algorithm",
        ),
        pytest.param({"leeway_s": 301}, "leeway_s", "less than or equal to 300", id="leeway-301"),
        pytest.param({"leeway_s": -1}, "leeway_s", "greater than or equal to 0", id="leeway-neg"),
        pytest.param({"max_lifetime_s": 0}, "max_lifetime_s", "greater than 0", id="lifetime-0"),
        pytest.param({"audience": ""}, "audience", "at least 1 character", id="empty-audience"),
    ],
)
def test_from_files_refuses_settings_that_cannot_work(
    tmp_path: Path, settings: dict[str, object], where: str, message: str
) -> None:
    path = tmp_path / "idp.jwks"
    path.write_bytes(_jwks(signer("es256").public_jwk()))
    arguments: dict[str, object] = {"issuer": ISS, "audience": AUD, **settings}
    if settings:  # every case but the first also names a JWKS file
        arguments["jwks_path"] = path
    with pytest.raises(ConfigurationError) as caught:
        JwtVerifier.from_files(**arguments)  # type: ignore[arg-type]
    assert caught.value.where == where
    assert re.search(re.escape(message), caught.value.message)


def test_rules_refuse_a_leeway_over_five_minutes() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 300"):
        JwtRules(issuer=ISS, audience=AUD, leeway_s=301)
