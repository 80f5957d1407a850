"""The console's two acts, through the API's core: a dry run, and starting a run.

Both go through :func:`service.calls.accept`, the path behind ``POST /v1/calls`` and
``govex call``: the contract, the seal, the inputs, policy, approvals, the lease, and
every refusal ledgered as ``call.denied`` (raised as ``CallBlocked``). Form fields are
text, so the entry's parameter types convert them (``inputs_from_text``, as for
``govex call -p name=value``). A run is handed to the app's executor and followed on
its call page; nothing waits for it here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from service.calls import CallResult, accept
from service.console.errors import FormRefused
from service.contract import CallRequest, OutputFormat

if TYPE_CHECKING:
    from service.call_executor import CallExecutor
    from service.identity import Principal
    from service.runtime import Runtime

DEFAULT_FORMAT = "jsonl"


def call_request(
    entry_id: str, params: dict[str, str], output_format: str, mode: str
) -> CallRequest:
    """The request a form makes; :class:`FormRefused` (422) for a format that does not exist."""
    if output_format not in get_args(OutputFormat):
        raise FormRefused(f"unknown output format {output_format!r}", status=422, where="format")
    return CallRequest.model_validate(
        {"entry": entry_id, "params": params, "mode": mode, "format": output_format}
    )


def dry_run(
    runtime: Runtime, principal: Principal, request: CallRequest, *, request_id: str | None
) -> CallResult:
    """Every check a run would meet, ledgered as ``call.dry_run``; refusals as for a run."""
    result = accept(
        runtime,
        principal,
        request.model_copy(update={"mode": "dry_run"}),
        request_id=request_id,
        inputs_from_text=True,
    )
    if not isinstance(result, CallResult):  # pragma: no cover - a dry run ends in accept
        raise TypeError("a dry run was accepted as a run")
    return result


def start_run(
    runtime: Runtime,
    executor: CallExecutor,
    principal: Principal,
    request: CallRequest,
    *,
    request_id: str | None,
) -> str:
    """Accept a run (``call.started`` durable) and hand it to ``executor``; its call id."""
    accepted = accept(
        runtime,
        principal,
        request.model_copy(update={"mode": "run"}),
        request_id=request_id,
        inputs_from_text=True,
    )
    if isinstance(accepted, CallResult):  # pragma: no cover - only dry runs end in accept
        return accepted.call_id
    executor.submit(accepted)
    return accepted.call_id
