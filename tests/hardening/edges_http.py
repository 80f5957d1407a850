"""What the hostile-input tests share: the app of an :class:`EdgeWorld`, and checks on answers.

:func:`assert_problem` is the promise every refusal keeps: an RFC 9457 problem+json body
with its status, a ``code`` and a ``detail`` naming what was wrong, and no stack trace.
:func:`packet_file` reads one data file out of a packet fetched over HTTP.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from service.app import create_app
from tests.hardening.edges_world import EdgeWorld

PROBLEM = "application/problem+json"
_TRACE_MARKS = ("Traceback (most recent call last)", 'File "/', "site-packages")


@contextmanager
def edge_client(world: EdgeWorld) -> Iterator[TestClient]:
    """The real app of ``world``, in process, its lifespan run (the runtime opened and closed)."""
    with TestClient(create_app(world.settings), raise_server_exceptions=False) as client:
        yield client


def assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """``response`` is a problem+json refusal with ``status`` (and ``code``); its body."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"].startswith("/problems/")
    if code is not None:
        assert body["code"] == code, body
    assert not any(mark in response.text for mark in _TRACE_MARKS)
    return body


def packet_file(client: TestClient, headers: dict[str, str], packet_id: str, suffix: str) -> bytes:
    """The bytes of the packet member whose name ends with ``suffix`` (``/data/result.csv``)."""
    response = client.get(f"/v1/packets/{packet_id}", headers=headers)
    assert response.status_code == 200, response.text
    with zipfile.ZipFile(io.BytesIO(response.content)) as packet:
        (name,) = [n for n in packet.namelist() if n.endswith(suffix)]
        return packet.read(name)
