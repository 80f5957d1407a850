"""A test JWT issuer: an Ed25519 key that signs JWS compact tokens and publishes its JWKS.

Tokens are signed with `cryptography` directly, not with PyJWT (which the verifier
uses); the public JWK comes from PyJWT's encoder, not from the loader under test.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

ISSUER = "https://idp.govex.test"
AUDIENCE = "govex-e2e"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def dave_claims(now: float | None = None, /, **overrides: object) -> dict[str, object]:
    """The claims of a token for ``sub`` dave (analyst, tenant acme), valid for 5 minutes."""
    t = int(time.time() if now is None else now)
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "dave",
        "roles": ["analyst"],
        "tenant": "acme",
        "iat": t - 5,
        "exp": t + 300,
        **overrides,
    }


@dataclass(frozen=True)
class Issuer:
    kid: str
    private: ed25519.Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, kid: str) -> Issuer:
        return cls(kid, ed25519.Ed25519PrivateKey.generate())

    def jwks(self) -> bytes:
        jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return json.dumps({"keys": [{**jwk, "kid": self.kid, "use": "sig"}]}).encode()

    def write_jwks(self, path: Path) -> Path:
        path.write_bytes(self.jwks())
        return path

    def token(self, *, now: float | None = None, **overrides: object) -> str:
        """A signed token for ``sub`` dave (analyst, tenant acme), valid for 5 minutes."""
        claims = dave_claims(now, **overrides)
        header = {"alg": "EdDSA", "typ": "JWT", "kid": self.kid}
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        signature = self.private.sign(signing_input.encode())
        return f"{signing_input}.{b64url(signature)}"
