"""Checkpoints and proofs over HTTP, verified with ledger code against the configured key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.keys import SignerKey, VerifierKey, decode_base64
from ledger.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency, verify_inclusion
from ledger.store import LedgerStore
from ledger.tlog_proof import parse_tlog_proof, verify_tlog_proof
from service.app import create_app
from service.errors import StartupRefused
from service.runtime import build_runtime
from service.settings import Settings

PROBLEM = "application/problem+json"


def auth(name: str) -> dict[str, str]:
    """Bearer headers of an e2e principal (conftest issues the token ``tok-<name>``)."""
    return {"Authorization": f"Bearer tok-{name}"}


@pytest.fixture
def signer(world: Settings) -> SignerKey:
    return SignerKey.generate(world.origin)


@pytest.fixture
def verifier(signer: SignerKey) -> VerifierKey:
    return signer.verifier_key


@pytest.fixture
def keyed(world: Settings, signer: SignerKey, tmp_path: Path) -> Settings:
    """The e2e world with a signing key named after its origin; no periodic checkpoints."""
    key_file = tmp_path / "ledger.key"
    key_file.write_text(signer.text() + "\n")  # a trailing newline, as editors leave one
    return world.model_copy(update={"ledger_key_file": key_file, "checkpoint_interval_s": 0})


@pytest.fixture
def keyed_client(keyed: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(keyed), raise_server_exceptions=False) as test_client:
        yield test_client


def _call(client: TestClient, who: str = "alice", entry: str = "items.all") -> dict[str, Any]:
    response = client.post("/v1/calls", json={"entry": entry}, headers=auth(who))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _leaf_inputs(settings: Settings) -> list[bytes]:
    with LedgerStore.open(settings.ledger_url) as store:
        return list(store.iter_leaf_inputs())


def _b64(text: str) -> bytes:
    raw = decode_base64(text)
    assert raw is not None, f"not standard base64: {text!r}"
    return raw


def _checkpoint(client: TestClient, verifier: VerifierKey) -> tuple[str, Checkpoint]:
    response = client.get("/v1/ledger/checkpoint", headers=auth("bob"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    return response.text, open_checkpoint(response.text, verifier)


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def test_the_checkpoint_is_signed_by_the_configured_key_over_the_whole_ledger(
    keyed_client: TestClient, keyed: Settings, verifier: VerifierKey
) -> None:
    _call(keyed_client)
    _, checkpoint = _checkpoint(keyed_client, verifier)
    leaves = _leaf_inputs(keyed)
    assert checkpoint.origin == keyed.origin
    assert checkpoint.size == len(leaves)
    assert checkpoint.root == root_from_leaf_hashes([leaf_hash(x) for x in leaves])


def test_a_checkpoint_is_made_on_demand_only_when_the_ledger_grew(
    keyed_client: TestClient, keyed: Settings, verifier: VerifierKey
) -> None:
    first_note, first = _checkpoint(keyed_client, verifier)
    again_note, _ = _checkpoint(keyed_client, verifier)
    assert again_note == first_note
    _call(keyed_client)
    _, grown = _checkpoint(keyed_client, verifier)
    assert grown.size == first.size + 3  # call.started, call.finished, packet.issued
    with LedgerStore.open(keyed.ledger_url) as store:
        assert [c.size for c in store.checkpoints()] == [first.size, grown.size]


def test_inclusion_proofs_of_every_entry_verify_against_the_served_checkpoint(
    keyed_client: TestClient, keyed: Settings, verifier: VerifierKey
) -> None:
    _call(keyed_client)
    _call(keyed_client, entry="items.missing")
    leaves = _leaf_inputs(keyed)
    for seq, stored in enumerate(leaves):
        response = keyed_client.get(f"/v1/ledger/proofs/inclusion?seq={seq}", headers=auth("bob"))
        assert response.status_code == 200, response.text
        body = response.json()
        checkpoint = open_checkpoint(body["checkpoint"], verifier)
        assert (body["seq"], body["size"]) == (seq, checkpoint.size)
        assert _b64(body["leaf_input"]) == stored
        proof = [_b64(h) for h in body["proof"]]
        verify_inclusion(seq, checkpoint.size, leaf_hash(stored), proof, checkpoint.root)


def test_an_inclusion_proof_against_an_older_checkpoint_verifies_against_that_one(
    keyed_client: TestClient, verifier: VerifierKey
) -> None:
    _, old = _checkpoint(keyed_client, verifier)
    _call(keyed_client)
    _, new = _checkpoint(keyed_client, verifier)
    response = keyed_client.get(
        f"/v1/ledger/proofs/inclusion?seq=0&size={old.size}", headers=auth("bob")
    )
    body = response.json()
    assert body["size"] == old.size < new.size
    assert open_checkpoint(body["checkpoint"], verifier) == old
    proof = [_b64(h) for h in body["proof"]]
    verify_inclusion(0, old.size, leaf_hash(_b64(body["leaf_input"])), proof, old.root)


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        pytest.param("&format=tlog-proof", {}, id="format-parameter"),
        pytest.param("", {"Accept": "text/plain"}, id="accept-text"),
        pytest.param("", {"Accept": "text/plain;q=0.9, application/json;q=0.5"}, id="text-first"),
    ],
)
def test_the_tlog_proof_text_is_served_on_request_and_verifies(
    keyed_client: TestClient,
    keyed: Settings,
    verifier: VerifierKey,
    query: str,
    headers: dict[str, str],
) -> None:
    result = _call(keyed_client)
    seq = result["ledger"]["finished"]
    leaves = _leaf_inputs(keyed)  # the proof's own access.read entry comes after it
    response = keyed_client.get(
        f"/v1/ledger/proofs/inclusion?seq={seq}{query}", headers={**auth("bob"), **headers}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    proof = parse_tlog_proof(response.text)
    assert proof.index == seq
    assert proof.extra == leaves[seq]
    checkpoint = verify_tlog_proof(proof, verifier)
    assert checkpoint.size == len(leaves)


def test_json_is_the_default_and_wins_when_accept_names_it_first(
    keyed_client: TestClient,
) -> None:
    for headers in ({}, {"Accept": "application/json, text/plain"}, {"Accept": "*/*"}):
        response = keyed_client.get(
            "/v1/ledger/proofs/inclusion?seq=0", headers={**auth("bob"), **headers}
        )
        assert response.headers["content-type"] == "application/json"
        assert response.json()["seq"] == 0


def test_consistency_proofs_between_served_checkpoints_verify(
    keyed_client: TestClient, verifier: VerifierKey
) -> None:
    _, old = _checkpoint(keyed_client, verifier)
    _call(keyed_client)
    _call(keyed_client, entry="items.missing")
    _, new = _checkpoint(keyed_client, verifier)
    response = keyed_client.get(
        f"/v1/ledger/proofs/consistency?old={old.size}&new={new.size}", headers=auth("bob")
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["old"], body["new"]) == (old.size, new.size)
    proof = [_b64(h) for h in body["proof"]]
    assert proof
    verify_consistency(old.size, new.size, old.root, new.root, proof)


@pytest.mark.parametrize(("old", "new"), [(0, 1), (0, 0), (1, 1)])
def test_a_consistency_proof_from_the_empty_or_the_same_tree_is_empty(
    keyed_client: TestClient, old: int, new: int
) -> None:
    response = keyed_client.get(
        f"/v1/ledger/proofs/consistency?old={old}&new={new}", headers=auth("bob")
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"old": old, "new": new, "proof": []}


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/ledger/proofs/inclusion?seq=999", id="seq-past-the-checkpoint"),
        pytest.param("/v1/ledger/proofs/inclusion?seq=0&size=999", id="no-checkpoint-of-size"),
        pytest.param("/v1/ledger/proofs/consistency?old=2&new=1", id="old-above-new"),
        pytest.param("/v1/ledger/proofs/consistency?old=1&new=999", id="new-past-the-ledger"),
    ],
)
def test_proofs_the_ledger_cannot_give_are_out_of_range_problems(
    keyed_client: TestClient, path: str
) -> None:
    body = _problem(keyed_client.get(path, headers=auth("bob")), 422, "out_of_range")
    assert body["errors"][0]["where"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/ledger/checkpoint",
        "/v1/ledger/proofs/inclusion?seq=0",
        "/v1/ledger/proofs/consistency?old=0&new=1",
    ],
)
def test_checkpoints_and_proofs_are_for_ledger_readers(keyed_client: TestClient, path: str) -> None:
    _problem(keyed_client.get(path, headers=auth("alice")), 403, "policy_denied")
    _problem(keyed_client.get(path), 401, "unauthenticated")
    assert keyed_client.get(path, headers=auth("carol")).status_code == 200  # an operator


def test_a_packet_proof_proves_its_packet_issued_entry(
    keyed_client: TestClient, verifier: VerifierKey
) -> None:
    result = _call(keyed_client)
    response = keyed_client.get(f"/v1/packets/{result['packet_id']}/proof", headers=auth("alice"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    proof = parse_tlog_proof(response.text)
    assert proof.index == result["ledger"]["packet_issued"]
    assert proof.extra is not None
    entry = json.loads(proof.extra)
    assert entry["kind"] == "packet.issued"
    assert entry["body"]["packet_id"] == result["packet_id"]
    assert entry["body"]["manifest_hash"] == result["manifest_hash"]
    checkpoint = verify_tlog_proof(proof, verifier)
    assert checkpoint.size > proof.index


def test_a_packet_proof_follows_the_packet_read_policy(keyed_client: TestClient) -> None:
    result = _call(keyed_client, who="carol", entry="items.secret")
    path = f"/v1/packets/{result['packet_id']}/proof"
    _problem(keyed_client.get(path, headers=auth("alice")), 403, "policy_denied")
    assert keyed_client.get(path, headers=auth("carol")).status_code == 200
    _problem(
        keyed_client.get("/v1/packets/01ARZ3NDEKTSV4RRFFQ69G5FAV/proof", headers=auth("carol")),
        404,
        "not_found",
    )


@pytest.mark.parametrize(
    "path",
    ["/v1/ledger/checkpoint", "/v1/ledger/proofs/inclusion?seq=0"],
)
def test_without_a_signing_key_checkpoint_endpoints_answer_503(
    client: TestClient, path: str
) -> None:
    body = _problem(client.get(path, headers=auth("bob")), 503, "no_signing_key")
    assert body["detail"].startswith("no ledger signing key configured")
    assert "Retry-After" not in client.get(path, headers=auth("bob")).headers


def test_without_a_signing_key_a_packet_proof_answers_503(client: TestClient) -> None:
    result = _call(client)
    response = client.get(f"/v1/packets/{result['packet_id']}/proof", headers=auth("alice"))
    _problem(response, 503, "no_signing_key")


def test_without_a_signing_key_calls_and_consistency_proofs_still_work(
    client: TestClient,
) -> None:
    _call(client)
    response = client.get("/v1/ledger/proofs/consistency?old=1&new=4", headers=auth("bob"))
    assert response.status_code == 200, response.text


def test_a_key_not_named_after_the_origin_is_refused_naming_both(
    keyed: Settings, tmp_path: Path
) -> None:
    other = SignerKey.generate("govex.test/ledger/other")
    key_file = tmp_path / "other.key"
    key_file.write_text(other.text())
    settings = keyed.model_copy(update={"ledger_key_file": key_file})
    with pytest.raises(StartupRefused) as caught:
        build_runtime(settings)
    message = caught.value.message
    assert "govex.test/ledger/other" in message
    assert keyed.origin in message
    assert other.text() not in message
    with pytest.raises(StartupRefused), TestClient(create_app(settings)):
        pass


def test_a_file_that_is_not_a_signer_key_is_refused_without_echoing_it(
    keyed: Settings, signer: SignerKey, tmp_path: Path
) -> None:
    secret = signer.text()
    key_file = tmp_path / "bad.key"
    key_file.write_text(secret[:-6] + "A" * 6)  # the right shape, the wrong key id for the seed
    with pytest.raises(StartupRefused, match="does not hold a signer key") as caught:
        build_runtime(keyed.model_copy(update={"ledger_key_file": key_file}))
    data = secret.split("+", 4)[4]  # PRIVATE+KEY+<name>+<key id>+<base64>: base64 may hold "+"
    assert len(data) >= 20
    assert data[:20] not in str(caught.value)
    assert caught.value.__cause__ is None
    missing = keyed.model_copy(update={"ledger_key_file": tmp_path / "absent.key"})
    with pytest.raises(StartupRefused, match="cannot be read"):
        build_runtime(missing)


def test_a_verifier_key_file_is_refused_as_a_signing_key(
    keyed: Settings, signer: SignerKey, tmp_path: Path
) -> None:
    key_file = tmp_path / "public.key"
    key_file.write_text(signer.verifier_key.text())
    with pytest.raises(StartupRefused, match="PRIVATE\\+KEY"):
        build_runtime(keyed.model_copy(update={"ledger_key_file": key_file}))


def test_periodic_checkpoints_follow_the_ledger(keyed: Settings, verifier: VerifierKey) -> None:
    settings = keyed.model_copy(update={"checkpoint_interval_s": 0.05})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        _call(client)
        size = len(_leaf_inputs(settings))
        deadline = time.monotonic() + 10
        with LedgerStore.open(settings.ledger_url) as store:
            while (latest := store.latest_checkpoint()) is None or latest.size < size:
                assert time.monotonic() < deadline, "no periodic checkpoint within 10 s"
                time.sleep(0.02)
        assert open_checkpoint(latest.note, verifier).size == size


def test_entries_pages_link_to_the_next_until_the_end(
    keyed_client: TestClient, keyed: Settings
) -> None:
    for _ in range(3):
        _call(keyed_client)
    leaves = _leaf_inputs(keyed)
    seen: list[int] = []
    sizes: list[int] = []
    kinds: dict[int, str] = {}
    url: str | None = "/v1/ledger/entries?limit=4"
    while url is not None:
        page = keyed_client.get(url, headers=auth("bob")).json()
        sizes.append(page["size"])
        assert page["start"] == len(seen)
        seen.extend(e["seq"] for e in page["entries"])
        kinds.update((e["seq"], e["kind"]) for e in page["entries"])
        url = page["next"]
    # Each page read is ledgered (access.read) before the page is read: the size grows by
    # one a page, the reader's own entries are paged too, and the last page ends the ledger.
    assert sizes == list(range(len(leaves) + 1, len(leaves) + 1 + len(sizes)))
    assert seen == list(range(sizes[-1]))
    assert {kinds[seq] for seq in seen[len(leaves) :]} == {"access.read"}
    past = keyed_client.get(f"/v1/ledger/entries?start={len(seen) + 5}", headers=auth("bob"))
    assert past.json()["entries"] == []
    assert past.json()["next"] is None
