"""Ledger entries and their exact bytes (FORMATS section 3).

Entry ``i`` is ``{"v": 1, "seq": i, "ts", "kind", "prev", "body"}``;
``leaf_input(i)`` is its RFC 8785 serialization (the bytes stored and
exported) and ``leaf_hash(i) = SHA-256(0x00 || leaf_input(i))``; ``prev`` of
entry ``i`` is the hex of ``leaf_hash(i - 1)``, or :data:`ZERO_PREV` for
``i = 0``.

Each kind has a body model holding the fields a verifier may rely on. Bodies
may carry more (``extra="allow"``); an :class:`Entry` validates its body
against the model of its kind when it is built, so an ``Entry`` value always
has a known kind and a body of the right shape.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator

from ledger.canonical import jcs
from ledger.errors import InvalidTimestamp
from ledger.merkle import leaf_hash  # re-exported: entry bytes and their hash in one place

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BODY_MODELS",
    "HEX64_PATTERN",
    "OPAQUE_ID_PATTERN",
    "TS_PATTERN",
    "ZERO_PREV",
    "AccessReadBody",
    "ApprovalGrantedBody",
    "BodyDigest",
    "CallDeniedBody",
    "CallFinishedBody",
    "CallStartedBody",
    "Entry",
    "Kind",
    "PacketIssuedBody",
    "ReplayFinishedBody",
    "ReplayStartedBody",
    "ResultChunkBody",
    "ServiceStartedBody",
    "compose_leaf_input",
    "entry_from_leaf_input",
    "explain",
    "format_ts",
    "leaf_hash",
    "leaf_input",
    "parse_ts",
]

ZERO_PREV = "0" * 64
HEX64_PATTERN = r"^[0-9a-f]{64}$"
TS_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
# Same rule as catalog.ids (FORMATS section 1); the packages do not import each other.
OPAQUE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
_TS_RE = re.compile(TS_PATTERN.removeprefix("^").removesuffix("$"), re.ASCII)


class Kind(StrEnum):
    """The entry kinds every ledger has."""

    service_started = "service.started"
    call_started = "call.started"
    call_denied = "call.denied"
    call_finished = "call.finished"
    packet_issued = "packet.issued"
    approval_granted = "approval.granted"
    call_dry_run = "call.dry_run"
    auth_refused = "auth.refused"
    approval_denied = "approval.denied"
    call_cancelled = "call.cancelled"
    packet_removed = "packet.removed"
    replay_started = "replay.started"
    replay_finished = "replay.finished"
    access_read = "access.read"


def format_ts(moment: datetime) -> str:
    """Format an aware ``moment`` as FORMATS time text: UTC, microseconds, ``Z``.

    Raises :class:`InvalidTimestamp` for a naive datetime: guessing its zone
    would put a wrong time in the ledger.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidTimestamp(f"naive datetime {moment.isoformat()} has no timezone", where="ts")
    # isoformat of a UTC time with explicit microseconds: "YYYY-MM-DDTHH:MM:SS.ffffff+00:00".
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(text: str) -> datetime:
    """Parse FORMATS time ``text`` to an aware UTC datetime; :class:`InvalidTimestamp` otherwise."""
    try:
        if _TS_RE.fullmatch(text) is None:
            raise ValueError("wrong shape")  # noqa: TRY301 - one message for every malformed text
        # Fields by position (the shape is fixed): several times faster than strptime.
        return datetime(
            int(text[0:4]),
            int(text[5:7]),
            int(text[8:10]),
            int(text[11:13]),
            int(text[14:16]),
            int(text[17:19]),
            int(text[20:26]),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise InvalidTimestamp(
            f"{text!r} is not RFC 3339 UTC with microseconds and Z", where="ts"
        ) from exc


class _Body(BaseModel):
    """Base of the body models: strict, frozen, extra fields allowed (bodies may carry more)."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True)


class BodyDigest(BaseModel):
    """A FORMATS digest set inside a body: ``{"sha256", "blake3"}``, lowercase hex."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sha256: str = Field(pattern=HEX64_PATTERN)
    blake3: str = Field(pattern=HEX64_PATTERN)


class ServiceStartedBody(_Body):
    version: str = Field(min_length=1)
    module_sha256: str = Field(pattern=HEX64_PATTERN)
    catalog_digest: BodyDigest
    authority_status: Literal["provisional", "sealed", "governed"]


class CallStartedBody(_Body):
    call_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    contract: dict[str, Any]  # JSON: JCS refuses anything else at append (and Entry.body)


class CallDeniedBody(_Body):
    call_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    reason: str = Field(min_length=1)
    contract: dict[str, Any] | None = None  # what was known when refused; JSON as above


class CommandStreamBody(BaseModel):
    """One captured stream of a command: its size as kept, digest, and whether a cap cut it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    bytes: int = Field(ge=0)
    digest: BodyDigest
    truncated: bool


class CommandEndBody(BaseModel):
    """How a started command ended (``call.finished`` of a command entry).

    ``killed_reason`` says why govex killed its process group (``timeout``, ``output_cap``);
    ``signal`` the signal that ended it, if any; ``reason`` the verdict's explanation.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    exit_code: int | None
    signal: int | None
    killed_reason: Literal["timeout", "output_cap", "cancelled"] | None
    reason: str
    stdout: CommandStreamBody
    stderr: CommandStreamBody


class ResultChunkBody(BaseModel):
    """One chunk of a call's result file, as packet.json's ``files[].chunks`` records it.

    Kept in ``call.finished`` so a replay can locate the first differing byte and row range
    from the ledger alone, without the packet.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    offset: int = Field(ge=0)
    bytes: int = Field(ge=0)
    first_row: int | None = Field(ge=0)
    rows: int | None = Field(ge=0)
    blake3: str = Field(pattern=HEX64_PATTERN)


class CallFinishedBody(_Body):
    call_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    verdict: Literal["ran_clean", "ran_with_drift", "error_running", "timed_out", "blocked"]
    exit_code: int
    result_digest: BodyDigest | None
    rows: int | None = Field(ge=0)
    bytes: int | None = Field(ge=0)
    duration_ms: int = Field(ge=0)
    complete: bool | None = Field(
        default=None, description="False when a limit cut the result; None without a result."
    )
    error: str | None = Field(default=None, description="Why it did not run clean, if known.")
    command: CommandEndBody | None = Field(
        default=None, description="How a command ended; absent for a query."
    )
    chunks: list[ResultChunkBody] | None = Field(
        default=None,
        description="The result file's chunks (packet.json files[].chunks); None without a "
        "result, or when they were not recorded.",
    )
    engine_version: str | None = Field(
        default=None,
        description="The source engine's version when it ran (SQLite's library version, the "
        "PostgreSQL server_version); None for a command or when unknown.",
    )
    claim: dict[str, Any] | None = Field(
        default=None,
        description="The entry's claim and this call's verdict on it (packet.json's claim); "
        "None when the entry states none.",
    )


class GateCheckBody(BaseModel):
    """One check a run of the call would meet, as a dry run found it."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    check: Literal["entry", "inputs", "approval", "policy", "masking", "executable", "lease"]
    passed: bool
    detail: str = Field(min_length=1)
    code: str | None = Field(description="The problem code a run would be refused with.")


class CallDryRunBody(_Body):
    """A dry run: the would-be contract and every check a run would meet; nothing ran."""

    call_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    contract: dict[str, Any]
    would_run: bool
    checks: list[GateCheckBody] = Field(min_length=1)


class PacketIssuedBody(_Body):
    call_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    packet_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    manifest_hash: BodyDigest


class ApprovalGrantedBody(_Body):
    """An approver let ``requester`` call one entry (id and digest) with one inputs digest.

    ``approver`` is the approver's principal record (never a credential); ``policy`` the
    decision of the ``approve`` action. Valid from ``approved_at`` until ``expires_at``.
    """

    approval_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    entry_id: str = Field(min_length=1)
    entry_digest: BodyDigest
    inputs_digest: BodyDigest
    requester: str = Field(min_length=1)
    requester_tenant: str = Field(min_length=1)
    tenant_relation: Literal["own", "cross", "platform", "unscoped"]
    approver: dict[str, Any]
    approved_at: str = Field(pattern=TS_PATTERN)
    expires_at: str = Field(pattern=TS_PATTERN)
    reason: str = Field(min_length=1)
    policy: dict[str, Any]


class ApprovalDeniedBody(_Body):
    """An approval refused: who tried to approve which entry for whom, and why not.

    ``entry_id`` is as requested (it may name no entry); ``determining_policies`` is empty
    unless policy denied it. The approver's free-text reason is not recorded.
    """

    entry_id: str
    requester: str
    requester_tenant: str
    approver: dict[str, Any]
    code: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    where: str
    determining_policies: list[str]


class CallCancelledBody(_Body):
    """A principal asked a running call to stop; its ``call.finished`` follows."""

    call_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    by: dict[str, Any]
    policy: dict[str, Any]


class AuthRefusedBody(_Body):
    """A request whose credential was missing or refused: no principal, so no call.

    ``via`` is ``http`` or ``cli``; ``client`` the peer address (None for the CLI);
    ``request`` the method and path. ``reason`` and ``where`` say what was wrong; the
    credential itself is never recorded.
    """

    via: Literal["http", "cli"]
    client: str | None
    request: str | None
    request_id: str | None
    code: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    where: str


class PacketRemovedBody(_Body):
    """A packet's file was removed (``reason``: ``retention``); its ledger entries stay.

    ``issued_seq`` is the ``packet.issued`` entry of the packet, ``manifest_hash`` the hash it
    issued: together they still prove what the removed packet held.
    """

    packet_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    manifest_hash: BodyDigest
    reason: Literal["retention"]
    issued_seq: int = Field(ge=0)


class ReplayStartedBody(_Body):
    """A replay of recorded calls began (``govex ledger replay``).

    ``by`` is the replaying principal's record (never a credential); ``filters`` the
    range and filters asked for, ``range`` the seqs of ``call.started`` entries covered;
    ``catalog_digest`` the sealed catalog the calls are replayed under.
    """

    replay_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    by: dict[str, Any]
    filters: dict[str, Any]
    range: dict[str, Any]
    catalog_digest: BodyDigest
    authority_status: Literal["provisional", "sealed", "governed"]


class ReplayFinishedBody(_Body):
    """A replay ended: how many calls gave each outcome, and its report packet.

    ``report_digest`` is the digest of the report's data file; ``packet_id`` and
    ``manifest_hash`` name the report packet (issued by the ``packet.issued`` that
    follows). All three are None when the replay failed before its report was built
    (``error`` says why).
    """

    replay_id: str = Field(pattern=OPAQUE_ID_PATTERN)
    started_seq: int = Field(ge=0)
    calls: int = Field(ge=0)
    counts: dict[str, int]
    report_digest: BodyDigest | None
    packet_id: str | None = Field(default=None, pattern=OPAQUE_ID_PATTERN)
    manifest_hash: BodyDigest | None = None
    error: str | None = None


AccessRead = Literal[
    "ledger.entries",
    "ledger.inclusion_proof",
    "ledger.consistency_proof",
    "packet.zip",
    "packet.manifest",
    "packet.proof",
    "packet.verify",
    "call.status",
    "call.events",
    "call.list",
    "approval.list",
]
"""What an ``access.read`` entry says was read (``service.read_audit`` names the same)."""


class AccessReadBody(_Body):
    """Who read what through the service: one entry per read request, never per row.

    ``principal`` is the reader's record (never a credential); ``read`` what was read;
    ``packet_id`` and ``manifest_hash`` the packet relied on (downloads, proofs,
    verifications); ``target`` the rest (a seq range, tree sizes, a verification's result,
    the call read and its caller, a list's filters).
    """

    principal: dict[str, Any]
    read: AccessRead
    request_id: str | None
    packet_id: str | None = Field(default=None, pattern=OPAQUE_ID_PATTERN)
    manifest_hash: BodyDigest | None = None
    target: dict[str, Any]


BODY_MODELS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {
        Kind.service_started.value: ServiceStartedBody,
        Kind.call_started.value: CallStartedBody,
        Kind.call_denied.value: CallDeniedBody,
        Kind.call_finished.value: CallFinishedBody,
        Kind.packet_issued.value: PacketIssuedBody,
        Kind.approval_granted.value: ApprovalGrantedBody,
        Kind.call_dry_run.value: CallDryRunBody,
        Kind.auth_refused.value: AuthRefusedBody,
        Kind.approval_denied.value: ApprovalDeniedBody,
        Kind.call_cancelled.value: CallCancelledBody,
        Kind.packet_removed.value: PacketRemovedBody,
        Kind.replay_started.value: ReplayStartedBody,
        Kind.replay_finished.value: ReplayFinishedBody,
        Kind.access_read.value: AccessReadBody,
    }
)


class Entry(BaseModel):
    """One ledger entry. Building one checks every FORMATS section 3 rule but the chain.

    Raises pydantic's ``ValidationError`` for a wrong field, an unknown kind,
    a malformed ``ts`` or ``prev``, or a body that its kind's model refuses.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: Literal[1]
    seq: int = Field(ge=0)
    ts: str = Field(pattern=TS_PATTERN)
    kind: Kind = Field(strict=False)  # JSON text names the kind; lax only to take that string
    prev: str = Field(pattern=HEX64_PATTERN)
    body: dict[str, JsonValue]

    @model_validator(mode="before")
    @classmethod
    def _v_is_the_integer_one(cls, data: Any) -> Any:  # noqa: ANN401 - pydantic hook
        # Literal[1] also takes True and 1.0; JSON `true` must not pass for version 1.
        if isinstance(data, dict) and "v" in data and type(data["v"]) is not int:
            raise ValueError("v must be the integer 1")
        return data

    @model_validator(mode="after")
    def _checks(self) -> Self:
        try:
            parse_ts(self.ts)
        except InvalidTimestamp as exc:
            raise ValueError(exc.message) from exc
        try:
            BODY_MODELS[self.kind.value].model_validate(self.body)
        except ValidationError as exc:
            # Re-raised as a plain ValueError so the outer error names the body fields.
            raise ValueError(f"body of {self.kind.value}: {explain(exc)}") from exc
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """Return the entry as the JSON object that :func:`leaf_input` canonicalizes."""
        return {
            "v": self.v,
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind.value,
            "prev": self.prev,
            "body": self.body,
        }


def explain(exc: ValidationError) -> str:
    """One line naming each field pydantic refused and why (no input values: they may be secret)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(entry)'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )


def leaf_input(entry: Entry) -> bytes:
    """``JCS(entry)``: the exact bytes stored, exported and hashed into the tree.

    Raises :class:`ledger.errors.CanonicalizationError` (naming the entry) for
    a body value JCS cannot encode, such as a non-finite float.
    """
    return jcs(entry.to_json_dict(), where=f"ledger entry seq {entry.seq}")


def compose_leaf_input(*, body_jcs: bytes, kind: Kind, prev: str, seq: int, ts: str) -> bytes:
    """``leaf_input`` of an entry from its body's JCS bytes, without re-encoding the body.

    The append path encodes each body once, before it knows its ``seq`` and
    ``prev``; this lays out the rest in JCS key order (``body`` < ``kind`` <
    ``prev`` < ``seq`` < ``ts`` < ``v``). Every other field is ASCII that JCS
    leaves unescaped (a kind name, hex, an integer, a FORMATS time), which a
    property test pins against :func:`leaf_input`. Callers pass checked values.
    """
    return b"".join(
        (
            b'{"body":',
            body_jcs,
            b',"kind":"',
            kind.value.encode("ascii"),
            b'","prev":"',
            prev.encode("ascii"),
            b'","seq":',
            str(seq).encode("ascii"),
            b',"ts":"',
            ts.encode("ascii"),
            b'","v":1}',
        )
    )


def entry_from_leaf_input(data: bytes) -> Entry:
    """Parse and validate stored bytes. No canonical-form or chain check (see ``ledger.verify``).

    Raises ``ValueError`` for bytes that are not JSON and pydantic's
    ``ValidationError`` (a ``ValueError``) for JSON that is not an entry.
    """
    return Entry.model_validate(json.loads(data))
