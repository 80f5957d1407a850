"""Packet routes: the zip, its manifest, the proof that the ledger issued it, and verification.

``POST /v1/packets/verify`` runs the same checks as ``govex packet verify`` on an
uploaded packet zip and returns the same JSON report as ``--json``. The body is
streamed to a temporary file (bounded by ``GOVEX_PACKET_UPLOAD_MAX_BYTES``, never
held whole in memory) and removed after. Trust material comes only from the
request: pins, catalogs, a verifier key and a proof in query parameters. The
service's own ledger key is used only when asked (``trust_service_key=true``),
and the report then says so (``enforced.trusted_keys[].source`` is ``service``).
"""

from __future__ import annotations

import base64
import binascii
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any, Self

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog.authority import AuthorityStatus
from ledger.errors import KeyFormatError
from ledger.keys import parse_verifier_key
from service import read_audit, reads
from service.deps import PrincipalDep, RuntimeDep
from service.identity import Principal
from service.packets.bag_checks import verify_bag_file
from service.packets.errors import NotAPacketZip, PacketTooLarge
from service.packets.options import parse_pin
from service.packets.readers import ZipPacketReader
from service.packets.report import VerifyReport
from service.packets.verify import InclusionEvidence, verify_packet_file
from service.routes.json_route import JsonRoute
from service.runtime import Runtime

router = APIRouter(prefix="/v1/packets", tags=["packets"], route_class=JsonRoute)
VERIFY_PATH = "/v1/packets/verify"  # streams an upload within its own bound (not the app's)

_ZIP = "application/zip"
_UPLOAD_FILE = "packet.zip"
_PIN_EXAMPLE = "sha256:" + "3f" * 32


# A packet retention removed (service.retention): its ledger entries and proof remain.
_REMOVED: dict[int | str, dict[str, Any]] = {
    410: {
        "description": "Removed by the retention policy; ledger_seq is its packet.removed entry.",
        "content": {"application/problem+json": {"schema": {"type": "object"}}},
    }
}


@router.get("/{packet_id}", response_class=FileResponse, responses=_REMOVED)
def get_packet(packet_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> FileResponse:
    """The packet zip (a BagIt bag), verifiable offline with 'govex packet verify'."""
    path = reads.packet_path(runtime, principal, packet_id)
    return FileResponse(path, media_type="application/zip", filename=f"{packet_id}.zip")


@router.get("/{packet_id}/manifest", responses=_REMOVED)
def get_manifest(packet_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    """packet.json exactly as in the bag (its JCS bytes: hash them to get manifest_hash)."""
    path = reads.packet_path(runtime, principal, packet_id, read="packet.manifest")
    with ZipPacketReader(path) as reader:
        data = reader.read("packet.json")
    return Response(content=data, media_type="application/json")


@router.get(
    "/{packet_id}/proof",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def get_proof(packet_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> PlainTextResponse:
    """C2SP tlog-proof of the packet's ``packet.issued`` entry against the latest checkpoint.

    Save it as ``<packet_id>.tlog-proof`` for 'govex packet verify --proof'.
    """
    proof = reads.packet_proof(runtime, principal, packet_id)
    return PlainTextResponse(proof.tlog_proof())


def _base64(value: str | None) -> str | None:
    """Private: check that ``value`` is base64 (standard or URL-safe, padding optional)."""
    if value is None:
        return None
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64 (standard or URL-safe) of the file's bytes") from exc
    return text + "=" * (-len(text) % 4)


class VerifyOptions(BaseModel):
    """The options of ``govex packet verify``, as query parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expect_manifest_hash: str | None = Field(
        default=None,
        description="Pinned manifest hash, sha256:<hex> or blake3:<hex> (--expect-manifest-hash).",
        examples=[_PIN_EXAMPLE],
    )
    require_authority: AuthorityStatus = Field(
        default=AuthorityStatus.sealed,
        description="Lowest acceptable authority (--require-authority).",
    )
    trust_catalog: list[str] = Field(
        default_factory=list,
        description="Trusted catalog digests, repeat the parameter (--trust-catalog).",
        examples=[[_PIN_EXAMPLE]],
    )
    proof: str | None = Field(
        default=None,
        description="Base64 of the .tlog-proof file (GET /v1/packets/{id}/proof); with a key, "
        "runs ledger_inclusion (--proof).",
    )
    key: str | None = Field(
        default=None,
        description="The ledger's trusted verifier key <name>+<id>+<data> (--key).",
        examples=["govex.example/ledger+1a2b3c4d+AWNvbXBsZXRlbHktZmFrZS1rZXktZm9yLWRvY3M="],
    )
    checkpoint: str | None = Field(
        default=None,
        description="Base64 of a signed checkpoint you trust: the proof must be against its "
        "tree (--checkpoint).",
    )
    trust_service_key: bool = Field(
        default=False,
        description="With a proof and no key: trust this service's own ledger key. Reported "
        "as source 'service': it shows this service's ledger issued the packet, not that a "
        "key you hold vouches for it.",
    )
    bag_only: bool = Field(
        default=False,
        description="Only the BagIt checks (layout, bagit_manifest) on any BagIt 1.0 bag "
        "(--bag-only).",
    )

    @field_validator("expect_manifest_hash")
    @classmethod
    def _pin(cls, value: str | None) -> str | None:
        return None if value is None else parse_pin(value)

    @field_validator("trust_catalog")
    @classmethod
    def _pins(cls, value: list[str]) -> list[str]:
        return [parse_pin(item) for item in value]

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_verifier_key(value.strip()).text()
        except KeyFormatError as exc:
            raise ValueError(f"not a verifier key <name>+<id>+<data>: {exc.message}") from exc

    @field_validator("proof", "checkpoint")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        return _base64(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.bag_only and (
            self.expect_manifest_hash or self.trust_catalog or self.proof or self.key
        ):
            raise ValueError("bag_only checks the BagIt layer only: it takes no pins, proof or key")
        if self.proof is None and (self.key or self.checkpoint or self.trust_service_key):
            raise ValueError("key, checkpoint and trust_service_key check a proof: give proof too")
        if self.proof is not None and (self.key is None) == (not self.trust_service_key):
            raise ValueError("a proof needs exactly one of key or trust_service_key=true")
        return self


def _evidence(options: VerifyOptions, runtime: Runtime) -> InclusionEvidence | None:
    """Private: what ``ledger_inclusion`` runs on, from the request (or the service's key)."""
    if options.proof is None:
        return None
    checkpoint = None if options.checkpoint is None else base64.b64decode(options.checkpoint)
    proof = base64.b64decode(options.proof)
    if options.key is not None:
        key = parse_verifier_key(options.key)
        return InclusionEvidence(proof=proof, key=key, checkpoint=checkpoint)
    service_key = runtime.require_checkpointer().verifier_key
    return InclusionEvidence(
        proof=proof, key=service_key, checkpoint=checkpoint, key_source="service"
    )


def _verify(
    runtime: Runtime,
    principal: Principal,
    path: Path,
    options: VerifyOptions,
    evidence: InclusionEvidence | None,
) -> VerifyReport:
    """Private: the checks on the saved upload (run in a worker thread), then ledgered.

    Who verified which packet (and whether it passed) becomes an ``access.read`` entry
    (:mod:`service.read_audit`) before the report is returned.
    """
    if options.bag_only:
        report = verify_bag_file(path)
    else:
        report = verify_packet_file(
            path,
            expect_manifest_hash=options.expect_manifest_hash,
            require_authority=options.require_authority,
            trusted_catalog_digests=tuple(options.trust_catalog),
            inclusion=evidence,
        )
    read_audit.record_verification(runtime, principal, report)
    return report


async def _save(request: Request, target: Path, limit: int) -> None:
    """Private: stream the body to ``target``, refusing it past ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PacketTooLarge(limit=limit)
    received = 0
    with target.open("xb") as out:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise PacketTooLarge(limit=limit)
            await run_in_threadpool(out.write, chunk)  # disk writes stay off the event loop
    if received == 0 or not await run_in_threadpool(zipfile.is_zipfile, target):
        raise NotAPacketZip("the body is not a zip archive")


_PROBLEM: dict[str, Any] = {
    "application/problem+json": {"schema": {"type": "object", "additionalProperties": True}}
}


@router.post(
    VERIFY_PATH.removeprefix(router.prefix),
    response_model=VerifyReport,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The packet zip, as GET /v1/packets/{id} gives it.",
            "content": {_ZIP: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        200: {
            "description": "The verification report (also when a check fails: see ok).",
            "content": {
                "application/json": {
                    "examples": {
                        "passed": {
                            "summary": "every check passed",
                            "value": {"ok": True, "summary": "6/6 checks passed, 2 skipped"},
                        },
                        "tampered": {
                            "summary": "a data file was changed",
                            "value": {
                                "ok": False,
                                "summary": "2/3 checks passed, 5 skipped; bagit_manifest "
                                "failed at data/result.csv",
                            },
                        },
                    }
                }
            },
        },
        413: {"description": "Larger than GOVEX_PACKET_UPLOAD_MAX_BYTES.", "content": _PROBLEM},
        415: {"description": "Not application/zip, or not a zip archive.", "content": _PROBLEM},
        422: {"description": "An option is malformed (errors[] names it).", "content": _PROBLEM},
    },
)
async def verify_packet_upload(
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    options: Annotated[VerifyOptions, Query()],
) -> VerifyReport:
    """Verify an uploaded packet: the checks of 'govex packet verify', the report of '--json'.

    Send the zip as the body (``Content-Type: application/zip``) and the options as
    query parameters, e.g. ``?expect_manifest_hash=sha256:<hex>&trust_catalog=sha256:<hex>``.
    A packet that fails a check is still a 200: read ``ok`` and ``checks``.
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != _ZIP:
        raise NotAPacketZip(
            f"Content-Type is {media_type or 'missing'!r}, not {_ZIP!r}", where="Content-Type"
        )
    evidence = _evidence(options, runtime)
    limit = runtime.settings.packet_upload_max_bytes
    with tempfile.TemporaryDirectory(prefix="govex-verify-") as directory:
        path = Path(directory) / _UPLOAD_FILE
        await _save(request, path, limit)
        return await run_in_threadpool(_verify, runtime, principal, path, options, evidence)
