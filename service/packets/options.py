"""What a consumer trusts and requires, checked and stated before any check runs.

:func:`parse_pin` reads a pinned digest (``sha256:<hex>``, ``blake3:<hex>`` or bare
sha256 hex); :func:`enforced_options` turns the verifier's options into the
:class:`~service.packets.report.Enforced` block every report starts with. Pure.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from catalog.authority import AuthorityStatus
from catalog.digest import DigestSet
from service.packets.report import Enforced, TrustedKey

if TYPE_CHECKING:
    from collections.abc import Sequence

    from service.packets.inclusion import InclusionEvidence

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def parse_pin(text: str) -> str:
    """A pinned digest as ``sha256:<hex>`` or ``blake3:<hex>`` (bare hex is sha256).

    Raises ``ValueError`` naming the text for an unknown algorithm or a value
    that is not 64 hex digits.
    """
    algorithm, _, value = text.strip().rpartition(":")
    algorithm = algorithm or "sha256"
    if algorithm not in {"sha256", "blake3"}:
        raise ValueError(f"unknown digest algorithm in {text!r}: use sha256:<hex> or blake3:<hex>")
    if not _HEX64.match(value):
        raise ValueError(f"{text!r}: a {algorithm} digest is 64 hex digits")
    return f"{algorithm}:{value.lower()}"


def pin_text(value: str | DigestSet) -> str:
    """A pin as text: a DigestSet by its sha256, text normalized by :func:`parse_pin`."""
    return value.text("sha256") if isinstance(value, DigestSet) else parse_pin(value)


def digest_matches(wanted: str | DigestSet, actual: DigestSet) -> bool:
    """Whether ``actual`` has the pinned value (every algorithm of a DigestSet pin)."""
    if isinstance(wanted, DigestSet):
        return not wanted.mismatches(actual)
    algorithm, _, value = parse_pin(wanted).partition(":")
    return actual.hex("blake3" if algorithm == "blake3" else "sha256") == value


def enforced_options(
    *,
    expect_manifest_hash: str | DigestSet | None = None,
    require_authority: AuthorityStatus = AuthorityStatus.sealed,
    trusted_catalog_digests: Sequence[str | DigestSet] = (),
    inclusion: InclusionEvidence | None = None,
) -> Enforced:
    """What :func:`verify_packet` enforces with these options; ``ValueError`` for a bad pin."""
    key = inclusion.key if inclusion is not None else None
    return Enforced(
        mode="packet",
        require_authority=require_authority,
        manifest_hash=None if expect_manifest_hash is None else pin_text(expect_manifest_hash),
        trusted_catalogs=tuple(pin_text(t) for t in trusted_catalog_digests),
        trusted_keys=()
        if inclusion is None or key is None
        else (
            TrustedKey(
                name=key.name, key_id=key.key_id.hex(), key=key.text(), source=inclusion.key_source
            ),
        ),
        origin=None if key is None else key.name,
        proof=inclusion is not None,
        checkpoint=inclusion is not None and inclusion.checkpoint is not None,
    )
