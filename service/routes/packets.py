"""Packet routes: the zip, its manifest, and the proof that the ledger issued it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, PlainTextResponse, Response

from service import reads
from service.deps import PrincipalDep, RuntimeDep
from service.packets.readers import ZipPacketReader

router = APIRouter(prefix="/v1/packets", tags=["packets"])


@router.get("/{packet_id}", response_class=FileResponse)
def get_packet(packet_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> FileResponse:
    """The packet zip (a BagIt bag), verifiable offline with 'govex packet verify'."""
    path = reads.packet_path(runtime, principal, packet_id)
    return FileResponse(path, media_type="application/zip", filename=f"{packet_id}.zip")


@router.get("/{packet_id}/manifest")
def get_manifest(packet_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> Response:
    """packet.json exactly as in the bag (its JCS bytes: hash them to get manifest_hash)."""
    path = reads.packet_path(runtime, principal, packet_id)
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
