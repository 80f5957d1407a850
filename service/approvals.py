"""Approvals, classified: which state an approval is in for one call at one moment (pure).

An approval lets ONE requester (principal id, in one tenant) call ONE entry (its id and
its sealed entry digest) with ONE inputs digest (the contract's ``inputs_digest``), from
``approved_at`` until ``expires_at``. :func:`check_approval` classifies every approval
found for a call and keeps the best; nothing here reads a clock or a database: ``now``
and the records are passed in, so a test or a replay pins the evaluation time.

States, in the order the checks run for one approval (:func:`classify`):

1. ``unknown``: the clock makes no sense (``now`` naive, ``approved_at`` later than ``now``
   plus :attr:`ApprovalWindows.skew`, or ``expires_at`` not after ``approved_at``).
   Reading the approvals failed is ``unknown`` too (:func:`unreadable`). Fails safe.
2. not counted (``None``): another entry id or inputs digest (the lookup never returns one).
3. ``not_applicable``: another requester, requester tenant or tenant relation.
4. ``stale``: the entry's digest changed since the approval (the catalog was edited and
   resealed): the approver approved other SQL or another command.
5. ``just_expired``: expired at most :attr:`ApprovalWindows.just_expired` ago. An approval
   that lapsed longer ago is not counted, as if it were not there (``missing``).
6. ``near_expiry``: within the last :meth:`ApprovalWindows.near_expiry_for` of its life
   (10 % of its TTL, at most 5 minutes). Passes, like ``valid``.
7. ``valid``.

When several approvals count, the best state wins (``valid`` > ``near_expiry`` >
``just_expired`` > ``stale`` > ``not_applicable`` > ``unknown``), then the latest expiry.
No approval counted: ``missing`` (:attr:`ApprovalCheck.state` None). Only ``valid`` and
``near_expiry`` pass (``policies/default.cedar``, ``forbid-requires-approval``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ledger.entry import format_ts


class ApprovalState(StrEnum):
    """An approval's state for one call; the values are the policy context's ``approval``."""

    valid = "valid"
    near_expiry = "near_expiry"
    just_expired = "just_expired"
    stale = "stale"
    not_applicable = "not_applicable"
    unknown = "unknown"

    @property
    def passes(self) -> bool:
        return self in {ApprovalState.valid, ApprovalState.near_expiry}


# Best first: the state kept when several approvals count.
_RANK = {state: rank for rank, state in enumerate(ApprovalState)}


@dataclass(frozen=True)
class ApprovalWindows:
    """The windows of the classification; the defaults are the documented ones."""

    near_expiry_fraction: float = 0.1
    near_expiry_max: timedelta = timedelta(minutes=5)
    just_expired: timedelta = timedelta(minutes=15)
    skew: timedelta = timedelta(seconds=60)

    def near_expiry_for(self, ttl: timedelta) -> timedelta:
        """The near-expiry window of an approval valid for ``ttl``."""
        return min(ttl * self.near_expiry_fraction, self.near_expiry_max)


DEFAULT_WINDOWS = ApprovalWindows()


@dataclass(frozen=True)
class ApprovalRecord:
    """One granted approval, as indexed (``govex_approvals``); ``seq`` is its ledger entry."""

    approval_id: str
    entry_id: str
    entry_digest: str  # sha256 hex of the sealed entry digest approved
    inputs_digest: str  # sha256 hex of the bound inputs approved
    requester: str
    requester_tenant: str
    tenant_relation: str
    approver: str
    approved_at: datetime
    expires_at: datetime
    seq: int


@dataclass(frozen=True)
class CallKey:
    """What a call is, for the approvals that may let it run."""

    entry_id: str
    entry_digest: str
    inputs_digest: str
    requester: str
    tenant: str
    tenant_relation: str


@dataclass(frozen=True)
class ApprovalCheck:
    """The outcome for a call: the best state (None: ``missing``), the approval and why."""

    state: ApprovalState | None
    approval: ApprovalRecord | None
    reason: str

    @property
    def passes(self) -> bool:
        return self.state is not None and self.state.passes


def classify(  # noqa: PLR0911 - one return per state, in the documented order
    record: ApprovalRecord,
    call: CallKey,
    now: datetime,
    windows: ApprovalWindows = DEFAULT_WINDOWS,
) -> ApprovalState | None:
    """The state of ``record`` for ``call`` at ``now``; None when it does not count."""
    if now.tzinfo is None or record.approved_at.tzinfo is None or record.expires_at.tzinfo is None:
        return ApprovalState.unknown
    if record.approved_at > now + windows.skew or record.expires_at <= record.approved_at:
        return ApprovalState.unknown
    if record.entry_id != call.entry_id or record.inputs_digest != call.inputs_digest:
        return None
    if (
        record.requester != call.requester
        or record.requester_tenant != call.tenant
        or record.tenant_relation != call.tenant_relation
    ):
        return ApprovalState.not_applicable
    if record.entry_digest != call.entry_digest:
        return ApprovalState.stale
    if now >= record.expires_at:
        if now - record.expires_at <= windows.just_expired:
            return ApprovalState.just_expired
        return None  # lapsed long ago: as if it were not there
    if record.expires_at - now <= windows.near_expiry_for(record.expires_at - record.approved_at):
        return ApprovalState.near_expiry
    return ApprovalState.valid


def check_approval(
    records: Iterable[ApprovalRecord],
    call: CallKey,
    now: datetime,
    windows: ApprovalWindows = DEFAULT_WINDOWS,
) -> ApprovalCheck:
    """The best approval of ``records`` for ``call`` at ``now``; ``missing`` when none counts."""
    best: tuple[ApprovalState, ApprovalRecord] | None = None
    for record in records:
        state = classify(record, call, now, windows)
        if state is None:
            continue
        if (
            best is None
            or _RANK[state] < _RANK[best[0]]
            or (state == best[0] and record.expires_at > best[1].expires_at)
        ):
            best = (state, record)
    if best is None:
        return ApprovalCheck(None, None, f"no approval of {call.entry_id} for these inputs")
    state, record = best
    return ApprovalCheck(state, record, _reason(state, record))


def unreadable(detail: str) -> ApprovalCheck:
    """The outcome when the approvals cannot be read: ``unknown``, which fails safe."""
    return ApprovalCheck(ApprovalState.unknown, None, f"approvals cannot be read: {detail}")


def _reason(state: ApprovalState, record: ApprovalRecord) -> str:
    """Private: one line naming the approval, its state and the time that decided it."""
    expires = format_ts(record.expires_at)
    phrases = {
        ApprovalState.valid: f"valid until {expires}",
        ApprovalState.near_expiry: f"near_expiry, expires at {expires}",
        ApprovalState.just_expired: f"just_expired at {expires}",
        ApprovalState.stale: "stale: the entry changed since it was approved",
        ApprovalState.not_applicable: "not_applicable to this requester or tenant",
        ApprovalState.unknown: "unknown: its times make no sense against the clock",
    }
    return f"approval {record.approval_id} {phrases[state]}"
