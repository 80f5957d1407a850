"""``govex approvals``: grant an approval, list approvals; the same core as ``/v1/approvals``.

Both act as the principal of ``--key`` (``GOVEX_API_KEY``), authenticated as ``govex
call`` is. A refusal exits with its problem's code (FORMATS section 6): a policy deny 4,
an entry that needs no approval or a TTL out of bounds 2.
"""

from __future__ import annotations

import re
from typing import Annotated

import typer

from service.cli.output import usage
from service.cli.session import ConfigOption, caller_session, load_settings, parse_params

approvals_app = typer.Typer(
    help="Approve one requester's call of an entry with given inputs, for a bounded time.",
    no_args_is_help=True,
)

ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        envvar="GOVEX_API_KEY",
        help="API key (or a JWT, where enabled) of the approver or reader.",
        show_default=False,
    ),
]
_DURATION = re.compile(r"^([0-9]+)([smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ttl(text: str) -> int:
    """Seconds of a TTL written as ``90``, ``90s``, ``30m``, ``1h`` or ``1d`` (exit 2 otherwise)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        usage(f"--ttl {text!r}: use a positive number of s, m, h or d (e.g. 1h)")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


@approvals_app.command("grant")
def grant(
    entry: Annotated[str, typer.Option("--entry", help="Catalog entry id (requires approval).")],
    requester: Annotated[str, typer.Option("--requester", help="Requester principal id.")],
    requester_tenant: Annotated[
        str, typer.Option("--requester-tenant", help="The requester's tenant.")
    ],
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded in the ledger.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Input as name=value (repeat), as the requester's."),
    ] = None,
    ttl: Annotated[
        str | None, typer.Option("--ttl", help="How long, e.g. 1h (default: configured).")
    ] = None,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
) -> None:
    """Grant an approval (ledgered approval.granted) and print it as JSON."""
    from service.approval_grants import ApprovalRequest, grant  # noqa: PLC0415

    ttl_s = None if ttl is None else parse_ttl(ttl)
    pairs = parse_params(param or [])
    with caller_session(load_settings(config), api_key, record_start=False) as (runtime, approver):
        approval = grant(
            runtime,
            approver,
            ApprovalRequest(
                entry=entry,
                params=pairs,
                requester=requester,
                requester_tenant=requester_tenant,
                ttl_s=ttl_s,
                reason=reason,
            ),
            request_id=None,
            inputs_from_text=True,  # command-line values: the entry's parameter types convert
        )
    typer.echo(approval.model_dump_json(indent=2))


@approvals_app.command("list")
def list_approvals(
    entry: Annotated[str | None, typer.Option("--entry", help="Only this entry's.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    api_key: ApiKeyOption = None,
    config: ConfigOption = None,
) -> None:
    """List the latest approvals, newest first, as JSON (auditors and operators)."""
    from service.approval_grants import list_approvals as listed  # noqa: PLC0415

    with caller_session(load_settings(config), api_key, record_start=False) as (runtime, reader):
        approvals = listed(runtime, reader, entry, limit)
    typer.echo("[" + ",\n".join(a.model_dump_json(indent=2) for a in approvals) + "]")
