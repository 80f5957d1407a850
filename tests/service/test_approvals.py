"""Approval classification: every state, window boundaries, a pinned `now`, several approvals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from service.approvals import (
    ApprovalRecord,
    ApprovalState,
    ApprovalWindows,
    CallKey,
    check_approval,
    classify,
    unreadable,
)

T0 = datetime(2026, 6, 30, 12, 0, 0, tzinfo=UTC)  # approved_at of every sample
HOUR = timedelta(hours=1)
CALL = CallKey(
    entry_id="orders.large",
    entry_digest="e" * 64,
    inputs_digest="i" * 64,
    requester="alice",
    tenant="acme",
    tenant_relation="own",
)
RECORD = ApprovalRecord(
    approval_id="01APPROVAL",
    entry_id="orders.large",
    entry_digest="e" * 64,
    inputs_digest="i" * 64,
    requester="alice",
    requester_tenant="acme",
    tenant_relation="own",
    approver="carol",
    approved_at=T0,
    expires_at=T0 + HOUR,  # near-expiry window: min(6 min, 5 min) = 5 min
    seq=7,
)


@pytest.mark.parametrize(
    ("changes", "now", "expected"),
    [
        pytest.param({}, T0, ApprovalState.valid, id="valid-at-grant"),
        pytest.param(
            {},
            T0 + HOUR - timedelta(minutes=5, seconds=1),
            ApprovalState.valid,
            id="valid-just-before-near-expiry",
        ),
        pytest.param(
            {},
            T0 + HOUR - timedelta(minutes=5),
            ApprovalState.near_expiry,
            id="near-expiry-at-window-start",
        ),
        pytest.param(
            {},
            T0 + HOUR - timedelta(microseconds=1),
            ApprovalState.near_expiry,
            id="near-expiry-last-microsecond",
        ),
        pytest.param({}, T0 + HOUR, ApprovalState.just_expired, id="just-expired-at-expiry"),
        pytest.param(
            {},
            T0 + HOUR + timedelta(minutes=15),
            ApprovalState.just_expired,
            id="just-expired-window-end",
        ),
        pytest.param(
            {},
            T0 + HOUR + timedelta(minutes=15, microseconds=1),
            None,
            id="lapsed-long-ago-does-not-count",
        ),
        pytest.param({"entry_digest": "f" * 64}, T0, ApprovalState.stale, id="stale-entry"),
        pytest.param({"requester": "bob"}, T0, ApprovalState.not_applicable, id="other-requester"),
        pytest.param(
            {"requester_tenant": "globex"}, T0, ApprovalState.not_applicable, id="other-tenant"
        ),
        pytest.param(
            {"tenant_relation": "platform"}, T0, ApprovalState.not_applicable, id="other-relation"
        ),
        pytest.param({"inputs_digest": "j" * 64}, T0, None, id="other-inputs-do-not-count"),
        pytest.param({"entry_id": "orders.other"}, T0, None, id="other-entry-does-not-count"),
        pytest.param({}, T0 - timedelta(seconds=60), ApprovalState.valid, id="skew-tolerated"),
        pytest.param(
            {}, T0 - timedelta(seconds=61), ApprovalState.unknown, id="approved-in-the-future"
        ),
        pytest.param({"expires_at": T0}, T0, ApprovalState.unknown, id="expires-before-approved"),
        pytest.param({}, T0.replace(tzinfo=None), ApprovalState.unknown, id="naive-now"),
    ],
)
def test_classify(
    changes: dict[str, object], now: datetime, expected: ApprovalState | None
) -> None:
    assert classify(replace(RECORD, **changes), CALL, now) == expected  # type: ignore[arg-type]


def test_near_expiry_window_is_a_tenth_of_a_short_ttl() -> None:
    short = replace(RECORD, expires_at=T0 + timedelta(minutes=10))  # window: 1 minute
    assert classify(short, CALL, T0 + timedelta(minutes=8, seconds=59)) == ApprovalState.valid
    assert classify(short, CALL, T0 + timedelta(minutes=9)) == ApprovalState.near_expiry


def test_windows_are_parameters() -> None:
    windows = ApprovalWindows(just_expired=timedelta(0))
    assert classify(RECORD, CALL, T0 + HOUR, windows) == ApprovalState.just_expired
    assert classify(RECORD, CALL, T0 + HOUR + timedelta(microseconds=1), windows) is None


def test_no_approval_is_missing_and_blocks() -> None:
    check = check_approval([], CALL, T0)
    assert (check.state, check.approval, check.passes) == (None, None, False)
    assert "no approval of orders.large" in check.reason


def test_only_valid_and_near_expiry_pass() -> None:
    assert {s for s in ApprovalState if s.passes} == {
        ApprovalState.valid,
        ApprovalState.near_expiry,
    }


def test_the_best_of_several_wins_then_the_latest_expiry() -> None:
    expired = replace(RECORD, approval_id="A1", expires_at=T0 + timedelta(minutes=1))
    stale = replace(RECORD, approval_id="A2", entry_digest="f" * 64)
    near = replace(RECORD, approval_id="A3", expires_at=T0 + timedelta(minutes=11))
    valid = replace(RECORD, approval_id="A4", expires_at=T0 + 2 * HOUR)
    valid_later = replace(RECORD, approval_id="A5", expires_at=T0 + 3 * HOUR)
    now = T0 + timedelta(minutes=10)
    check = check_approval([expired, stale, near, valid, valid_later], CALL, now)
    assert (check.state, check.approval) == (ApprovalState.valid, valid_later)
    check = check_approval([expired, stale, near], CALL, now)
    assert (check.state, check.approval) == (ApprovalState.near_expiry, near)
    check = check_approval([expired, stale], CALL, now)
    assert check.state == ApprovalState.just_expired
    assert check.reason == "approval A1 just_expired at 2026-06-30T12:01:00.000000Z"
    assert check_approval([stale], CALL, now).state == ApprovalState.stale


def test_the_pinned_now_decides_not_the_wall_clock() -> None:
    # Evaluated at a replay's pinned time long before today: still valid then.
    assert check_approval([RECORD], CALL, T0 + timedelta(minutes=1)).passes
    assert not check_approval([RECORD], CALL, T0 + 2 * HOUR).passes


def test_unreadable_approvals_are_unknown_and_fail_safe() -> None:
    check = unreadable("database is locked")
    assert check.state == ApprovalState.unknown
    assert not check.passes
    assert check.reason == "approvals cannot be read: database is locked"
