"""Cedar policy: deny by default, forbid over permit, errors deny."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog.model import QueryEntry
from service.errors import StartupRefused
from service.identity import Principal
from service.policy import LEDGER_ENTITY, Action, Entity, PolicySet, approval_context

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


CALL = {"mode": "run", "tenant_relation": "own", "approval": "not_required"}
APPROVE = {"requester_is_self": False, "tenant_relation": "own"}


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
            {**CALL, "approval": "missing"},
            False,
            ("forbid-requires-approval",),
            id="approval-required",
        ),
        *(
            pytest.param(
                "operator",
                Action.call,
                _entry(requires_approval=True),
                {**CALL, "approval": state},
                True,
                ("permit-call-analysts-operators",),
                id=f"approval-{state}-passes",
            )
            for state in ("valid", "near_expiry")
        ),
        *(
            pytest.param(
                "operator",
                Action.call,
                _entry(requires_approval=True),
                {**CALL, "approval": state},
                False,
                ("forbid-requires-approval",),
                id=f"approval-{state}-fails",
            )
            for state in ("just_expired", "stale", "not_applicable", "unknown")
        ),
        pytest.param(
            "auditor",
            Action.replay,
            _entry(),
            {**CALL, "mode": "replay"},
            True,
            ("permit-replay-auditors-operators",),
            id="auditor-replay",
        ),
        pytest.param(
            "analyst",
            Action.replay,
            _entry(),
            {**CALL, "mode": "replay"},
            False,
            (),
            id="analyst-cannot-replay",
        ),
        pytest.param(
            "operator",
            Action.approve,
            _entry(requires_approval=True),
            APPROVE,
            True,
            ("permit-approve-operators",),
            id="operator-approves",
        ),
        pytest.param(
            "operator",
            Action.approve,
            _entry(requires_approval=True),
            {**APPROVE, "requester_is_self": True},
            False,
            ("forbid-self-approval",),
            id="no-self-approval",
        ),
        pytest.param(
            "analyst",
            Action.approve,
            _entry(requires_approval=True),
            APPROVE,
            False,
            (),
            id="analyst-cannot-approve",
        ),
        pytest.param(
            "operator",
            Action.unmask,
            _entry(sensitive=True),
            CALL,
            True,
            ("permit-unmask-operators",),
            id="operator-unmasks",
        ),
        pytest.param(
            "auditor",
            Action.unmask,
            _entry(sensitive=True),
            CALL,
            False,
            (),
            id="auditor-cannot-unmask",
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


def test_the_approval_context_is_not_required_missing_or_the_state_found() -> None:
    def entry(*, requires_approval: bool) -> QueryEntry:
        return QueryEntry(
            id="a.b", title="A", source="s", engine="sqlite", sql_file="q.sql", sql="SELECT 1\n",
            requires_approval=requires_approval,
        )  # fmt: skip

    assert approval_context(entry(requires_approval=False), "valid") == "not_required"
    assert approval_context(entry(requires_approval=True), None) == "missing"
    assert approval_context(entry(requires_approval=True), "near_expiry") == "near_expiry"
