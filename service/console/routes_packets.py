"""Console routes: the packets list, a packet's page, and its two downloads (ledgered reads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, PlainTextResponse

from service import reads
from service.console.deps import SessionDep
from service.console.render import page
from service.console.route import ConsoleRoute
from service.console.view_packets import packet_view, packets_page
from service.deps import RuntimeDep

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
_DOWNLOAD_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@router.get("/packets")
def packets(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    before: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Packets of the calls one may see, newest first."""
    view = packets_page(runtime, session.principal, before)
    return page(
        request, "packets.html", session=session, section="packets", title="Packets", view=view
    )


@router.get("/packets/{packet_id}")
def packet(request: Request, packet_id: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    """A packet's manifest, files, claim and authority (``packet.manifest`` read, ledgered)."""
    view = packet_view(runtime, session.principal, packet_id)
    return page(
        request,
        "packet.html",
        session=session,
        section="packets",
        title=f"Packet {packet_id}",
        view=view,
    )


@router.get("/packets/{packet_id}/download")
def download(packet_id: str, runtime: RuntimeDep, session: SessionDep) -> FileResponse:
    """The packet zip (``packet.zip`` read, ledgered), as ``GET /v1/packets/{id}`` gives it."""
    path = reads.packet_path(runtime, session.principal, packet_id)
    return FileResponse(
        path, media_type="application/zip", filename=f"{packet_id}.zip", headers=_DOWNLOAD_HEADERS
    )


@router.get("/packets/{packet_id}/proof")
def proof(packet_id: str, runtime: RuntimeDep, session: SessionDep) -> Response:
    """The C2SP tlog-proof of its ``packet.issued`` entry (``packet.proof`` read, ledgered)."""
    answer = reads.packet_proof(runtime, session.principal, packet_id)
    return PlainTextResponse(
        answer.tlog_proof(),
        headers={
            **_DOWNLOAD_HEADERS,
            "Content-Disposition": f'attachment; filename="{packet_id}.tlog-proof"',
        },
    )
