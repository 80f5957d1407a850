"""What the commands that act as a caller share: settings, ``name=value`` params, a session.

``govex call`` and ``govex approvals`` run the same core as the HTTP routes: a
runtime built from the settings (``--config``/``GOVEX_CONFIG`` or ``./govex.toml``, and
the ``GOVEX_*`` variables, which win; see :mod:`service.config`), the caller authenticated from
``GOVEX_API_KEY`` (or ``--api-key``) exactly as a bearer token would be, and
every failure reported once, as a problem on stderr with its exit code.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.auth_refusals import authenticate_or_ledger
from service.cli.output import fail
from service.problems import EXIT_USAGE
from service.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from service.identity import Principal
    from service.runtime import Runtime

ParamValue = str | int | float | bool | None

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        envvar="GOVEX_CONFIG",
        help="Configuration file (TOML); default ./govex.toml when it exists. GOVEX_* "
        "variables win over it.",
        show_default=False,
        dir_okay=False,
    ),
]


def load_settings(config: Path | None = None, **overrides: object) -> Settings:
    """The settings (``config`` file, ``GOVEX_*``, non-None ``overrides``); exit 2 on a bad one.

    Every problem is printed, each with its place (a key of the file, or a variable).
    """
    from service.config import load_settings as load  # noqa: PLC0415
    from service.errors import SettingsInvalid  # noqa: PLC0415

    try:
        return load(config, **overrides)
    except SettingsInvalid as exc:
        for where, detail in exc.problems:
            typer.echo(f"error [configuration_error]: {where}: {detail}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def parse_params(items: list[str]) -> dict[str, ParamValue]:
    """``--param name=value`` items as a mapping (values stay text); exit 2 on a bad item.

    A name given twice is refused, as the HTTP API refuses a repeated JSON key: which of
    the two values was meant is not for the parser to guess.
    """
    pairs: dict[str, ParamValue] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            typer.echo(f"error [invalid_request]: --param {item!r} is not name=value", err=True)
            raise typer.Exit(EXIT_USAGE)
        if name in pairs:
            typer.echo(f"error [invalid_request]: --param {name!r} is given twice", err=True)
            raise typer.Exit(EXIT_USAGE)
        pairs[name] = value
    return pairs


@contextmanager
def caller_session(
    settings: Settings, api_key: str | None, *, record_start: bool = True
) -> Iterator[tuple[Runtime, Principal]]:
    """A runtime and the authenticated caller; any failure inside is reported and exits.

    The runtime is closed when the block ends. ``typer.Exit`` raised by the
    block passes through unchanged.
    """
    from service.runtime import build_runtime  # noqa: PLC0415 - heavy: only for these commands

    try:
        runtime = build_runtime(settings, record_start=record_start)
    except Exception as exc:  # noqa: BLE001 - every start-up failure is reported, never traced
        fail(exc)
    try:
        principal = authenticate_or_ledger(
            runtime, f"Bearer {api_key}" if api_key else None, via="cli"
        )
        yield runtime, principal
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped to a problem and an exit code
        fail(exc)
    finally:
        runtime.close()
