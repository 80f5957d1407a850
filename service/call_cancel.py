"""``DELETE /v1/calls/{id}``: stop a running call, ledgered, in whichever worker runs it.

Policy action ``cancel`` decides (the bundled policies: the call's own principal, and
operators). The request is ledgered first (``call.cancelled``: who, and the decision),
then marked in the call index, which every worker's executor watches; the worker that
runs the call cancels its token at once when it is this one. The run stops at its next
row (a query) or its process group is killed (a command), and the call ends with its
``call.finished`` (``error_running``, "cancelled: ..."), with no packet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.ids import is_opaque_id
from ledger.entry import format_ts
from service.errors import CallNotRunning, NotFound, PolicyDenied
from service.policy import Action, entry_entity, require_ledger_reader
from service.replay_report import is_report

if TYPE_CHECKING:
    from service.call_executor import CallExecutor
    from service.call_index import CallRecord
    from service.identity import Principal
    from service.runtime import Runtime

CANCEL_WAIT_S = 2.0


def cancel_call(
    runtime: Runtime, executor: CallExecutor, principal: Principal, call_id: str
) -> CallRecord:
    """Ask ``call_id`` to stop; returns its record (ended, when it ended within a moment).

    Raises :class:`NotFound` (unknown id, whoever asks), :class:`PolicyDenied`, and
    :class:`CallNotRunning` when the call has ended already.
    """
    record = runtime.calls.get(call_id) if is_opaque_id(call_id) else None
    if record is None:
        raise NotFound("call", call_id)
    if is_report(record):  # a replay's row: indexed once it ended, and no catalog entry's
        require_ledger_reader(runtime.policy, principal)
        raise CallNotRunning(f"replay {call_id} has ended ({record.verdict})", where=call_id)
    entry, _ = runtime.sealed.runnable_entry(record.entry_id)
    decision = runtime.policy.decide(
        principal,
        Action.cancel,
        entry_entity(entry),
        {"owner": record.principal == principal.id},
    )
    if not decision.allowed:
        raise PolicyDenied(
            f"policy denies cancel of call {call_id} for {principal.id}",
            action=Action.cancel.value,
            resource=call_id,
            policies=decision.determining,
        )
    if record.done:
        raise CallNotRunning(
            f"call {call_id} has ended ({record.state}, verdict {record.verdict})", where=call_id
        )
    now = runtime.clock()
    runtime.ledger.append(
        "call.cancelled",
        {
            "call_id": call_id,
            "by": principal.model_dump(mode="json"),
            "policy": decision.record(),
        },
        now,
    )
    runtime.calls.update(call_id, cancel_requested_at=format_ts(now))
    executor.cancel(call_id, f"by {principal.id}")
    running = executor.get(call_id)
    if running is not None:
        running.done_within(CANCEL_WAIT_S)
    return runtime.calls.get(call_id) or record
