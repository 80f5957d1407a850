"""``govex keys``: Ed25519 keys in the C2SP signed-note form, and reading them from the CLI.

A signer key file holds ``PRIVATE+KEY+<name>+<id>+<data>`` (secret, mode
0600); a verifier key is ``<name>+<id>+<data>``, given as text or as a file.
For a ledger key the name is the ledger origin.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.output import fail, io_error, read_text, usage
from service.problems import EXIT_USAGE

if TYPE_CHECKING:
    from ledger.keys import SignerKey, VerifierKey

keys_app = typer.Typer(help="Ed25519 keys in the C2SP signed-note form.", no_args_is_help=True)


@keys_app.command("generate")
def keys_generate(
    name: Annotated[
        str, typer.Argument(help="Key name; for a ledger key, the ledger origin (GOVEX_ORIGIN).")
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the SECRET signer key here (mode 0600) and the verifier key to FILE.pub; "
            "never overwrites. Without it both keys go to standard output.",
        ),
    ] = None,
) -> None:
    """Generate an Ed25519 signer key (C2SP signed-note form) and print its verifier key."""
    from ledger.errors import KeyFormatError  # noqa: PLC0415
    from ledger.keys import SignerKey  # noqa: PLC0415

    try:
        signer = SignerKey.generate(name)
    except KeyFormatError as exc:
        fail(exc, code=EXIT_USAGE)
    verifier = signer.verifier_key.text()
    if out is None:
        typer.echo(signer.text())
        typer.echo(verifier)
        typer.echo("the first line is the SECRET signer key, the second its verifier key", err=True)
        return
    public = out.with_name(out.name + ".pub")
    for path in (out, public):
        if path.exists() or path.is_symlink():
            usage(f"{path} exists: refusing to overwrite a key")
    try:
        _write_new(out, signer.text() + "\n", mode=0o600)
        _write_new(public, verifier + "\n", mode=0o644)
    except OSError as exc:
        io_error(exc)
    typer.echo(verifier)
    typer.echo(f"signer key in {out} (keep it secret), verifier key in {public}", err=True)


def _write_new(path: Path, text: str, *, mode: int) -> None:
    """Create ``path`` with ``mode`` (less the umask) and write ``text``; never replace a file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)


def verifier_key(value: str) -> VerifierKey:
    """The verifier key given as its text, or as a file holding it (exit 2 when neither)."""
    from ledger.errors import KeyFormatError  # noqa: PLC0415
    from ledger.keys import parse_verifier_key  # noqa: PLC0415

    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    if not is_file and "+" not in value:
        usage(f"--key {value}: no such file, and not a verifier key <name>+<id>+<data>")
    text = read_text(path).strip() if is_file else value.strip()
    try:
        return parse_verifier_key(text)
    except KeyFormatError as exc:
        fail(exc, context=f"--key {path}" if is_file else "--key", code=EXIT_USAGE)


def signer_key(path: Path | None) -> SignerKey:
    """The signer key in ``path`` (--key-file or GOVEX_LEDGER_KEY_FILE); exit 2 without one."""
    from ledger.errors import KeyFormatError  # noqa: PLC0415
    from ledger.keys import parse_signer_key  # noqa: PLC0415

    if path is None:
        usage("no signer key: pass --key-file FILE or set GOVEX_LEDGER_KEY_FILE")
    try:
        return parse_signer_key(read_text(path).strip())
    except KeyFormatError as exc:
        fail(exc, context=f"--key-file {path}", code=EXIT_USAGE)
