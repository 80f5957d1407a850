"""Option types that several command groups share (typer ``Annotated`` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from catalog.authority import AuthorityStatus

LedgerUrl = Annotated[
    str,
    typer.Option("--ledger-url", envvar="GOVEX_LEDGER_URL", help="SQLAlchemy URL of the ledger."),
]
VerifierKeyOption = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="The ledger's trusted verifier key (<name>+<id>+<data>) or a file holding it.",
        show_default=False,
    ),
]
SignerKeyFile = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        envvar="GOVEX_LEDGER_KEY_FILE",
        help="Signer key file (PRIVATE+KEY+<origin>+...); its name is the ledger origin.",
        show_default=False,
    ),
]

# The trust options of `govex packet verify` and `govex gate` (the consumption contract).
PacketArgument = Annotated[Path, typer.Argument(help="Packet zip (or an extracted bag directory).")]
ExpectManifestHash = Annotated[
    str | None,
    typer.Option(
        help="Pinned manifest hash (sha256:<hex> or blake3:<hex>), as the service returned it."
    ),
]
RequireAuthority = Annotated[AuthorityStatus, typer.Option(help="Lowest acceptable authority.")]
TrustCatalog = Annotated[
    list[str] | None,
    typer.Option(help="A trusted catalog digest, sha256:<hex> or blake3:<hex> (repeat)."),
]
