"""The Call Contract: everything fixed before a call runs, recorded whole in the ledger and packet.

``prepare_contract`` is pure: it resolves the entry against the sealed catalog,
validates the inputs against the entry's parameter schema (secret-like values
refused), binds the tenant and fixes timeout, limits and the non-mutation
boundary. Policy is decided next, on this contract, before anything touches a source.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from catalog.authority import AuthorityStatus
from catalog.canonical import jcs
from catalog.digest import DigestSet, digest_bytes
from catalog.model import CommandEntry, CommandLimits, Entry, ExitVerdict
from catalog.params import bind_inputs
from service.command_spec import BOUNDARY_COMMAND, build_argv, spec_for_entry
from service.identity import PLATFORM_TENANT, Principal
from service.leases import lease_scope
from service.packets.manifest import CatalogRef, EntryRef
from service.packets.tables import PARQUET_INSTALL_HINT, parquet_available
from service.run_postgres import boundary_controls
from service.run_sql import BOUNDARY_SQLITE
from service.sealed_catalog import SealedCatalog
from service.verdicts import Verdict

JsonScalar = str | int | float | bool | None
Mode = Literal["run", "dry_run"]
OutputFormat = Literal["jsonl", "csv", "parquet"]
TenantRelation = Literal["own", "cross", "platform", "unscoped"]


class CallRequest(BaseModel):
    """What a client asks for; the contract is built from it."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"entry": "invoices.unpaid", "params": {"tenant": "acme"}},
                {
                    "entry": "orders.by_customer",
                    "params": {"customer_id": 42},
                    "mode": "dry_run",
                    "format": "csv",
                },
            ]
        },
    )

    entry: str = Field(description="Catalog entry id, e.g. orders.by_customer.")
    params: dict[str, JsonScalar] = Field(
        default_factory=dict, description="Inputs by parameter name."
    )
    mode: Mode = Field(
        default="run", description="run, or dry_run to get the would-be contract only."
    )
    format: OutputFormat = Field(
        default="jsonl",
        description="Data file format of the packet; parquet needs the govex[parquet] extra.",
    )

    @field_validator("entry")
    @classmethod
    def _entry_is_unicode(cls, value: str) -> str:
        if not _is_unicode(value):
            raise ValueError("the entry id holds a lone surrogate (not a Unicode character)")
        return value

    @field_validator("params")
    @classmethod
    def _params_are_unicode(cls, value: dict[str, JsonScalar]) -> dict[str, JsonScalar]:
        # Refused here, by name: a lone surrogate cannot be canonicalized into the ledger.
        for name, item in value.items():
            if not _is_unicode(name):
                raise ValueError(f"parameter name {name!r} holds a lone surrogate")
            if isinstance(item, str) and not _is_unicode(item):
                raise ValueError(f"parameter {name!r}: the value holds a lone surrogate")
        return value

    @field_validator("format")
    @classmethod
    def _format_installed(cls, value: OutputFormat) -> OutputFormat:
        if value == "parquet" and not parquet_available():
            raise ValueError(f"output format parquet needs pyarrow: {PARQUET_INSTALL_HINT}")
        return value


def _is_unicode(text: str) -> bool:
    """Whether ``text`` is Unicode text: no lone surrogate (JSON escapes can carry one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Boundary(BaseModel):
    """The non-mutation boundary the call runs inside."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str
    source: str
    controls: tuple[str, ...]


class LeaseTerms(BaseModel):
    """The lease a call runs under: its scope and limit, and once taken, which lease until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: str = Field(description="Entry id, or entry id | resource key.")
    max_concurrent: int
    ttl_ms: int = Field(description="The entry's timeout plus its grace.")
    lease_id: str | None = Field(default=None, description="Set once the lease is held.")
    expires_at: str | None = Field(default=None, description="FORMATS time; set once held.")


class CommandTerms(BaseModel):
    """How a command entry runs; ``None`` in a query's contract.

    The verdict of a finished command follows ``exit_codes`` (the entry's map; a code it
    does not name, a signal, a timeout or an output flood are not ``ran_clean``), while the
    contract's ``exit_semantics`` stays the verdict -> CLI exit code table of every call.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    argv: tuple[str, ...] = Field(
        description="The exact argv: argv[0], then the template with each placeholder "
        "replaced by one whole argument (no shell)."
    )
    executable_sha256: str = Field(
        description="SHA-256 (hex) of argv[0], pinned by the seal and checked before it runs."
    )
    env: tuple[str, ...] = Field(
        description="Names of the variables passed from the service's environment; no other."
    )
    limits: CommandLimits
    max_stderr_bytes: int = Field(description="Cap of stderr; max_bytes caps stdout.")
    exit_codes: dict[str, ExitVerdict] = Field(
        description="Decimal exit code -> verdict; any other exit is error_running."
    )


class ApprovalTerms(BaseModel):
    """The approval a call of a ``requires_approval`` entry was evaluated against.

    ``state`` is ``missing`` when no approval counted; ``evaluated_at`` is the pinned
    time of the evaluation (service.approvals).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: Literal[
        "valid", "near_expiry", "just_expired", "stale", "not_applicable", "unknown", "missing"
    ]
    approval_id: str | None = Field(default=None, description="The approval kept, if any.")
    approval_seq: int | None = Field(default=None, description="Its approval.granted entry.")
    expires_at: str | None = Field(default=None, description="FORMATS time; its expiry.")
    evaluated_at: str = Field(description="FORMATS time the state was evaluated at.")


class MaskingTerms(BaseModel):
    """How a query's sensitive columns are written; ``None`` in the contract of other entries.

    Masked: each value is ``hmac-sha256:<hex>`` under the key ``key_id`` names (the key itself
    is never recorded). Unmasked: policy allowed ``unmask`` for this principal and entry.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: tuple[str, ...] = Field(description="The entry's sensitive_columns.")
    unmasked: bool = Field(description="True when policy allowed unmask: values as they are.")
    algorithm: Literal["hmac-sha256"] | None = Field(
        description="How values are masked; None when unmasked."
    )
    key_id: str | None = Field(
        description="First 16 hex of SHA-256 of the masking key; None when unmasked."
    )
    policy: dict[str, Any] = Field(description="The unmask policy decision.")


class CallContract(BaseModel):
    """Who calls, in what mode, with which inputs, under which limits and boundary."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    request_id: str | None
    mode: Mode
    identity: Principal
    entry: EntryRef
    catalog: CatalogRef
    authority_status: AuthorityStatus
    inputs: dict[str, JsonScalar]
    inputs_digest: DigestSet
    tenant_relation: TenantRelation
    timeout_ms: int
    max_rows: int | None = Field(description="Row limit of a query; None for a command.")
    max_bytes: int = Field(description="Byte limit of the result file (a command's stdout).")
    output_format: OutputFormat
    boundary: Boundary
    exit_semantics: dict[str, int] = Field(
        description="Verdict -> CLI exit code (FORMATS section 6)."
    )
    lease: LeaseTerms | None = Field(
        default=None, description="The entry's concurrency lease; None when it has none."
    )
    command: CommandTerms | None = Field(
        default=None, description="How a command entry runs; None for a query."
    )
    approval: ApprovalTerms | None = Field(
        default=None, description="The approval evaluated; None when the entry needs none."
    )
    policy: dict[str, Any] | None = Field(
        default=None, description="The policy decision, once made."
    )
    masking: MaskingTerms | None = Field(
        default=None, description="Sensitive columns and whether they are masked; None without."
    )

    def record(self) -> dict[str, Any]:
        """The JSON record for the ledger and packet.json (never holds a credential)."""
        return self.model_dump(mode="json")


EXIT_SEMANTICS = {v.value: v.exit_code for v in Verdict}
_MAX_LEASE_KEY_CHARS = 128


def prepare_contract(
    sealed: SealedCatalog,
    principal: Principal,
    request: CallRequest,
    *,
    call_id: str,
    request_id: str | None,
    from_text: bool = False,
) -> CallContract:
    """Build the contract for ``request``; raise before anything can run.

    Raises ``catalog.errors.UnknownEntry``, ``service.errors.CatalogNotRunnable``
    (entry digest differs from the seal) or ``catalog.errors.InputErrors``
    (every bad parameter named, secret-like values never echoed); for a command,
    ``service.errors.CommandRefused`` (a value its argv template refuses, such as one
    that looks like an option) or ``CommandSpecInvalid``.
    """
    entry, digest = sealed.runnable_entry(request.entry)
    params = dict(request.params)
    relation = _bind_tenant(entry, principal, params)
    inputs = bind_inputs(entry, params, from_text=from_text)
    max_rows: int | None = None
    command: CommandTerms | None = None
    if isinstance(entry, CommandEntry):
        # The argv is built here, so its refusals come before anything runs.
        argv = build_argv(spec_for_entry(entry), inputs)
        boundary = Boundary(engine="command", source=entry.argv[0], controls=BOUNDARY_COMMAND)
        command = CommandTerms(
            argv=tuple(argv),
            executable_sha256=entry.executable_sha256,
            env=entry.env,
            limits=entry.limits,
            max_stderr_bytes=entry.max_stderr_bytes,
            exit_codes=dict(entry.exit_codes),
        )
    else:
        max_rows = entry.max_rows
        boundary = Boundary(
            engine=entry.engine,
            source=entry.source,
            controls=BOUNDARY_SQLITE if entry.engine == "sqlite" else boundary_controls(entry),
        )
    return CallContract(
        call_id=call_id,
        request_id=request_id,
        mode=request.mode,
        identity=principal,
        entry=EntryRef(id=entry.id, kind=entry.kind, entry_digest=digest),
        catalog=CatalogRef(
            name=sealed.catalog.name, version=sealed.catalog.version, catalog_digest=sealed.digest
        ),
        authority_status=sealed.authority,
        inputs=inputs,
        inputs_digest=digest_bytes(jcs(inputs, "inputs")),
        tenant_relation=relation,
        timeout_ms=entry.timeout_ms,
        max_rows=max_rows,
        max_bytes=entry.max_bytes,
        # For a command it does not apply: stdout and stderr are kept as written.
        output_format=request.format,
        boundary=boundary,
        exit_semantics=EXIT_SEMANTICS,
        lease=_lease_terms(entry, inputs),
        command=command,
    )


def _lease_terms(entry: Entry, inputs: dict[str, JsonScalar]) -> LeaseTerms | None:
    """The lease ``entry`` asks for, keyed by its resource parameter's value when it has one."""
    if entry.lease is None:
        return None
    key_param = entry.lease.resource_param
    value = None if key_param is None else inputs.get(key_param)
    key = None if value is None else jcs(value, "lease key").decode()
    if key is not None and len(key) > _MAX_LEASE_KEY_CHARS:  # long values: their digest
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return LeaseTerms(
        scope=lease_scope(entry.id, key),
        max_concurrent=entry.lease.max_concurrent,
        ttl_ms=entry.timeout_ms + entry.lease.grace_ms,
    )


def _bind_tenant(
    entry: Entry, principal: Principal, params: dict[str, JsonScalar]
) -> TenantRelation:
    """Fill a tenant-scoped entry's tenant parameter from the caller and classify the relation."""
    if not entry.tenant_scoped or entry.tenant_param is None:
        return "unscoped"
    if principal.tenant == PLATFORM_TENANT:
        return "platform"
    requested = params.setdefault(entry.tenant_param, principal.tenant)
    return "own" if requested == principal.tenant else "cross"
