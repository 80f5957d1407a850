"""``govex remote``: the same verbs against a running service, through :mod:`service.client`.

``--url`` (``GOVEX_URL``) names the service, ``--key`` (``GOVEX_API_KEY``) the credential.
JSON answers go to stdout; progress and problems to stderr. Exit codes follow the
verdict (FORMATS section 6) for ``call`` and ``wait``, the check for ``verify``, and a
refusal's problem otherwise (4 for a refused call, 2 for usage and unreachable services).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer

from service.cli.output import usage
from service.cli.session import parse_params
from service.client import GovexClient, GovexProblem, GovexTimeout
from service.problems import EXIT_CHECK_FAILED, EXIT_USAGE
from service.verdicts import Verdict

if TYPE_CHECKING:
    from collections.abc import Iterator

remote_app = typer.Typer(
    help="Call, follow, cancel, download and verify through a running govex service.",
    no_args_is_help=True,
)

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="GOVEX_URL", help="The service, e.g. http://127.0.0.1:8000."),
]
KeyOption = Annotated[
    str,
    typer.Option("--key", envvar="GOVEX_API_KEY", help="API key or JWT.", show_default=False),
]
_BLOCKED = Verdict.blocked.exit_code
_ENDED = frozenset({"completed", "failed"})


def _client(url: str, key: str) -> GovexClient:
    if not url.startswith(("http://", "https://")):
        usage(f"--url {url!r}: give an http:// or https:// URL")
    if not key:
        usage("no credential: pass --key or set GOVEX_API_KEY")
    return GovexClient(url, key)


def _print(document: Any) -> None:  # noqa: ANN401 - the service's JSON
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _progress(status: dict[str, Any]) -> None:
    rows, size = status.get("rows"), status.get("bytes")
    shown = f" rows {rows:,} bytes {size:,}" if rows is not None and size is not None else ""
    typer.echo(f"{status['call_id']}: {status['state']}{shown}", err=True)


def _verdict_exit(status: dict[str, Any]) -> int:
    verdict = status.get("verdict")
    if status.get("dry_run") is not None:
        return 0 if status["dry_run"]["would_run"] else _BLOCKED
    return Verdict(verdict).exit_code if verdict else 0


def _problem_exit(exc: GovexProblem) -> int:
    typer.echo(f"error [{exc.code or exc.status}]: {exc.problem.get('detail', exc)}", err=True)
    for item in exc.problem.get("errors", []) or []:
        typer.echo("  - " + ", ".join(f"{k}={v}" for k, v in item.items()), err=True)
    if exc.status in {401, 403, 404, 409, 422, 429}:
        return _BLOCKED
    return EXIT_USAGE if exc.status < 500 else Verdict.error_running.exit_code  # noqa: PLR2004


@contextmanager
def _reported() -> Iterator[None]:
    """Map the client's failures to a message on stderr and an exit code."""
    try:
        yield
    except GovexProblem as exc:
        raise typer.Exit(_problem_exit(exc)) from None
    except GovexTimeout as exc:
        typer.echo(f"error [timeout]: {exc}", err=True)
        raise typer.Exit(Verdict.timed_out.exit_code) from None
    except httpx.TransportError as exc:
        typer.echo(f"error [unreachable]: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


@remote_app.command("call")
def remote_call(
    entry: Annotated[str, typer.Argument(help="Catalog entry id.")],
    url: UrlOption,
    key: KeyOption,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Input as name=value (repeat).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="The would-be contract only.")] = False,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Print the accepted call and return at once.")
    ] = False,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retry-safe key: the same key returns the same call.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Download the packet here and verify it against its manifest hash."),
    ] = None,
) -> None:
    """Run an entry on the service; wait for it (progress on stderr) unless --no-wait."""
    with _reported():
        params = parse_params(param or [])
        with _client(url, key) as govex:
            answer = govex.call(
                entry,
                params,
                fmt=fmt,
                dry_run=dry_run,
                respond_async=no_wait,
                idempotency_key=idempotency_key,
            )
            if not dry_run and not no_wait and answer.get("state") not in {None, *_ENDED}:
                answer = govex.wait(answer["call_id"], on_progress=_progress)
            _print(answer)
            if out is not None and not dry_run and not no_wait:
                report = govex.verify(answer["call_id"], out)
                typer.echo(f"packet: {out} ({report.summary_text})", err=True)
                if not report.ok:
                    raise typer.Exit(EXIT_CHECK_FAILED)
            raise typer.Exit(0 if no_wait else _verdict_exit(answer))


@remote_app.command("status")
def remote_status(
    call_id: Annotated[str, typer.Argument(help="Call id.")], url: UrlOption, key: KeyOption
) -> None:
    """Where a call stands (GET /v1/calls/{id})."""
    with _reported(), _client(url, key) as govex:
        _print(govex.status(call_id))


@remote_app.command("wait")
def remote_wait(
    call_id: Annotated[str, typer.Argument(help="Call id.")],
    url: UrlOption,
    key: KeyOption,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most.")] = 3600.0,
) -> None:
    """Follow a call's events until it ends; exit with its verdict's code."""
    with _reported():
        with _client(url, key) as govex:
            status = govex.wait(call_id, timeout_s=timeout, on_progress=_progress)
        _print(status)
        raise typer.Exit(_verdict_exit(status))


@remote_app.command("cancel")
def remote_cancel(
    call_id: Annotated[str, typer.Argument(help="Call id.")], url: UrlOption, key: KeyOption
) -> None:
    """Cancel a running call (DELETE /v1/calls/{id})."""
    with _reported(), _client(url, key) as govex:
        _print(govex.cancel(call_id))


@remote_app.command("list")
def remote_list(
    url: UrlOption,
    key: KeyOption,
    entry: Annotated[str | None, typer.Option(help="Only calls of this entry.")] = None,
    principal: Annotated[str | None, typer.Option(help="Only this principal's calls.")] = None,
    verdict: Annotated[str | None, typer.Option(help="Only calls with this verdict.")] = None,
    since: Annotated[str | None, typer.Option(help="Created at or after (FORMATS time).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many calls.")] = 50,
) -> None:
    """Calls, newest first, one JSON object per line."""
    with _reported():
        filters = {"entry": entry, "principal": principal, "verdict": verdict, "since": since}
        chosen: dict[str, str | int] = {k: v for k, v in filters.items() if v is not None}
        with _client(url, key) as govex:
            for shown, status in enumerate(govex.calls(**chosen, limit=min(limit, 500))):
                if shown >= limit:
                    break
                sys.stdout.write(json.dumps(status, ensure_ascii=False) + "\n")


@remote_app.command("download")
def remote_download(
    call_id: Annotated[str, typer.Argument(help="Call id.")],
    url: UrlOption,
    key: KeyOption,
    out: Annotated[Path, typer.Option(help="Where to write the packet zip.")],
) -> None:
    """Download a call's packet and verify it offline, pinned to the manifest hash reported."""
    with _reported():
        with _client(url, key) as govex:
            report = govex.verify(call_id, out)
        typer.echo(f"packet: {out} ({report.summary_text})", err=True)
        raise typer.Exit(0 if report.ok else EXIT_CHECK_FAILED)
