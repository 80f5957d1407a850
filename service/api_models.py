"""HTTP response models: what routes return, shaped from core results."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from catalog.digest import DigestSet
from catalog.model import Entry
from ledger.keys import encode_base64
from service.call_index import CallQuery, CallRecord
from service.calls import CallResult
from service.dry_run import GateCheck
from service.packets.manifest import Claim
from service.proofs import InclusionProof
from service.sealed_catalog import SealedCatalog


class EntrySummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    title: str
    description: str
    entry_digest: DigestSet
    href: str

    @classmethod
    def of(cls, entry: Entry, digest: DigestSet) -> EntrySummary:
        return cls(
            id=entry.id,
            kind=entry.kind,
            title=entry.title,
            description=entry.description,
            entry_digest=digest,
            href=f"/v1/catalog/{entry.id}",
        )


class CatalogView(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    catalog_digest: DigestSet
    authority_status: str
    entries: list[EntrySummary]

    @classmethod
    def of(cls, sealed: SealedCatalog, digests: dict[str, DigestSet]) -> CatalogView:
        return cls(
            name=sealed.catalog.name,
            version=sealed.catalog.version,
            catalog_digest=sealed.digest,
            authority_status=sealed.authority.value,
            entries=[EntrySummary.of(e, digests[e.id]) for e in sealed.catalog.entries],
        )


class EntryView(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry: dict[str, Any] = Field(description="The resolved entry exactly as sealed.")
    entry_digest: DigestSet
    authority_status: str


class LedgerSeqs(BaseModel):
    model_config = ConfigDict(frozen=True)

    started: int | None
    finished: int | None
    packet_issued: int | None
    dry_run: int | None = Field(default=None, description="The call.dry_run entry of a dry run.")


class DryRunView(BaseModel):
    """What a dry run found: each check a run would meet, in order, and their conjunction."""

    model_config = ConfigDict(frozen=True)

    would_run: bool = Field(description="True when a run would pass every check.")
    checks: list[GateCheck]


class CallResponse(BaseModel):
    """The outcome of ``POST /v1/calls``."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    mode: str
    verdict: str | None = Field(description="FORMATS section 6 verdict; null for a dry run.")
    exit_code: int | None
    ledger: LedgerSeqs
    packet_id: str | None
    manifest_hash: DigestSet | None
    rows: int | None
    bytes: int | None
    complete: bool | None
    claim: Claim | None
    duration_ms: int | None
    error: str | None
    contract: dict[str, Any]
    dry_run: DryRunView | None = Field(
        default=None, description="A dry run's checks; null for a run."
    )
    links: dict[str, str]

    @classmethod
    def of(cls, result: CallResult) -> CallResponse:
        links = {"call": f"/v1/calls/{result.call_id}"}
        if result.packet_id:
            links["packet"] = f"/v1/packets/{result.packet_id}"
            links["manifest"] = f"/v1/packets/{result.packet_id}/manifest"
        return cls(
            call_id=result.call_id,
            mode=result.contract.mode,
            verdict=result.verdict.value if result.verdict else None,
            exit_code=result.verdict.exit_code if result.verdict else None,
            ledger=LedgerSeqs(
                started=result.started_seq,
                finished=result.finished_seq,
                packet_issued=result.packet_seq,
                dry_run=result.dry_run.seq if result.dry_run else None,
            ),
            packet_id=result.packet_id,
            manifest_hash=result.manifest_hash,
            rows=result.rows,
            bytes=result.bytes,
            complete=result.complete,
            claim=result.claim,
            duration_ms=result.duration_ms,
            error=result.error,
            contract=result.contract.record(),
            dry_run=(
                DryRunView(would_run=result.dry_run.would_run, checks=list(result.dry_run.checks))
                if result.dry_run
                else None
            ),
            links=links,
        )


class CallStatus(BaseModel):
    """``GET /v1/calls/{id}``: where a call stands."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    entry: str
    principal: str
    state: str
    verdict: str | None
    ledger: LedgerSeqs
    packet_id: str | None
    manifest_hash: DigestSet | None
    rows: int | None = Field(description="Rows written so far (while running) or in all.")
    bytes: int | None = Field(description="Bytes written so far (while running) or in all.")
    created_at: str
    finished_at: str | None
    deadline_at: str | None = Field(
        default=None, description="When a run must have ended (timeout plus lease grace)."
    )
    cancel_requested_at: str | None = Field(
        default=None, description="When DELETE /v1/calls/{id} asked it to stop."
    )
    claim: dict[str, str | None] | None = Field(
        default=None, description="The claim verdict (and reason) once ended; null without."
    )
    links: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, record: CallRecord) -> CallStatus:
        manifest = (
            DigestSet(sha256=record.manifest_sha256, blake3=record.manifest_blake3)
            if record.manifest_sha256 and record.manifest_blake3
            else None
        )
        return cls(
            call_id=record.call_id,
            entry=record.entry_id,
            principal=record.principal,
            state=record.state,
            verdict=record.verdict,
            ledger=LedgerSeqs(
                started=record.started_seq,
                finished=record.finished_seq,
                packet_issued=record.packet_seq,
            ),
            packet_id=record.packet_id,
            manifest_hash=manifest,
            rows=record.rows,
            bytes=record.bytes,
            created_at=record.created_at,
            finished_at=record.finished_at,
            deadline_at=record.deadline_at,
            cancel_requested_at=record.cancel_requested_at,
            claim=(
                {"verdict": record.claim_verdict, "reason": record.claim_reason}
                if record.claim_verdict
                else None
            ),
            links={
                "self": f"/v1/calls/{record.call_id}",
                "events": f"/v1/calls/{record.call_id}/events",
                **({"packet": f"/v1/packets/{record.packet_id}"} if record.packet_id else {}),
            },
        )


class CallList(BaseModel):
    """``GET /v1/calls``: a page of calls, newest first, and the next page's link."""

    model_config = ConfigDict(frozen=True)

    calls: list[CallStatus]
    next: str | None = Field(description="The next page, or null on the last one.")

    @classmethod
    def of(cls, records: list[CallRecord], query: CallQuery) -> CallList:
        following = None
        if len(records) == query.limit:
            params = {
                "entry": query.entry,
                "principal": query.principal,
                "verdict": query.verdict,
                "state": query.state,
                "since": query.since,
                "before": records[-1].call_id,
                "limit": str(query.limit),
            }
            following = "/v1/calls?" + urlencode({k: v for k, v in params.items() if v})
        return cls(calls=[CallStatus.of(r) for r in records], next=following)


class LedgerEntryView(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    ts: str
    kind: str
    prev: str
    body: dict[str, Any]


class LedgerPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    size: int
    start: int
    entries: list[LedgerEntryView]
    next: str | None


class InclusionProofView(BaseModel):
    """``GET /v1/ledger/proofs/inclusion``: entry ``seq`` is in the checkpoint of ``size``."""

    model_config = ConfigDict(frozen=True)

    seq: int
    size: int = Field(description="Tree size of the checkpoint the proof is against.")
    leaf_input: str = Field(description="Standard base64 of the entry's stored bytes (its JCS).")
    proof: list[str] = Field(description="RFC 9162 inclusion proof, standard base64, leaf first.")
    checkpoint: str = Field(description="The signed checkpoint note (C2SP tlog-checkpoint).")

    @classmethod
    def of(cls, answer: InclusionProof) -> InclusionProofView:
        return cls(
            seq=answer.seq,
            size=answer.size,
            leaf_input=encode_base64(answer.leaf_input),
            proof=[encode_base64(h) for h in answer.proof],
            checkpoint=answer.checkpoint,
        )


class ConsistencyProofView(BaseModel):
    """``GET /v1/ledger/proofs/consistency``: tree ``new`` extends tree ``old``."""

    model_config = ConfigDict(frozen=True)

    old: int
    new: int
    proof: list[str] = Field(description="RFC 9162 consistency proof, standard base64.")

    @classmethod
    def of(cls, old: int, new: int, proof: list[bytes]) -> ConsistencyProofView:
        return cls(old=old, new=new, proof=[encode_base64(h) for h in proof])


class Health(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str
    version: str
    authority_status: str
