"""schemathesis against the live OpenAPI of a real uvicorn on loopback: every operation,
a bounded number of generated requests each, as an operator. No answer is a server
error, and every error answer is an RFC 9457 problem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from ledger.keys import SignerKey
from service.app import create_app
from service.settings import Settings
from tests.e2e.conftest import make_world
from tests.e2e.servers import running_uvicorn

EXAMPLES = 12
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("fuzz")
    world = make_world(folder, rows=20)
    key_file = folder / "ledger.key"  # checkpoints and proofs work: no 503 no_signing_key
    key_file.write_text(SignerKey.generate(world.origin).text())
    world = world.model_copy(update={"ledger_key_file": key_file, "checkpoint_interval_s": 0})
    with running_uvicorn(create_app(world)) as url:
        yield url


@schemathesis.serializer("application/zip")
def _zip_body(_context: Any, value: Any) -> bytes:
    """Generated zip bodies: bytes as they are, anything else as its text (never a real zip)."""
    return value if isinstance(value, bytes) else str(value).encode()


# The document the live service serves at /openapi.json (building it starts nothing).
_DESCRIBED = create_app(Settings(catalog_dir=Path("catalog"), keys_file=Path("keys.json")))
schema = schemathesis.openapi.from_dict(_DESCRIBED.openapi())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_error_and_every_error_is_a_problem(case: Any, base_url: str) -> None:
    headers = {"Authorization": "Bearer tok-carol"}
    response = case.call(base_url=base_url, headers=headers, timeout=60)
    assert response.status_code < 500, (case.method, case.path, response.text[:500])
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]
        assert content_type.startswith(PROBLEM), (
            case.method,
            case.path,
            response.status_code,
            response.text[:300],
        )
        body = response.json()
        assert {"type", "title", "status", "detail", "code"} <= set(body)
        assert body["status"] == response.status_code
