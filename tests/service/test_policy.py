"""Cedar policy: deny by default, forbid over permit, errors deny."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import StartupRefused
from service.identity import Principal
from service.policy import LEDGER_ENTITY, Action, Entity, PolicySet

BUNDLED = PolicySet.load(None)


def _principal(role: str, tenant: str = "acme") -> Principal:
    return Principal(
        id=f"p-{role}", roles=(role,), tenant=tenant, auth_method="api_key", key_id=f"k-{role}"
    )


def _entry(*, sensitive: bool = False, requires_approval: bool = False) -> Entity:
    return Entity(
        "Govex::Entry",
        "a.b",
        {
            "kind": "query",
            "tags": [],
            "sensitive": sensitive,
            "requires_approval": requires_approval,
            "tenant_scoped": True,
        },
    )


CALL = {"mode": "run", "tenant_relation": "own"}


@pytest.mark.parametrize(
    ("role", "action", "entry", "context", "allowed", "determining"),
    [
        pytest.param(
            "analyst",
            Action.call,
            _entry(),
            CALL,
            True,
            ("permit-call-analysts-operators",),
            id="analyst-call",
        ),
        pytest.param("auditor", Action.call, _entry(), CALL, False, (), id="auditor-cannot-call"),
        pytest.param(
            "auditor",
            Action.dry_run,
            _entry(),
            {**CALL, "mode": "dry_run"},
            True,
            ("permit-dry-run-auditors",),
            id="auditor-dry-run",
        ),
        pytest.param(
            "analyst",
            Action.call,
            _entry(),
            {**CALL, "tenant_relation": "cross"},
            False,
            ("forbid-cross-tenant",),
            id="cross-tenant-forbidden",
        ),
        pytest.param(
            "analyst",
            Action.call,
            _entry(sensitive=True),
            CALL,
            False,
            ("forbid-sensitive-non-operators",),
            id="sensitive-analyst",
        ),
        pytest.param(
            "operator",
            Action.call,
            _entry(sensitive=True),
            CALL,
            True,
            ("permit-call-analysts-operators",),
            id="sensitive-operator",
        ),
        pytest.param(
            "operator",
            Action.call,
            _entry(requires_approval=True),
            CALL,
            False,
            ("forbid-requires-approval",),
            id="approval-required",
        ),
        pytest.param("nobody", Action.call, _entry(), CALL, False, (), id="no-role-no-call"),
    ],
)
def test_bundled_policy_decisions(
    role: str,
    action: Action,
    entry: Entity,
    context: dict[str, str],
    allowed: bool,
    determining: tuple[str, ...],
) -> None:
    decision = BUNDLED.decide(_principal(role), action, entry, context)
    assert decision.allowed is allowed
    assert decision.determining == determining
    assert decision.record()["policy_digest"] == BUNDLED.digest.model_dump()


def test_ledger_reads_are_for_auditors_and_operators() -> None:
    assert BUNDLED.decide(_principal("auditor"), Action.read_ledger, LEDGER_ENTITY, {}).allowed
    assert not BUNDLED.decide(_principal("analyst"), Action.read_ledger, LEDGER_ENTITY, {}).allowed


def test_a_request_the_schema_rejects_is_a_deny_not_an_allow() -> None:
    decision = BUNDLED.decide(_principal("analyst"), Action.call, _entry(), {"mode": 7})
    assert decision.allowed is False
    assert decision.errors


def _copy_bundled(tmp_path: Path) -> Path:
    source = Path(__file__).resolve().parents[2] / "policies"
    for name in ("govex.cedarschema", "default.cedar"):
        (tmp_path / name).write_text((source / name).read_text())
    return tmp_path


def test_a_policy_that_does_not_validate_refuses_start(tmp_path: Path) -> None:
    directory = _copy_bundled(tmp_path)
    (directory / "extra.cedar").write_text(
        'permit (principal, action, resource) when { resource.colour == "red" };'
    )
    with pytest.raises(StartupRefused, match="do not validate"):
        PolicySet.load(directory)


def test_no_policies_refuses_start(tmp_path: Path) -> None:
    directory = _copy_bundled(tmp_path)
    (directory / "default.cedar").unlink()
    with pytest.raises(StartupRefused, match="nothing could be allowed"):
        PolicySet.load(directory)


def test_policy_digest_changes_with_the_policy_text(tmp_path: Path) -> None:
    directory = _copy_bundled(tmp_path)
    (directory / "more.cedar").write_text("// a comment changes the digest too\n")
    assert PolicySet.load(directory).digest != BUNDLED.digest
