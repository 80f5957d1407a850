"""The Call Contract: everything fixed before a call runs, recorded whole in the ledger and packet.

``prepare_contract`` is pure: it resolves the entry against the sealed catalog,
validates the inputs against the entry's parameter schema (secret-like values
refused), binds the tenant and fixes timeout, limits and the non-mutation
boundary. Policy is decided next, on this contract, before anything touches a source.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from catalog.authority import AuthorityStatus
from catalog.canonical import jcs
from catalog.digest import DigestSet, digest_bytes
from catalog.model import Entry, QueryEntry
from catalog.params import bind_inputs
from service.errors import CatalogNotRunnable
from service.identity import PLATFORM_TENANT, Principal
from service.packets.manifest import CatalogRef, EntryRef
from service.run_sql import BOUNDARY_SQLITE
from service.sealed_catalog import SealedCatalog
from service.verdicts import Verdict

JsonScalar = str | int | float | bool | None
Mode = Literal["run", "dry_run"]
OutputFormat = Literal["jsonl", "csv"]
TenantRelation = Literal["own", "cross", "platform", "unscoped"]


class CallRequest(BaseModel):
    """What a client asks for; the contract is built from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    entry: str = Field(description="Catalog entry id, e.g. orders.by_customer.")
    params: dict[str, JsonScalar] = Field(
        default_factory=dict, description="Inputs by parameter name."
    )
    mode: Mode = Field(
        default="run", description="run, or dry_run to get the would-be contract only."
    )
    format: OutputFormat = Field(default="jsonl", description="Data file format of the packet.")


class Boundary(BaseModel):
    """The non-mutation boundary the call runs inside."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: str
    source: str
    controls: tuple[str, ...]


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
    max_rows: int
    max_bytes: int
    output_format: OutputFormat
    boundary: Boundary
    exit_semantics: dict[str, int] = Field(
        description="Verdict -> CLI exit code (FORMATS section 6)."
    )
    lease: None = Field(
        default=None, description="Leases arrive with the contract issue; none is taken yet."
    )
    policy: dict[str, Any] | None = Field(
        default=None, description="The policy decision, once made."
    )

    def record(self) -> dict[str, Any]:
        """The JSON record for the ledger and packet.json (never holds a credential)."""
        return self.model_dump(mode="json")


EXIT_SEMANTICS = {v.value: v.exit_code for v in Verdict}


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
    (every bad parameter named, secret-like values never echoed); command entries
    are refused with :class:`CatalogNotRunnable` until the command runner lands.
    """
    entry, digest = sealed.runnable_entry(request.entry)
    params = dict(request.params)
    relation = _bind_tenant(entry, principal, params)
    inputs = bind_inputs(entry, params, from_text=from_text)
    if not isinstance(entry, QueryEntry):
        raise CatalogNotRunnable(
            f"entry {entry.id} is a command: command entries are sealed but not run yet",
            where=entry.id,
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
        max_rows=entry.max_rows,
        max_bytes=entry.max_bytes,
        output_format=request.format,
        boundary=Boundary(engine=entry.engine, source=entry.source, controls=BOUNDARY_SQLITE),
        exit_semantics=EXIT_SEMANTICS,
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
