"""``govex selftest``: the built-in checks of :mod:`service.selftest`, for this installation.

Reads the service's settings (``--config``, ``GOVEX_*``) and opens the runtime as the
server would, without appending ``service.started``. Prints one line per check,
``N/N checks passed`` and ``module_sha256``; ``--json`` prints the report that
``GET /v1/selftest`` returns. Exit 0 when every check that ran passed, 1 otherwise
(a runtime that cannot start included: its reason is printed).
"""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.session import ConfigOption, load_settings
from service.problems import EXIT_CHECK_FAILED


def selftest(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run the built-in checks and print N/N checks passed and module_sha256.

    Checks: catalog seal, policy schema, ledger chain (whole, or the recent window of a
    large ledger), latest checkpoint signature (with a signing key), packet root
    writable, each source read-only, schemas in sync, and the code on disk against the
    module_sha256 recorded at start.
    """
    from service.problems import problem_body  # noqa: PLC0415 - heavy: only here
    from service.runtime import build_runtime  # noqa: PLC0415
    from service.selftest import run_selftest  # noqa: PLC0415

    settings = load_settings(config)
    try:
        runtime = build_runtime(settings, record_start=False)
    except Exception as exc:  # noqa: BLE001 - a runtime that cannot start fails the self-test
        body = problem_body(exc, request_id=None)
        typer.echo(f"FAIL startup: [{body['code']}] {body['detail']}", err=True)
        typer.echo("0/1 checks passed: the service cannot start")
        raise typer.Exit(EXIT_CHECK_FAILED) from None
    try:
        report = run_selftest(runtime)
    finally:
        runtime.close()
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        for check in report.checks:
            mark = {"passed": "OK", "failed": "FAIL", "skipped": "SKIP"}[check.status]
            typer.echo(f"{mark:4} {check.name:22} {check.detail}")
        typer.echo(report.summary)
        typer.echo(f"module_sha256 {report.module_sha256} (govex {report.version})")
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)
