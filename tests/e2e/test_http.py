"""The HTTP API end to end, in-process: calls, packets, problems, ledger order."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import structlog
from fastapi.testclient import TestClient

from ledger.store import LedgerStore
from service.packets.readers import ZipPacketReader
from service.packets.verify import verify_packet
from service.settings import Settings

PROBLEM = "application/problem+json"


def auth(name: str) -> dict[str, str]:
    """Bearer headers of an e2e principal (conftest issues the token ``tok-<name>``)."""
    return {"Authorization": f"Bearer tok-{name}"}


def _call(client: TestClient, who: str, entry: str, **body: Any) -> Any:
    return client.post("/v1/calls", json={"entry": entry, **body}, headers=auth(who))


def _ledger(world: Settings) -> list[dict[str, Any]]:
    store = LedgerStore.open(world.ledger_url)
    try:
        return [e.model_dump() for e in store.list_entries(0, 1000)]
    finally:
        store.close()


def test_catalog_lists_every_entry_with_its_digest(client: TestClient) -> None:
    response = client.get("/v1/catalog", headers=auth("alice"))
    assert response.status_code == 200
    body = response.json()
    assert body["authority_status"] == "sealed"
    ids = [e["id"] for e in body["entries"]]
    assert ids == sorted(ids)
    assert "items.by_tenant" in ids
    assert all(len(e["entry_digest"]["sha256"]) == 64 for e in body["entries"])
    one = client.get("/v1/catalog/items.by_tenant", headers=auth("alice")).json()
    assert one["entry"]["params"]["tenant"]["choices"] == ["acme", "globex"]
    assert (
        one["entry_digest"]
        == next(e for e in body["entries"] if e["id"] == "items.by_tenant")["entry_digest"]
    )


def test_a_packet_is_fetched_and_verifies_with_its_pinned_manifest_hash(
    client: TestClient, tmp_path: Path
) -> None:
    response = _call(
        client, "alice", "items.by_tenant", params={"tenant": "acme", "min_amount": 10}
    )
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["verdict"] == "ran_clean"
    assert result["exit_code"] == 0
    assert result["complete"] is True
    assert response.headers["Location"] == f"/v1/calls/{result['call_id']}"

    packet = client.get(f"/v1/packets/{result['packet_id']}", headers=auth("alice"))
    assert packet.status_code == 200
    assert packet.headers["content-type"] == "application/zip"
    path = tmp_path / "p.zip"
    path.write_bytes(packet.content)
    with ZipPacketReader(path) as reader:
        report = verify_packet(
            reader, expect_manifest_hash="sha256:" + result["manifest_hash"]["sha256"]
        )
    assert report.ok, report.summary()
    assert [c.name for c in report.checks if c.status == "pass"][:5] == [
        "layout",
        "schema",
        "bagit_manifest",
        "file_digests",
        "manifest_hash",
    ]

    manifest = client.get(f"/v1/packets/{result['packet_id']}/manifest", headers=auth("alice"))
    assert hashlib.sha256(manifest.content).hexdigest() == result["manifest_hash"]["sha256"]
    document = manifest.json()
    assert document["contract"]["identity"]["id"] == "alice"
    assert document["contract"]["inputs"] == {"tenant": "acme", "min_amount": 10}
    assert document["ledger"] == {
        "origin": "govex.test/ledger/e2e",
        "call_seq": result["ledger"]["started"],
    }
    assert "tok-alice" not in manifest.text
    rows = document["files"][0]["rows"]
    with zipfile.ZipFile(io.BytesIO(packet.content)) as archive:
        data = archive.read(f"{result['packet_id']}/data/result.jsonl").decode()
    assert rows == len(data.splitlines()) == result["rows"]
    assert all('"tenant"' not in line for line in data.splitlines())  # the query's own columns only


def test_ledger_records_started_finished_issued_in_that_order(
    client: TestClient, world: Settings
) -> None:
    result = _call(client, "alice", "items.all").json()
    entries = _ledger(world)
    kinds = [(e["kind"], e["body"].get("call_id")) for e in entries]
    assert kinds[0] == ("service.started", None)
    mine = [e for e in entries if e["body"].get("call_id") == result["call_id"]]
    assert [e["kind"] for e in mine] == ["call.started", "call.finished", "packet.issued"]
    assert [e["seq"] for e in mine] == [
        result["ledger"]["started"],
        result["ledger"]["finished"],
        result["ledger"]["packet_issued"],
    ]
    assert mine[1]["body"]["result_digest"] is not None
    assert mine[2]["body"]["manifest_hash"] == result["manifest_hash"]
    assert mine[0]["body"]["contract"]["identity"]["key_id"] == "k-alice"
    store = LedgerStore.open(world.ledger_url)
    try:
        assert store.verify().size == len(entries)
    finally:
        store.close()


def test_csv_packets_carry_a_header_and_every_row(client: TestClient) -> None:
    result = _call(client, "carol", "items.first_ten", format="csv").json()
    assert result["verdict"] == "ran_clean"
    packet = client.get(f"/v1/packets/{result['packet_id']}", headers=auth("carol")).content
    with zipfile.ZipFile(io.BytesIO(packet)) as archive:
        text = archive.read(f"{result['packet_id']}/data/result.csv").decode()
    assert text.splitlines()[0] == "id,tenant,name,amount"
    assert len(text.splitlines()) == 11


def test_max_rows_cut_is_never_silent(client: TestClient) -> None:
    result = _call(client, "alice", "items.first_ten").json()
    assert result["verdict"] == "ran_clean"
    assert result["rows"] == 10
    assert result["complete"] is False
    assert result["contract"]["max_rows"] == 10


def test_exhaustive_absence_claim_is_evaluated(client: TestClient) -> None:
    result = _call(client, "alice", "items.missing").json()
    assert result["rows"] == 0
    assert result["claim"] == {
        "expect": "empty",
        "surface": "exhaustive",
        "verdict": "ABSENT",
        "reason": None,
    }


def test_bad_parameters_are_refused_by_name_and_ledgered(
    client: TestClient, world: Settings
) -> None:
    response = _call(
        client,
        "alice",
        "items.by_tenant",
        params={"tenant": "acme", "min_amount": 5000, "colour": "red"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["code"] == "invalid_input"
    assert problem["hint"]
    assert {e["parameter"] for e in problem["errors"]} == {"min_amount", "colour"}
    assert problem["request_id"] == response.headers["X-Request-ID"]
    denied = [e for e in _ledger(world) if e["kind"] == "call.denied"]
    assert denied[-1]["body"]["call_id"] == problem["call_id"]
    assert denied[-1]["seq"] == problem["ledger_seq"]
    assert denied[-1]["body"]["code"] == "invalid_input"
    assert "min_amount" in denied[-1]["body"]["reason"]


def test_wrong_types_are_refused_with_the_parameter_named(client: TestClient) -> None:
    problem = _call(
        client, "alice", "items.by_tenant", params={"tenant": "acme", "min_amount": "ten"}
    ).json()
    assert problem["code"] == "invalid_input"
    assert [e["parameter"] for e in problem["errors"]] == ["min_amount"]
    assert problem["errors"][0]["pointer"] == "/params/min_amount"


def test_secret_like_input_is_refused_and_never_echoed(client: TestClient, world: Settings) -> None:
    secret = "AKIAIOSFODNN7EXAMPLE"
    response = _call(client, "alice", "items.by_tenant", params={"tenant": secret})
    assert response.status_code == 422
    assert secret not in response.text
    assert all(secret not in str(e) for e in _ledger(world))


def test_cross_tenant_call_is_denied_by_policy_and_ledgered(
    client: TestClient, world: Settings
) -> None:
    response = _call(client, "alice", "items.by_tenant", params={"tenant": "globex"})
    assert response.status_code == 403
    problem = response.json()
    assert problem["code"] == "policy_denied"
    assert problem["determining_policies"] == ["forbid-cross-tenant"]
    denied = _ledger(world)[problem["ledger_seq"]]
    assert denied["kind"] == "call.denied"
    assert denied["body"]["contract"]["policy"]["decision"] == "deny"
    assert denied["body"]["contract"]["tenant_relation"] == "cross"


def test_tenant_parameter_defaults_to_the_callers_tenant(client: TestClient) -> None:
    result = _call(client, "alice", "items.by_tenant").json()
    assert result["contract"]["inputs"]["tenant"] == "acme"
    assert result["contract"]["tenant_relation"] == "own"


def test_sensitive_entries_are_for_operators(client: TestClient) -> None:
    assert _call(client, "alice", "items.secret").status_code == 403
    assert _call(client, "carol", "items.secret").status_code == 201


def test_unknown_entry_is_404_and_ledgered(client: TestClient, world: Settings) -> None:
    problem = _call(client, "alice", "items.nope").json()
    assert problem["status"] == 404
    assert problem["code"] == "unknown_entry"
    assert _ledger(world)[problem["ledger_seq"]]["kind"] == "call.denied"


def test_timeout_gives_timed_out_and_no_packet(client: TestClient, world: Settings) -> None:
    response = _call(client, "alice", "items.slow")
    assert response.status_code == 201
    result = response.json()
    assert result["verdict"] == "timed_out"
    assert result["exit_code"] == 3
    assert result["packet_id"] is None
    finished = _ledger(world)[result["ledger"]["finished"]]
    assert finished["kind"] == "call.finished"
    assert finished["body"]["verdict"] == "timed_out"
    assert list(world.packet_root.glob("*.zip")) == []


def test_dry_run_returns_the_contract_and_runs_nothing(client: TestClient, world: Settings) -> None:
    before = len(_ledger(world))
    response = _call(client, "bob", "items.all", mode="dry_run")
    assert response.status_code == 200
    result = response.json()
    assert result["verdict"] is None
    assert result["contract"]["mode"] == "dry_run"
    assert result["contract"]["policy"]["decision"] == "allow"
    # bob (auditor) may dry-run, but a run of his would be denied: the report says so.
    assert result["dry_run"]["would_run"] is False
    assert [(c["check"], c["passed"]) for c in result["dry_run"]["checks"]] == [
        ("entry", True),
        ("inputs", True),
        ("policy", False),
    ]
    ledger = _ledger(world)
    assert len(ledger) == before + 1  # the attempt is ledgered; nothing started
    assert ledger[-1]["kind"] == "call.dry_run"
    assert ledger[-1]["body"]["contract"] == result["contract"]
    assert result["ledger"] == {
        "started": None,
        "finished": None,
        "packet_issued": None,
        "dry_run": ledger[-1]["seq"],
    }
    assert list(world.packet_root.glob("*.zip")) == []
    analyst = _call(client, "alice", "items.all", mode="dry_run").json()["dry_run"]
    assert analyst["would_run"] is True
    assert all(c["passed"] for c in analyst["checks"])


def test_missing_or_unknown_credentials_are_401_problems(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = client.get("/v1/catalog", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["code"] == "unauthenticated"


def test_call_status_and_packet_reads_follow_policy(client: TestClient) -> None:
    result = _call(client, "alice", "items.all").json()
    status = client.get(f"/v1/calls/{result['call_id']}", headers=auth("alice")).json()
    assert status["state"] == "completed"
    assert status["packet_id"] == result["packet_id"]
    assert client.get(f"/v1/packets/{result['packet_id']}", headers=auth("bob")).status_code == 200
    assert client.get("/v1/calls/01NOPE", headers=auth("alice")).status_code == 404
    assert client.get("/v1/packets/..%2F..%2Fetc", headers=auth("alice")).status_code == 404


def test_ledger_entries_are_for_auditors(client: TestClient) -> None:
    _call(client, "alice", "items.all")
    assert client.get("/v1/ledger/entries", headers=auth("alice")).status_code == 403
    page = client.get("/v1/ledger/entries?start=0&limit=2", headers=auth("bob")).json()
    assert [e["seq"] for e in page["entries"]] == [0, 1]
    assert page["next"] == "/v1/ledger/entries?start=2&limit=2"


def test_malformed_bodies_and_unknown_routes_are_problems(client: TestClient) -> None:
    response = client.post(
        "/v1/calls", json={"entry": "items.all", "mode": "sideways"}, headers=auth("alice")
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_request"
    assert problem["errors"][0]["pointer"] == "/mode"
    missing = client.get("/v1/nothing-here", headers=auth("alice"))
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)
    assert "Traceback" not in missing.text


def test_healthz_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/calls",
        "/v1/calls/{call_id}",
        "/v1/packets/{packet_id}",
        "/v1/packets/{packet_id}/manifest",
        "/v1/catalog",
        "/v1/catalog/{entry_id}",
        "/v1/ledger/entries",
        "/healthz",
    } <= set(paths)


def test_a_failure_after_call_started_still_finishes_the_call(
    client: TestClient, world: Settings
) -> None:
    staging = world.packet_root / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.write_text("not a folder")  # the builder cannot stage: an unexpected I/O failure
    response = _call(client, "alice", "items.all")
    assert response.status_code == 500
    problem = response.json()
    assert problem["code"] == "internal_error"
    assert "Traceback" not in response.text
    assert "staging" not in problem["detail"]
    entries = _ledger(world)
    started, finished = entries[-2], entries[-1]
    assert (started["kind"], finished["kind"]) == ("call.started", "call.finished")
    assert finished["body"]["call_id"] == started["body"]["call_id"]
    assert finished["body"]["verdict"] == "error_running"
    assert finished["body"]["error"] == "internal error"


def test_the_request_id_is_logged_and_the_credential_never_is(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        response = _call(client, "alice", "items.by_tenant", params={"tenant": "globex"})
    request_id = response.json()["request_id"]
    assert any(entry.get("request_id") == request_id and entry["status"] == 403 for entry in logs)
    assert "tok-alice" not in repr(logs)


def test_every_problem_type_resolves_to_its_page(client: TestClient) -> None:
    from service.problems import documented_kinds  # noqa: PLC0415 - this test's subject

    index = client.get("/problems")
    assert index.status_code == 200
    for code, kind in documented_kinds().items():
        assert f'href="/problems/{code}"' in index.text
        page = client.get(f"/problems/{code}")
        assert page.status_code == 200, code
        assert page.headers["content-type"].startswith("text/html")
        assert f"<code>{code}</code>" in page.text
        assert f"<dd>{kind.status}</dd>" in page.text
    refused = client.post("/v1/calls", json={"entry": "items.nope"}, headers=auth("alice"))
    assert client.get(refused.json()["type"]).status_code == 200  # a real answer's type resolves
    missing = client.get("/problems/no_such_problem")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(PROBLEM)


def test_openapi_documents_a_problem_for_every_operation_with_every_problem_type(
    client: TestClient,
) -> None:
    from service.problems import PROBLEM_MEDIA_TYPE, documented_kinds  # noqa: PLC0415

    document = client.get("/openapi.json").json()
    examples = document["components"]["examples"]
    assert set(examples) == {f"problem-{code}" for code in documented_kinds()}
    for name, example in examples.items():
        assert example["value"]["type"] == f"/problems/{name.removeprefix('problem-')}"
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]
    assert operations
    for path, method, operation in operations:
        default = operation["responses"]["default"]["content"][PROBLEM_MEDIA_TYPE]
        assert default["schema"] == {"$ref": "#/components/schemas/Problem"}, (path, method)
        assert len(default["examples"]) == len(examples)
        if "422" in operation["responses"]:
            assert PROBLEM_MEDIA_TYPE in operation["responses"]["422"]["content"]
    assert "HTTPValidationError" not in str(document["paths"])
    call_request = document["components"]["schemas"]["CallRequest"]
    assert call_request["examples"][0]["entry"] == "invoices.unpaid"


def test_a_calls_claim_verdict_is_in_its_status_and_its_ledger_entry(
    client: TestClient, world: Settings
) -> None:
    result = _call(client, "alice", "items.missing").json()
    assert result["claim"]["verdict"] in {"ABSENT", "EVIDENCE_PRESENT", "NOT_EVIDENCED"}
    status = client.get(f"/v1/calls/{result['call_id']}", headers=auth("alice")).json()
    assert status["claim"] == {
        "verdict": result["claim"]["verdict"],
        "reason": result["claim"]["reason"],
    }
    finished = _ledger(world)[result["ledger"]["finished"]]
    assert finished["body"]["claim"] == result["claim"]
    plain = _call(client, "alice", "items.all").json()  # an entry with no claim
    assert (
        client.get(f"/v1/calls/{plain['call_id']}", headers=auth("alice")).json()["claim"] is None
    )
