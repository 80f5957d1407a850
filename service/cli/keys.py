"""``govex keys``: API keys (create, list, revoke), ledger signing keys (generate), masking keys.

API keys live in the keys file (``govex.keys/v1``, ``GOVEX_KEYS_FILE``) as SHA-256
hashes (:mod:`service.api_keys`): ``create`` prints the new token once and never
stores it; ``list`` never prints a hash; ``revoke`` marks a key revoked, and the
running service refuses it from its next request (it follows the file).

Ledger signing keys are Ed25519 keys in the C2SP signed-note form: a signer key
file holds ``PRIVATE+KEY+<name>+<id>+<data>`` (secret, mode 0600); a verifier key
is ``<name>+<id>+<data>``, given as text or as a file. For a ledger key the name is
the ledger origin. A masking key (``masking``) is 32 random bytes as hex (secret, mode 0600).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.output import fail, io_error, read_text, usage
from service.problems import EXIT_USAGE

if TYPE_CHECKING:
    from ledger.keys import SignerKey, VerifierKey

keys_app = typer.Typer(
    help="API keys (create, list, revoke), ledger signing keys (generate), masking keys.",
    no_args_is_help=True,
)

KeysFileOption = Annotated[
    Path,
    typer.Option(
        "--keys-file",
        envvar="GOVEX_KEYS_FILE",
        help="API keys file (govex.keys/v1, hashed tokens).",
        show_default=False,
    ),
]


@keys_app.command("create")
def keys_create(
    principal: Annotated[str, typer.Option(help="The principal id the key stands for.")],
    role: Annotated[list[str], typer.Option("--role", help="A role of the principal (repeat).")],
    tenant: Annotated[str, typer.Option(help="The principal's tenant; '*' is platform-wide.")],
    keys_file: KeysFileOption,
    expires: Annotated[
        str | None,
        typer.Option(help="Expiry, ISO 8601 (UTC unless it has an offset).", show_default=False),
    ] = None,
    days: Annotated[
        int | None, typer.Option(min=1, help="Expire N days from now.", show_default=False)
    ] = None,
    key_id: Annotated[
        str | None, typer.Option(help="The key id (default k-<ULID>).", show_default=False)
    ] = None,
) -> None:
    """Create an API key: print its token ONCE, add only its hash to the keys file.

    The file is replaced atomically (mode 0600) and created when missing. Without
    --expires or --days the key does not expire.
    """
    from service.api_keys import issue_key  # noqa: PLC0415
    from service.clock import system_clock  # noqa: PLC0415
    from service.errors import ServiceError  # noqa: PLC0415

    now = system_clock()
    expires_at = _expiry(expires, days, now)
    try:
        issued = issue_key(
            keys_file,
            principal=principal,
            roles=tuple(role),
            tenant=tenant,
            expires_at=expires_at,
            now=now,
            key_id=key_id,
        )
    except ServiceError as exc:
        fail(exc, code=EXIT_USAGE)
    typer.echo(f"key_id: {issued.record.key_id}")
    typer.echo(f"token: {issued.token}")
    typer.echo(
        f"the token is shown only now: hand it over securely; {keys_file} holds only its hash",
        err=True,
    )


@keys_app.command("list")
def keys_list(
    keys_file: KeysFileOption,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the API keys: id, principal, roles, tenant, expiry and status; never a hash."""
    from service.api_keys import read_keys_file  # noqa: PLC0415
    from service.clock import system_clock  # noqa: PLC0415
    from service.errors import ServiceError  # noqa: PLC0415

    try:
        keys = read_keys_file(keys_file).keys
    except ServiceError as exc:
        fail(exc, code=EXIT_USAGE)
    now = system_clock()
    rows = [
        {
            "key_id": record.key_id,
            "principal": record.principal,
            "roles": list(record.roles),
            "tenant": record.tenant,
            "expires_at": _iso(record.expires_at),
            "revoked_at": _iso(record.revoked_at),
            "status": record.status(now),
        }
        for record in keys
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = [("KEY_ID", "PRINCIPAL", "ROLES", "TENANT", "EXPIRES", "STATUS")] + [
        (
            str(row["key_id"]),
            str(row["principal"]),
            ",".join(record.roles) or "-",
            str(row["tenant"]),
            str(row["expires_at"] or "never"),
            str(row["status"]),
        )
        for row, record in zip(rows, keys, strict=True)
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The id of the API key to revoke.")],
    keys_file: KeysFileOption,
) -> None:
    """Revoke an API key: the service refuses it from its next request on."""
    from service.api_keys import revoke_key  # noqa: PLC0415
    from service.clock import system_clock  # noqa: PLC0415
    from service.errors import NotFound, ServiceError  # noqa: PLC0415

    try:
        record, changed = revoke_key(keys_file, key_id, system_clock())
    except NotFound:
        usage(f"no API key with id {key_id!r} in {keys_file}: 'govex keys list' shows them")
    except ServiceError as exc:
        fail(exc, code=EXIT_USAGE)
    when = _iso(record.revoked_at)
    if changed:
        typer.echo(f"revoked {record.key_id} ({record.principal}) at {when}")
    else:
        typer.echo(f"{record.key_id} was already revoked at {when}")


def _expiry(expires: str | None, days: int | None, now: datetime) -> datetime | None:
    """The expiry --expires or --days asks for (exit 2 for both, or a bad or past time)."""
    if expires is not None and days is not None:
        usage("give --expires or --days, not both")
    if days is not None:
        return now + timedelta(days=days)
    if expires is None:
        return None
    try:
        moment = datetime.fromisoformat(expires)
    except ValueError:
        usage(f"--expires {expires!r} is not an ISO 8601 date or time")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if moment <= now:
        usage(f"--expires {expires} is not in the future")
    return moment


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
    """For the LEDGER: an Ed25519 signer key (C2SP signed-note form) that signs checkpoints.

    Prints its verifier key, which auditors use. Not an API key: see 'govex keys create'.
    """
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


@keys_app.command("masking")
def keys_masking(
    out: Annotated[
        Path,
        typer.Option(
            help="Write the SECRET masking key here (hex, mode 0600); never overwrites.",
        ),
    ],
) -> None:
    """For MASKING: 32 random bytes that key the digests of sensitive columns.

    Set GOVEX_MASKING_KEY_FILE to the file. Prints the key id that contracts record; the key
    itself is printed nowhere. Keep it for the life of the packets: a new key gives new masks.
    """
    from service.masking import MaskingKey  # noqa: PLC0415

    if out.exists() or out.is_symlink():
        usage(f"{out} exists: refusing to overwrite a key")
    key = MaskingKey.generate()
    try:
        _write_new(out, key.text() + "\n", mode=0o600)
    except OSError as exc:
        io_error(exc)
    typer.echo(key.key_id)
    typer.echo(f"masking key in {out} (keep it secret); its key id is printed above", err=True)


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
