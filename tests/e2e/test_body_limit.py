"""Request bodies past GOVEX_MAX_REQUEST_BYTES: a 413 problem, before the body is read whole."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger.store import LedgerStore
from service.app import create_app
from service.settings import Settings

LIMIT = 8192


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}", "Content-Type": "application/json"}


@pytest.fixture
def limited(world: Settings) -> Iterator[TestClient]:
    settings = world.model_copy(update={"max_request_bytes": LIMIT})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _body(size: int) -> bytes:
    """A call body of exactly ``size`` bytes (its padding in an unknown parameter)."""
    head = b'{"entry": "items.all", "params": {"pad": "'
    tail = b'"}}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = json.loads(response.text)
    assert problem["code"] == "request_too_large"
    assert f"{LIMIT} bytes" in problem["detail"]
    assert problem["type"] == "/problems/request_too_large"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_past_the_limit_is_refused_and_nothing_is_ledgered(
    limited: TestClient, world: Settings, chunked: bool
) -> None:
    body = _body(LIMIT + 1)
    sent = _chunks(body) if chunked else body
    _assert_too_large(limited.post("/v1/calls", content=sent, headers=auth("alice")))
    with LedgerStore.open(world.ledger_url) as store:
        kinds = [e.kind.value for e in store.list_entries(0, store.size())]
    assert kinds == ["service.started"]  # refused before the call was read, so no call


def test_a_body_at_the_limit_is_read_and_judged_as_ever(limited: TestClient) -> None:
    response = limited.post("/v1/calls", content=_body(LIMIT), headers=auth("alice"))
    assert response.status_code == 422, response.text  # the unknown parameter, not the size
    assert "pad" in response.text


def test_the_problem_type_is_a_documented_page(limited: TestClient) -> None:
    page = limited.get("/problems/request_too_large")
    assert page.status_code == 200
    assert "GOVEX_MAX_REQUEST_BYTES" in page.text


def test_the_packet_upload_keeps_its_own_bound(limited: TestClient) -> None:
    # POST /v1/packets/verify streams a zip within GOVEX_PACKET_UPLOAD_MAX_BYTES: a body past
    # the app's limit reaches it (and is judged as a zip, not refused for its size).
    response = limited.post(
        "/v1/packets/verify",
        content=b"hello" * LIMIT,
        headers={"Authorization": "Bearer tok-alice", "Content-Type": "application/zip"},
    )
    assert response.status_code == 415, response.text
    assert response.json()["code"] == "not_a_zip"
