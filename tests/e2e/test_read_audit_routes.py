"""Every read route of the ledger, packet and call routers: ledgered as ``access.read``, or not
for a stated reason.

One request per route, as the reader the route allows; the entries that request appended
are exactly the one ``access.read`` expected (who, what, the target), or none: the
checkpoint (docs/auditing.md says why) and a principal following their own call. A route
added to these routers without a decision here fails the coverage test.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast, get_args

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from ledger.entry import AccessReadBody
from ledger.keys import SignerKey
from ledger.store import LedgerStore
from service.app import create_app
from service.read_audit import Read as ReadName
from service.routes import approvals as approval_routes
from service.routes import calls as call_routes
from service.routes import ledger as ledger_routes
from service.routes import packets as packet_routes
from service.settings import Settings
from tests.e2e.conftest import make_world

WRITES = {
    ("POST", "/v1/calls"): "a call: ledgered by its own call.* entries",
    ("DELETE", "/v1/calls/{call_id}"): "a cancel: ledgered as call.cancelled",
    ("POST", "/v1/approvals"): "an approval: ledgered as approval.granted or approval.denied",
}


@dataclass(frozen=True)
class World:
    settings: Settings
    client: TestClient
    call_id: str
    packet_id: str
    manifest_sha256: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One service with one call of alice's (and its packet); each test reads it once."""
    tmp_path = tmp_path_factory.mktemp("read-audit-routes")
    settings = make_world(tmp_path, rows=20)
    key_file = tmp_path / "ledger.key"
    key_file.write_text(SignerKey.generate(settings.origin).text())
    settings = settings.model_copy(update={"ledger_key_file": key_file})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        call = client.post("/v1/calls", json={"entry": "items.all"}, headers=_as("alice"))
        assert call.status_code == 201, call.text
        body = call.json()
        yield World(
            settings, client, body["call_id"], body["packet_id"], body["manifest_hash"]["sha256"]
        )


def _as(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer tok-{name}"}


def _entries_after(settings: Settings, size: int) -> list[tuple[str, dict[str, Any]]]:
    with LedgerStore.open(settings.ledger_url) as store:
        entries = store.list_entries(size, store.size() - size)
    return [(e.kind.value, cast("dict[str, Any]", e.body)) for e in entries]


def _size(settings: Settings) -> int:
    with LedgerStore.open(settings.ledger_url) as store:
        return store.size()


@dataclass(frozen=True)
class Read:
    """One request of one route, and the ``access.read`` it must leave (None: none)."""

    route: tuple[str, str]
    who: str
    send: Callable[[World], Any]
    read: str | None
    target: Callable[[World], dict[str, Any]] | None = None
    packet: bool = False  # the body names the packet and its manifest hash


def _get(path: str, who: str) -> Callable[[World], Any]:
    return lambda w: w.client.get(path.format(c=w.call_id, p=w.packet_id), headers=_as(who))


def _verify(w: World) -> Any:
    data = (w.settings.packet_root / f"{w.packet_id}.zip").read_bytes()  # no read of its own
    return w.client.post(
        f"/v1/packets/verify?expect_manifest_hash=sha256:{w.manifest_sha256}",
        content=data,
        headers={**_as("bob"), "Content-Type": "application/zip"},
    )


READS = [
    Read(("GET", "/v1/ledger/entries"), "bob", _get("/v1/ledger/entries?start=1&limit=2", "bob"),
         "ledger.entries", lambda _: {"start": 1, "limit": 2}),
    Read(("GET", "/v1/ledger/checkpoint"), "bob", _get("/v1/ledger/checkpoint", "bob"), None),
    Read(("GET", "/v1/ledger/proofs/inclusion"), "carol",
         _get("/v1/ledger/proofs/inclusion?seq=1", "carol"), "ledger.inclusion_proof",
         lambda _: {"seq": 1, "size": None}),
    Read(("GET", "/v1/ledger/proofs/consistency"), "bob",
         _get("/v1/ledger/proofs/consistency?old=1&new=2", "bob"), "ledger.consistency_proof",
         lambda _: {"old": 1, "new": 2}),
    Read(("GET", "/v1/packets/{packet_id}"), "bob", _get("/v1/packets/{p}", "bob"), "packet.zip",
         packet=True),
    Read(("GET", "/v1/packets/{packet_id}/manifest"), "carol",
         _get("/v1/packets/{p}/manifest", "carol"), "packet.manifest", packet=True),
    Read(("GET", "/v1/packets/{packet_id}/proof"), "alice", _get("/v1/packets/{p}/proof", "alice"),
         "packet.proof", packet=True),
    Read(("POST", "/v1/packets/verify"), "bob", _verify, "packet.verify", packet=True),
    Read(("GET", "/v1/calls/{call_id}"), "bob", _get("/v1/calls/{c}", "bob"), "call.status",
         lambda w: {"call_id": w.call_id, "principal": "alice"}),
    Read(("GET", "/v1/calls/{call_id}/events"), "carol", _get("/v1/calls/{c}/events", "carol"),
         "call.events", lambda w: {"call_id": w.call_id, "principal": "alice"}),
    Read(("GET", "/v1/calls"), "bob", _get("/v1/calls?entry=items.all&limit=5", "bob"),
         "call.list", lambda _: {"entry": "items.all", "limit": 5, "returned": 1}),
    Read(("GET", "/v1/approvals"), "bob", _get("/v1/approvals", "bob"), "approval.list",
         lambda _: {"entry": None, "limit": 100, "returned": 0}),
    # Following one's own call is the answer to one's own request: not a read of evidence.
    Read(("GET", "/v1/calls/{call_id}"), "alice", _get("/v1/calls/{c}", "alice"), None),
    Read(("GET", "/v1/calls/{call_id}/events"), "alice", _get("/v1/calls/{c}/events", "alice"),
         None),
    Read(("GET", "/v1/calls"), "alice", _get("/v1/calls", "alice"), None),
    Read(("GET", "/v1/calls"), "bob", _get("/v1/calls?principal=bob", "bob"), None),
]  # fmt: skip


def _id(read: Read) -> str:
    return f"{read.route[0]} {read.route[1]} as {read.who}"


@pytest.mark.parametrize("case", READS, ids=_id)
def test_each_read_route_is_ledgered_as_stated(world: World, case: Read) -> None:
    before = _size(world.settings)
    response = case.send(world)
    assert response.status_code == 200, response.text
    appended = _entries_after(world.settings, before)
    if case.read is None:
        assert appended == []
        return
    ((kind, body),) = appended
    assert kind == "access.read"
    assert (body["principal"]["id"], body["read"]) == (case.who, case.read)
    assert body["request_id"] == response.headers["x-request-id"]
    if case.target is not None:
        assert body["target"] == case.target(world)
    if case.packet:
        assert (body["packet_id"], body["manifest_hash"]["sha256"]) == (
            world.packet_id,
            world.manifest_sha256,
        )
    else:
        assert "packet_id" not in body


def test_every_route_of_the_audited_routers_is_decided_here() -> None:
    routes = {
        (method, route.path)
        for router in (
            ledger_routes.router,
            packet_routes.router,
            call_routes.router,
            approval_routes.router,
        )
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert routes == {case.route for case in READS} | set(WRITES)


def test_a_read_refused_by_policy_adds_no_entry(world: World) -> None:
    before = _size(world.settings)
    for path in ("/v1/calls?principal=bob", "/v1/ledger/entries"):
        assert world.client.get(path, headers=_as("alice")).status_code == 403
    # Another entry than the fixture's call: the listing case counts items.all's calls.
    carol_call = world.client.post(
        "/v1/calls", json={"entry": "items.first_ten"}, headers=_as("carol")
    )
    assert carol_call.status_code == 201
    after_call = _size(world.settings)
    own = world.client.get(f"/v1/calls/{carol_call.json()['call_id']}", headers=_as("alice"))
    assert own.status_code == 403  # alice may not read carol's call
    assert _size(world.settings) == after_call
    assert {kind for kind, _ in _entries_after(world.settings, before)} <= {
        "call.started",
        "call.finished",
        "packet.issued",
    }


def test_a_proof_in_a_verification_is_not_the_packets_proof_read(world: World) -> None:
    """``POST /v1/packets/verify`` with a proof is one ``packet.verify`` read, no more."""
    proof = world.client.get(f"/v1/packets/{world.packet_id}/proof", headers=_as("bob"))
    before = _size(world.settings)
    data = (world.settings.packet_root / f"{world.packet_id}.zip").read_bytes()
    verified = world.client.post(
        "/v1/packets/verify?trust_service_key=true&proof="
        + base64.b64encode(proof.content).decode(),
        content=data,
        headers={**_as("bob"), "Content-Type": "application/zip"},
    )
    assert verified.status_code == 200, verified.text
    ((kind, body),) = _entries_after(world.settings, before)
    assert (kind, body["read"], body["target"]["proof"]) == ("access.read", "packet.verify", True)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/ledger/entries?start=9007199254740992",
        "/v1/ledger/proofs/inclusion?seq=9007199254740992",
        "/v1/ledger/proofs/consistency?old=1&new=9007199254740992",
    ],
)
def test_a_seq_no_ledger_can_reach_is_refused_before_it_is_recorded(
    world: World, path: str
) -> None:
    """2**53: past the integers a JCS ledger entry holds, so its access.read could not be."""
    before = _size(world.settings)
    refused = world.client.get(path, headers=_as("bob"))
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")
    assert _size(world.settings) == before


def test_every_read_the_service_names_is_one_the_ledger_body_allows() -> None:
    """service.read_audit.Read and ledger's AccessReadBody (which may not import it) agree."""
    allowed = get_args(AccessReadBody.model_fields["read"].annotation)
    assert set(get_args(ReadName)) == set(allowed)
    assert {case.read for case in READS} - {None} == set(allowed)  # each one exercised here
