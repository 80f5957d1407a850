"""Canary secrets: configured everywhere, used on every path, found nowhere they must not be.

The world (:mod:`tests.hardening.edges_world`) is configured with recognisable secrets: the
API key alice calls with, a JWT, the password in two PostgreSQL source URLs (one of them
unreachable), the masking key, the ledger signing key and the metrics token. The real app
then runs success paths (calls on both engines by both PostgreSQL paths, a masked entry, a
command, checkpoints signed, packets fetched, proven and verified, metrics, readiness, the
self-test) and failure paths (an unreachable source, near-miss and forged credentials, bad
inputs, policy denials). Afterwards no canary, in any spelling that would count
(:meth:`Canaries.forms`), may appear in:

- a log line: structlog's output through the service's own processors, and every standard
  ``logging`` record (drivers included) at DEBUG, tracebacks included;
- a ledger byte: the raw bytes of the ledger database and its journal files;
- a packet: every file of every zip, decompressed;
- an HTTP answer: the body and the headers of every response, errors included.

A control shows each canary was really in play, so that "not found" means something.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient

from service.logging import configure_logging
from tests.hardening.edges_http import edge_client
from tests.hardening.edges_world import GOOD_ECHO, EdgeWorld, build_edge_world
from tests.jwt_issuer import Issuer
from tests.pg_harness import PostgresServer


class _Records(logging.Handler):
    """Every standard logging record, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[tuple[io.StringIO, _Records]]:
    """The service's structlog chain, rendering into a buffer; every stdlib record besides."""
    rendered = io.StringIO()
    configure_logging(json_logs=True, level=logging.DEBUG)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=rendered))
    records = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(records)
    root.setLevel(logging.DEBUG)
    try:
        yield rendered, records
    finally:
        root.removeHandler(records)
        root.setLevel(level)  # structlog itself is reset by the suite's autouse fixture


class _Recorder:
    """A client that keeps every response it got."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.responses: list[Any] = []

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        self.responses.append(response)
        return response


def _exercise(world: EdgeWorld, call: _Recorder) -> dict[str, Any]:
    """Every path the canaries take; what the controls need to see."""
    alice, carol, mallory = world.bearer("alice"), world.bearer("carol"), world.bearer("mallory")
    jwt = {"Authorization": f"Bearer {world.canaries.jwt}"}
    seen: dict[str, Any] = {}
    packets = []
    for body, headers in (
        ({"entry": "edge.echo", "params": GOOD_ECHO}, alice),
        ({"entry": "edge.echo_pg", "params": GOOD_ECHO}, alice),  # COPY
        ({"entry": "edge.echo_pg", "params": GOOD_ECHO, "format": "parquet"}, jwt),  # cursor
        ({"entry": "edge.lookup_pg", "params": {"name": "Customer 01"}}, alice),
        ({"entry": "edge.masked"}, alice),
        ({"entry": "edge.masked"}, carol),  # an operator: unmasked
        ({"entry": "edge.args_after_dashes", "params": {"word": "-x"}}, alice),
    ):
        result = call("POST", "/v1/calls", json=body, headers=headers).json()
        seen.setdefault("verdicts", []).append(result.get("verdict"))
        packets.append(result["packet_id"])
    down = call("POST", "/v1/calls", json={"entry": "edge.down"}, headers=alice).json()
    seen["down"] = down
    for packet in packets:
        call("GET", f"/v1/packets/{packet}/manifest", headers=alice)
        call("GET", f"/v1/packets/{packet}/proof", headers=alice)
    zipped = call("GET", f"/v1/packets/{packets[0]}", headers=alice).content
    call(
        "POST",
        "/v1/packets/verify?trust_service_key=true",
        content=zipped,
        headers=alice | {"content-type": "application/zip"},
    )
    seen["checkpoint"] = call("GET", "/v1/ledger/checkpoint", headers=carol)
    call("GET", "/v1/ledger/entries?start=0&limit=500", headers=carol)
    call("GET", "/v1/catalog/resolved", headers=alice)
    seen["metrics"] = call(
        "GET", "/metrics", headers={"Authorization": f"Bearer {world.canaries.metrics_token}"}
    )
    call("GET", "/metrics", headers={"Authorization": "Bearer canary-metrics-wrong"})
    call("GET", "/readyz")
    call("GET", "/v1/selftest", headers=carol)
    # Failure paths with credentials near the canaries.
    near = world.canaries.api_key[:-1] + "0"
    call("GET", "/v1/calls", headers={"Authorization": f"Bearer {near}"})
    header, payload, signature = world.canaries.jwt.split(".")
    call("GET", "/v1/calls", headers={"Authorization": f"Bearer {header}.{payload}x.{signature}"})
    other = Issuer.generate("edge-ed-1").token()  # right kid, another key
    call("GET", "/v1/calls", headers={"Authorization": f"Bearer {other}"})
    call("POST", "/v1/calls", json={"entry": "edge.echo", "params": {"n": "x"}}, headers=alice)
    call("POST", "/v1/calls", json={"entry": "edge.args", "params": {"word": "-x"}}, headers=alice)
    call("POST", "/v1/calls", json={"entry": "edge.nope"}, headers=jwt)
    call("GET", f"/v1/packets/{packets[0]}", headers=mallory)
    call(
        "POST",
        "/v1/calls",
        json={"entry": "edge.echo_pg", "params": {**GOOD_ECHO, "s": "\x00"}},
        headers=alice,
    )
    return seen


def _haystacks(
    world: EdgeWorld, call: _Recorder, logs: tuple[io.StringIO, _Records]
) -> dict[str, bytes]:
    """Every place to search, by name, as bytes."""
    rendered, records = logs
    stacks: dict[str, bytes] = {
        "structlog output": rendered.getvalue().encode(),
        "stdlib log records": "\n".join(records.lines).encode(),
    }
    var = Path(world.settings.ledger_url.removeprefix("sqlite:///")).parent
    for path in sorted(p for p in var.rglob("*") if p.is_file()):
        stacks[f"file {path.relative_to(world.root)}"] = path.read_bytes()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as packet:
                for name in packet.namelist():
                    stacks[f"packet {path.name}:{name}"] = packet.read(name)
    for i, response in enumerate(call.responses):
        where = f"response {i} {response.request.method} {response.request.url.path}"
        stacks[where] = response.content + repr(sorted(response.headers.items())).encode()
    return stacks


def test_no_canary_secret_appears_in_a_log_a_ledger_byte_a_packet_or_a_response(
    postgres: PostgresServer, tmp_path: Path, logs: tuple[io.StringIO, _Records]
) -> None:
    world = build_edge_world(postgres, tmp_path)
    try:
        with edge_client(world) as client:
            call = _Recorder(client)
            seen = _exercise(world, call)
    finally:
        world.shop.close()
    # Controls: each canary was in play.
    assert seen["verdicts"] == ["ran_clean"] * 7  # the API key and the JWT let calls run
    assert seen["down"]["verdict"] == "error_running"
    assert ":***@" in seen["down"]["error"]  # the unreachable source's URL, password hidden
    assert seen["checkpoint"].status_code == 200  # signed with the ledger key
    assert seen["metrics"].status_code == 200  # the metrics token let it through
    stacks = _haystacks(world, call, logs)
    assert any(name.startswith("packet ") and name.endswith("data/result.jsonl") for name in stacks)
    assert b'"path": "/v1/calls"' in stacks["structlog output"]  # the log was captured
    found = [
        f"{canary} ({form[:12]!r}...) in {where}"
        for canary, forms in world.canaries.forms().items()
        for form in forms
        for where, stack in stacks.items()
        if form in stack
    ]
    assert found == []
    assert len(stacks) > 60  # logs, ledger files, packet members, responses
