"""Policy first: Cedar decides (principal, action, resource, context); deny by default.

An engine error, a policy that fails schema validation, an empty policy set or a
"no decision" all count as a deny, never as an allow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

import cedarpy

from catalog.digest import DigestSet, digest_bytes
from catalog.model import Entry
from service.errors import PolicyDenied, StartupRefused
from service.identity import Principal

SCHEMA_FILE = "govex.cedarschema"


class Action(StrEnum):
    call = "call"
    dry_run = "dry_run"
    replay = "replay"
    unmask = "unmask"
    approve = "approve"
    read_packet = "read_packet"
    read_ledger = "read_ledger"
    cancel = "cancel"


def approval_context(entry: Entry, state: str | None) -> str:
    """The ``approval`` a call's policy context carries: ``not_required``, or the state found.

    ``state`` is the approval's classification (``valid``, ``near_expiry``, ...),
    None when no approval was found: ``missing``.
    """
    if not entry.requires_approval:
        return "not_required"
    return "missing" if state is None else state


@dataclass(frozen=True)
class PolicyDecision:
    """What the engine decided and why: recorded whole in the contract and the ledger."""

    allowed: bool
    action: Action
    determining: tuple[str, ...]
    errors: tuple[str, ...]
    policy_digest: DigestSet

    def record(self) -> dict[str, Any]:
        return {
            "decision": "allow" if self.allowed else "deny",
            "action": self.action.value,
            "determining_policies": list(self.determining),
            "errors": list(self.errors),
            "policy_digest": self.policy_digest.model_dump(),
        }


@dataclass(frozen=True)
class PolicySet:
    """Validated Cedar policies and schema, with the digest that identifies them."""

    digest: DigestSet
    ids_by_position: Mapping[str, str]
    # Parsed once at start; evaluating against handles avoids re-parsing on every call.
    parsed_policies: cedarpy.PolicySet
    parsed_schema: cedarpy.Schema

    @classmethod
    def load(cls, directory: Path | None) -> PolicySet:
        """Load ``*.cedar`` and the schema from ``directory`` (bundled defaults when None).

        Raises :class:`StartupRefused` naming the file when there is no policy, the
        schema is missing, or a policy does not validate against the schema.
        """
        root = Path(str(resources.files("policies"))) if directory is None else directory
        schema_path = root / SCHEMA_FILE
        policy_paths = sorted(root.glob("*.cedar"))
        if not schema_path.is_file():
            raise StartupRefused(f"no Cedar schema at {schema_path}", where=str(schema_path))
        if not policy_paths:
            raise StartupRefused(
                f"no Cedar policies (*.cedar) in {root}: nothing could be allowed", where=str(root)
            )
        policies_text = "\n".join(p.read_text(encoding="utf-8") for p in policy_paths)
        schema_text = schema_path.read_text(encoding="utf-8")
        result = cedarpy.validate_policies(policies_text, schema_text)
        if not result.validation_passed:
            detail = "; ".join(str(e) for e in result.errors)
            raise StartupRefused(
                f"Cedar policies in {root} do not validate against {SCHEMA_FILE}: {detail}",
                where=str(root),
            )
        static = json.loads(cedarpy.policies_to_json_str(policies_text))["staticPolicies"]
        ids = {pos: body.get("annotations", {}).get("id", pos) for pos, body in static.items()}
        # The digest covers the exact bytes evaluated, schema included, in a defined order.
        digest = digest_bytes(schema_text.encode() + b"\n\x00\n" + policies_text.encode())
        return cls(
            digest,
            ids,
            cedarpy.PolicySet.from_str(policies_text),
            cedarpy.Schema.from_str(schema_text),
        )

    def decide(
        self, principal: Principal, action: Action, resource: Entity, context: Mapping[str, Any]
    ) -> PolicyDecision:
        """Evaluate one request; anything but an explicit Allow is a deny."""
        entities = [*_principal_entities(principal), resource.as_cedar()]
        request = {
            "principal": {"type": "Govex::Principal", "id": principal.id},
            "action": {"type": "Govex::Action", "id": action.value},
            "resource": {"type": resource.type, "id": resource.id},
            "context": dict(context),
        }
        try:
            result = cedarpy.is_authorized(
                request, self.parsed_policies, entities, self.parsed_schema
            )
        except Exception as exc:  # noqa: BLE001 - any engine failure is a deny, with its reason kept
            return PolicyDecision(
                allowed=False,
                action=action,
                determining=(),
                errors=(f"policy engine error: {exc}",),
                policy_digest=self.digest,
            )
        determining = tuple(self.ids_by_position.get(r, r) for r in result.diagnostics.reasons)
        errors = tuple(str(e) for e in result.diagnostics.errors)
        allowed = result.decision == cedarpy.Decision.Allow and not errors
        return PolicyDecision(allowed, action, determining, errors, self.digest)


@dataclass(frozen=True)
class Entity:
    """A Cedar resource entity."""

    type: str
    id: str
    attrs: Mapping[str, Any]

    def as_cedar(self) -> dict[str, Any]:
        return {"uid": {"type": self.type, "id": self.id}, "attrs": dict(self.attrs), "parents": []}


def entry_entity(entry: Entry) -> Entity:
    """The catalog attributes policy may use, taken from the sealed entry."""
    return Entity(
        "Govex::Entry",
        entry.id,
        {
            "kind": entry.kind,
            "tags": list(entry.tags),
            "sensitive": entry.sensitive,
            "requires_approval": entry.requires_approval,
            "tenant_scoped": entry.tenant_scoped,
        },
    )


LEDGER_ENTITY = Entity("Govex::Ledger", "main", {})


def require_ledger_reader(policy: PolicySet, principal: Principal) -> None:
    """Raise :class:`PolicyDenied` unless ``principal`` may read the ledger (``read_ledger``)."""
    decision = policy.decide(principal, Action.read_ledger, LEDGER_ENTITY, {})
    if not decision.allowed:
        raise PolicyDenied(
            f"policy denies read_ledger for {principal.id}",
            action=Action.read_ledger.value,
            resource="ledger",
            policies=decision.determining,
        )


def _principal_entities(principal: Principal) -> list[dict[str, Any]]:
    roles = [{"type": "Govex::Role", "id": role} for role in principal.roles]
    return [
        *({"uid": r, "attrs": {}, "parents": []} for r in roles),
        {
            "uid": {"type": "Govex::Principal", "id": principal.id},
            "attrs": {"tenant": principal.tenant, "auth_method": principal.auth_method},
            "parents": roles,
        },
    ]
