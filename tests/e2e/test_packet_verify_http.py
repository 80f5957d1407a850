"""POST /v1/packets/verify: the checks of `govex packet verify` on an uploaded zip, in-process.

The body is the zip (application/zip), the options are query parameters, the answer is the
report of `--json`. Trust material comes only from the request, or from the service's own
key when asked, and then the report says so. Refusals are RFC 9457 problems.
"""

from __future__ import annotations

import base64
import json
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ledger.keys import VerifierKey
from service.app import create_app
from service.cli import app as cli
from service.packets.report import VerifyReport
from service.settings import Settings
from tests.e2e.packet_world import HEADERS, issue, proof_of, signed_world

ZIP = {**HEADERS, "Content-Type": "application/zip"}
URL = "/v1/packets/verify"
UPLOAD_BOUND = 2_000_000


@pytest.fixture
def signed(tmp_path: Path) -> tuple[Settings, VerifierKey]:
    return signed_world(tmp_path, packet_upload_max_bytes=UPLOAD_BOUND)


@pytest.fixture
def client(signed: tuple[Settings, VerifierKey]) -> Iterator[TestClient]:
    with TestClient(create_app(signed[0]), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def packet(client: TestClient, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return issue(client, tmp_path)


def _b64(path: Path) -> str:
    return base64.urlsafe_b64encode(path.read_bytes()).decode()


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"], body["type"]) == (
        status,
        code,
        f"/problems/{code}",
    )
    return body


def test_an_uploaded_packet_gets_the_report_of_the_cli_json(
    client: TestClient, packet: tuple[Path, dict[str, Any]]
) -> None:
    path, result = packet
    pin = "sha256:" + result["manifest_hash"]["sha256"]
    catalog = "sha256:" + result["contract"]["catalog"]["catalog_digest"]["sha256"]
    response = client.post(
        URL,
        content=path.read_bytes(),
        headers=ZIP,
        params={"expect_manifest_hash": pin, "trust_catalog": [catalog]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    report = VerifyReport.model_validate_json(response.text)  # the schema's model, strictly
    assert report.ok
    assert body["summary"] == "7/7 checks passed, 1 skipped"
    assert body["enforced"]["manifest_hash"] == pin
    assert body["enforced"]["trusted_catalogs"] == [catalog]
    assert body["packet_id"] == result["packet_id"]
    args = [
        "packet",
        "verify",
        str(path),
        "--expect-manifest-hash",
        pin,
        "--trust-catalog",
        catalog,
    ]
    assert body == json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)


def test_a_tampered_upload_is_a_200_report_naming_the_check_and_place(
    client: TestClient, packet: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, _ = packet
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith("data/result.jsonl"):
                data = data.replace(b'"item 7"', b'"item 8"')
            target.writestr(info, data)
    response = client.post(URL, content=tampered.read_bytes(), headers=ZIP)
    assert response.status_code == 200
    report = VerifyReport.model_validate_json(response.text)
    assert not report.ok
    assert (report.check("bagit_manifest").status, report.check("bagit_manifest").where) == (
        "fail",
        "data/result.jsonl",
    )
    damaged = report.file("data/result.jsonl").damaged
    assert [d.first_row for d in damaged] == [0]  # row 7 lies in the first ~1 MiB chunk


def test_ledger_inclusion_runs_with_a_proof_and_a_key_from_the_request(
    client: TestClient,
    packet: tuple[Path, dict[str, Any]],
    signed: tuple[Settings, VerifierKey],
    tmp_path: Path,
) -> None:
    path, result = packet
    proof = proof_of(client, result["packet_id"], tmp_path)
    key = signed[1]
    response = client.post(
        URL,
        content=path.read_bytes(),
        headers=ZIP,
        params={"proof": _b64(proof), "key": key.text()},
    )
    body = response.json()
    assert body["ok"], body["summary"]
    assert body["checks"][-1]["name"] == "ledger_inclusion"
    assert body["checks"][-1]["status"] == "pass"
    assert body["enforced"]["trusted_keys"] == [
        {"name": key.name, "key_id": key.key_id.hex(), "key": key.text(), "source": "given"}
    ]
    assert body["enforced"]["origin"] == key.name


def test_the_service_key_is_used_only_when_asked_and_then_reported(
    client: TestClient,
    packet: tuple[Path, dict[str, Any]],
    signed: tuple[Settings, VerifierKey],
    tmp_path: Path,
) -> None:
    path, result = packet
    proof = _b64(proof_of(client, result["packet_id"], tmp_path))
    alone = client.post(URL, content=path.read_bytes(), headers=ZIP, params={"proof": proof})
    _problem(alone, 422, "invalid_request")  # a proof and no key: nothing is trusted silently
    response = client.post(
        URL,
        content=path.read_bytes(),
        headers=ZIP,
        params={"proof": proof, "trust_service_key": "true"},
    )
    body = response.json()
    assert body["ok"], body["summary"]
    (trusted,) = body["enforced"]["trusted_keys"]
    assert (trusted["source"], trusted["key"]) == ("service", signed[1].text())


def test_a_stranger_key_fails_ledger_inclusion_at_the_checkpoint(
    client: TestClient, packet: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    path, result = packet
    stranger = signed_world(tmp_path / "other")[1]
    proof = _b64(proof_of(client, result["packet_id"], tmp_path))
    response = client.post(
        URL, content=path.read_bytes(), headers=ZIP, params={"proof": proof, "key": stranger.text()}
    )
    check = VerifyReport.model_validate_json(response.text).check("ledger_inclusion")
    assert (check.status, check.where) == ("fail", "proof checkpoint signatures")


@pytest.mark.parametrize(
    ("params", "pointer"),
    [
        pytest.param({"expect_manifest_hash": "md5:00"}, "/expect_manifest_hash", id="bad-pin"),
        pytest.param({"trust_catalog": ["sha256:xyz"]}, "/trust_catalog", id="bad-catalog"),
        pytest.param({"proof": "@@@", "key": "a+b+c"}, "/proof", id="bad-base64"),
        pytest.param({"key": "k"}, "", id="key-without-proof"),
        pytest.param({"surprise": "1"}, "/surprise", id="unknown-option"),
        pytest.param({"bag_only": "true", "expect_manifest_hash": "sha256:" + "0" * 64}, "",
                     id="bag-only-with-a-pin"),
    ],
)  # fmt: skip
def test_malformed_options_are_422_naming_the_parameter(
    client: TestClient,
    packet: tuple[Path, dict[str, Any]],
    params: dict[str, Any],
    pointer: str,
) -> None:
    response = client.post(URL, content=packet[0].read_bytes(), headers=ZIP, params=params)
    body = _problem(response, 422, "invalid_request")
    pointers = [e["pointer"] for e in body["errors"]]
    assert any(p.endswith(pointer) for p in pointers) if pointer else pointers, body


def test_bag_only_runs_the_bagit_checks(
    client: TestClient, packet: tuple[Path, dict[str, Any]]
) -> None:
    response = client.post(
        URL, content=packet[0].read_bytes(), headers=ZIP, params={"bag_only": "true"}
    )
    body = response.json()
    assert (body["ok"], body["enforced"]["mode"]) == (True, "bag")
    assert [c["name"] for c in body["checks"]] == ["layout", "bagit_manifest"]


def test_a_body_over_the_bound_is_413_whether_declared_or_streamed(
    client: TestClient, signed: tuple[Settings, VerifierKey]
) -> None:
    big = b"PK" + bytes(UPLOAD_BOUND)
    body = _problem(client.post(URL, content=big, headers=ZIP), 413, "packet_too_large")
    assert str(UPLOAD_BOUND) in body["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bound holds while streaming
        for _ in range(UPLOAD_BOUND // 65_536 + 2):
            yield bytes(65_536)

    _problem(client.post(URL, content=chunks(), headers=ZIP), 413, "packet_too_large")
    assert signed[0].packet_upload_max_bytes == UPLOAD_BOUND


def test_a_body_that_is_not_a_zip_is_415(client: TestClient) -> None:
    body = _problem(client.post(URL, content=b"hello", headers=ZIP), 415, "not_a_zip")
    assert body["detail"] == "the body is not a zip archive"
    _problem(client.post(URL, content=b"", headers=ZIP), 415, "not_a_zip")


def test_a_body_that_is_not_declared_a_zip_is_415(
    client: TestClient, packet: tuple[Path, dict[str, Any]]
) -> None:
    headers = {**HEADERS, "Content-Type": "application/octet-stream"}
    body = _problem(
        client.post(URL, content=packet[0].read_bytes(), headers=headers), 415, "not_a_zip"
    )
    assert "application/octet-stream" in body["detail"]


def test_verification_is_authenticated_like_every_route(
    client: TestClient, packet: tuple[Path, dict[str, Any]]
) -> None:
    response = client.post(
        URL, content=packet[0].read_bytes(), headers={"Content-Type": "application/zip"}
    )
    _problem(response, 401, "unauthenticated")
    response = client.post(
        URL,
        content=packet[0].read_bytes(),
        headers={"Content-Type": "application/zip", "Authorization": "Bearer tok-nobody"},
    )
    _problem(response, 401, "unauthenticated")


def test_the_upload_leaves_no_file_behind(
    client: TestClient,
    packet: tuple[Path, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert client.post(URL, content=packet[0].read_bytes(), headers=ZIP).json()["ok"]
    assert client.post(URL, content=b"nope", headers=ZIP).status_code == 415
    assert list(scratch.iterdir()) == []


def test_the_openapi_documents_the_zip_body_the_options_and_the_problems(
    client: TestClient,
) -> None:
    operation = client.get("/openapi.json").json()["paths"][URL]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/zip"}
    names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert {
        "expect_manifest_hash",
        "require_authority",
        "trust_catalog",
        "proof",
        "key",
        "checkpoint",
        "trust_service_key",
        "bag_only",
    } <= names
    assert {"200", "413", "415", "422"} <= set(operation["responses"])
    assert operation["responses"]["200"]["content"]["application/json"]["examples"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/VerifyReport")
