"""Forged credentials of every kind against the real app: each a 401 naming the failed check.

The world's JWT issuer holds an Ed25519 key published in a JWKS; the tokens below are built
by hand (header, payload, signature) to be wrong in exactly one way each. API keys are
tried one character off the real one, and timed: the keyring looks a token up by its
SHA-256, so how close a guess is cannot show in how long the refusal takes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from service.errors import Unauthenticated
from service.identity import ApiKeyring
from tests.hardening.edges_http import assert_problem, edge_client
from tests.hardening.edges_world import KID, EdgeWorld, build_edge_world
from tests.jwt_issuer import Issuer, b64url, dave_claims
from tests.pg_harness import PostgresServer


@pytest.fixture(scope="module")
def world(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeWorld]:
    built = build_edge_world(postgres, tmp_path_factory.mktemp("edges-tokens"))
    yield built
    built.shop.close()


@pytest.fixture(scope="module")
def client(world: EdgeWorld) -> Iterator[TestClient]:
    with edge_client(world) as app_client:
        yield app_client


def _json(value: object) -> str:
    return b64url(json.dumps(value).encode())


def _claims(**overrides: object) -> dict[str, object]:
    """Dave's claims with ``overrides``; a claim overridden with None is left out."""
    return {k: v for k, v in dave_claims(**overrides).items() if v is not None}


def _signed(
    issuer: Issuer,
    header: dict[str, object],
    claims: dict[str, object],
    key: Any = None,
) -> str:
    signing_input = f"{_json(header)}.{_json(claims)}"
    signer = issuer.private if key is None else key
    return f"{signing_input}.{b64url(signer.sign(signing_input.encode()))}"


def _hs256(header: Mapping[str, object], claims: dict[str, object], secret: bytes) -> str:
    signing_input = f"{_json(header)}.{_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def _tampered(token: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_json(_claims(tenant='*', roles=['operator']))}.{signature}"


ED: dict[str, object] = {"alg": "EdDSA", "typ": "JWT", "kid": KID}
Forge = Callable[[EdgeWorld], str]
FORGERIES: dict[str, tuple[Forge, str, str]] = {
    "alg-none": (
        lambda _: f"{_json({'alg': 'none', 'kid': KID})}.{_json(_claims())}.",
        "header.alg",
        "unsigned tokens are never accepted",
    ),
    "alg-None-mixed-case": (
        lambda _: f"{_json({'alg': 'NoNe'})}.{_json(_claims())}.",
        "header.alg",
        "unsigned tokens are never accepted",
    ),
    "hs256-with-the-public-key": (
        lambda w: _hs256(
            {"alg": "HS256", "kid": KID},
            _claims(),
            w.issuer.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        ),
        "header.alg",
        "shared-secret (HMAC) algorithms are never accepted",
    ),
    "hs256-with-the-jwks-text": (
        lambda w: _hs256({"alg": "HS256", "kid": KID}, _claims(), w.issuer.jwks()),
        "header.alg",
        "shared-secret (HMAC) algorithms are never accepted",
    ),
    "es256-header-on-an-eddsa-signature": (
        lambda w: _signed(w.issuer, {**ED, "alg": "ES256"}, _claims()),
        "header.alg",
        "cannot verify ES256 tokens",
    ),
    "wrong-kid": (
        lambda w: _signed(w.issuer, {**ED, "kid": "someone-else"}, _claims()),
        "header.kid",
        "no key with kid",
    ),
    "another-key-same-kid": (
        lambda w: _signed(w.issuer, ED, _claims(), ed25519.Ed25519PrivateKey.generate()),
        "signature",
        "signature does not verify",
    ),
    "embedded-jwk-of-the-forger": (
        lambda w: _signed(
            w.issuer,
            {**ED, "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64url(b"\x00" * 32)}},
            _claims(),
            ed25519.Ed25519PrivateKey.generate(),
        ),
        "signature",
        "signature does not verify",
    ),
    "jku-to-the-forgers-keys": (
        lambda w: _signed(
            w.issuer,
            {**ED, "jku": "https://attacker.example/jwks.json"},
            _claims(),
            ed25519.Ed25519PrivateKey.generate(),
        ),
        "signature",
        "signature does not verify",
    ),
    "crit-extension": (
        lambda w: _signed(w.issuer, {**ED, "crit": ["exp"]}, _claims()),
        "header.crit",
        "no JWS extension is supported",
    ),
    "tampered-payload": (
        lambda w: _tampered(w.canaries.jwt),
        "signature",
        "signature does not verify",
    ),
    "expired": (
        lambda w: _signed(
            w.issuer, ED, _claims(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
        ),
        "exp",
        "token expired at",
    ),
    "not-yet-valid": (
        lambda w: _signed(w.issuer, ED, _claims(nbf=int(time.time()) + 3600)),
        "nbf",
        "token is not valid before",
    ),
    "issued-in-the-future": (
        lambda w: _signed(w.issuer, ED, _claims(iat=int(time.time()) + 3600)),
        "iat",
        "issued in the future",
    ),
    "no-expiry": (
        lambda w: _signed(w.issuer, ED, _claims(exp=None)),
        "exp",
        "an expiry is required",
    ),
    "wrong-audience": (
        lambda w: _signed(w.issuer, ED, _claims(aud="another-service")),
        "aud",
        "is not",
    ),
    "wrong-issuer": (
        lambda w: _signed(w.issuer, ED, _claims(iss="https://idp.attacker.example")),
        "iss",
        "is not",
    ),
    "no-subject": (
        lambda w: _signed(w.issuer, ED, _claims(sub=None)),
        "sub",
        "the principal id is required",
    ),
    "header-not-json": (
        lambda _: f"{b64url(b'{not json')}.{_json(_claims())}.{b64url(b'x')}",
        "header",
        "is not JSON",
    ),
    "signature-of-es256-key": (
        lambda w: _signed(w.issuer, {**ED, "alg": "ES256"}, _claims(), _EcSigner()),
        "header.alg",
        "cannot verify ES256 tokens",
    ),
}


class _EcSigner:
    """Signs like an Ed25519 key's ``sign`` but with a P-256 key (the forger's)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes  # noqa: PLC0415

        return self.key.sign(data, ec.ECDSA(hashes.SHA256()))


def test_the_world_accepts_its_own_jwt_and_api_key(client: TestClient, world: EdgeWorld) -> None:
    # The controls: without them every refusal below could be a misconfiguration.
    jwt = client.get("/v1/calls", headers={"Authorization": f"bearer {world.canaries.jwt}"})
    assert jwt.status_code == 200, jwt.text
    assert client.get("/v1/calls", headers=world.bearer("alice")).status_code == 200


@pytest.mark.parametrize("name", FORGERIES)
def test_a_forged_jwt_is_a_401_naming_the_check_it_failed(
    client: TestClient, world: EdgeWorld, name: str
) -> None:
    forge, where, words = FORGERIES[name]
    token = forge(world)
    response = client.get("/v1/calls", headers={"Authorization": f"Bearer {token}"})
    problem = assert_problem(response, 401, "unauthenticated")
    assert words in problem["detail"]
    assert problem["errors"] == [{"where": where, "detail": problem["detail"]}]
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="govex"'
    assert token not in response.text
    assert token.rsplit(".", 1)[-1] not in response.text or not token.rsplit(".", 1)[-1]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("a.b.c.d", id="four-parts"),
        pytest.param("x" * 100_000, id="100k-characters"),
        pytest.param("tok-carol tok-bob", id="two-tokens"),
    ],
)
def test_a_token_of_no_known_shape_is_an_unknown_api_key(client: TestClient, token: str) -> None:
    response = client.get("/v1/calls", headers={"Authorization": f"Bearer {token}"})
    problem = assert_problem(response, 401, "unauthenticated")
    assert problem["detail"] == "unknown API key"
    assert token[:50] not in response.text


def _near_misses(token: str) -> dict[str, str]:
    flip = {"a": "b", "b": "a"}
    last = token[-1]
    return {
        "last-character": token[:-1] + flip.get(last, "a"),
        "first-character": ("d" if token[0] == "c" else "c") + token[1:],
        "truncated": token[:-1],
        "extended": token + "0",
        "upper-case": token.upper(),
        "split": f"{token[:8]} {token[8:]}",
        "lookalike-dash": token.replace("-", "\u2010", 1),
    }


@pytest.mark.parametrize(
    "variant",
    [
        "last-character",
        "first-character",
        "truncated",
        "extended",
        "upper-case",
        "split",
        "lookalike-dash",
    ],
)
def test_an_api_key_one_step_off_is_refused_like_any_unknown_key(
    client: TestClient, world: EdgeWorld, variant: str
) -> None:
    token = _near_misses(world.canaries.api_key)[variant]
    header = f"Bearer {token}".encode()  # bytes: the lookalike dash goes out as UTF-8
    response = client.get("/v1/calls", headers={"Authorization": header})
    problem = assert_problem(response, 401, "unauthenticated")
    assert problem["detail"] == "unknown API key"
    assert world.canaries.api_key[4:-4] not in response.text


def test_how_close_an_api_key_guess_is_does_not_show_in_the_time_to_refuse_it(
    world: EdgeWorld,
) -> None:
    keyring = ApiKeyring.from_file(world.settings.keys_file)
    now = datetime.now(UTC)
    near = _near_misses(world.canaries.api_key)["last-character"]
    far = "z" * len(world.canaries.api_key)

    def seconds(token: str) -> float:
        started = time.perf_counter()
        with contextlib.suppress(Unauthenticated):
            keyring.verify(token, now)
        return time.perf_counter() - started

    near_times, far_times = [], []
    for _ in range(2000):  # interleaved, so that load on the machine hits both alike
        near_times.append(seconds(near))
        far_times.append(seconds(far))
    ratio = statistics.median(near_times) / statistics.median(far_times)
    assert 0.5 < ratio < 2.0, ratio
    assert world.canaries.api_key not in repr(vars(keyring))  # it holds hashes, not tokens


def test_an_api_key_in_the_wrong_scheme_or_place_is_refused(
    client: TestClient, world: EdgeWorld
) -> None:
    token = world.canaries.api_key
    basic = base64.b64encode(f"alice:{token}".encode()).decode()
    for headers in (
        {"Authorization": f"Basic {basic}"},
        {"Authorization": token},
        {"X-API-Key": token},
    ):
        response = client.get("/v1/calls", headers=headers)
        assert_problem(response, 401, "unauthenticated")
        assert token not in response.text
    query = client.get(f"/v1/calls?api_key={token}")
    assert_problem(query, 401, "unauthenticated")
