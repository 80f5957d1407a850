"""How a command reports a failure: a problem on stderr and the exit code of FORMATS section 6.

Domain errors go through :mod:`service.problems` (the one mapping, STYLE G3);
a command line that cannot work, or a file that cannot be read, exits 2. No
stack trace ever reaches the user.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

from service.problems import EXIT_USAGE, exit_code

if TYPE_CHECKING:
    from pathlib import Path


def fail(exc: BaseException, *, context: str = "", code: int | None = None) -> NoReturn:
    """Report a domain error on stderr and exit with its code; never a stack trace.

    ``context`` (the option or file at fault) prefixes the detail; ``code``
    overrides the exit code, for an error in what the user typed (usage, 2).
    """
    from service.problems import problem_body, problem_errors  # noqa: PLC0415 - light, but only on failure

    body = problem_body(exc, request_id=None)
    prefix = f"{context}: " if context else ""
    typer.echo(f"error [{body['code']}]: {prefix}{body['detail']}", err=True)
    for item in problem_errors(exc):
        typer.echo("  - " + ", ".join(f"{k}={v}" for k, v in item.items()), err=True)
    typer.echo(f"hint: {body['hint']}", err=True)
    raise typer.Exit(exit_code(exc) if code is None else code)


def usage(message: str) -> NoReturn:
    """Refuse a command line that cannot work (exit 2)."""
    typer.echo(f"error [invalid_request]: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def io_error(exc: OSError) -> NoReturn:
    """Report a file that cannot be read or written (exit 2)."""
    typer.echo(f"error [io_error]: {exc}", err=True)
    raise typer.Exit(EXIT_USAGE) from None


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; exit 2 when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"error [io_error]: {path}: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
