"""Entry and catalog digests, sealing, and the seal check (FORMATS section 2).

``entry_digest = digest(JCS(entry))`` and ``catalog_digest = digest(JCS(resolved
catalog))``, both over ``model_dump(mode="json")``. :func:`check_seal` proves
only that the digests match (authority ``sealed``); whether a signature makes
it ``governed`` is decided in ``service/``, which holds the key code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from catalog.authority import AuthorityStatus
from catalog.canonical import jcs
from catalog.digest import DigestSet, digest_bytes
from catalog.errors import SealMismatch
from catalog.model import ResolvedCatalog, Seal, SealCatalog
from catalog.times import format_time

if TYPE_CHECKING:
    from datetime import datetime

    from catalog.model import CommandEntry, QueryEntry


def entry_digest(entry: QueryEntry | CommandEntry) -> DigestSet:
    """Digest set of the JCS bytes of one resolved entry."""
    return digest_bytes(jcs(entry.model_dump(mode="json"), where=f"entry {entry.id}"))


def catalog_digest(catalog: ResolvedCatalog) -> DigestSet:
    """Digest set of the JCS bytes of the whole resolved catalog document."""
    return digest_bytes(jcs(catalog.model_dump(mode="json"), where="resolved catalog"))


def compute_seal(catalog: ResolvedCatalog, sealed_at: datetime) -> Seal:
    """Seal ``catalog`` as of ``sealed_at``: authority ``sealed``, no signature."""
    return Seal(
        catalog=SealCatalog(name=catalog.name, version=catalog.version),
        catalog_digest=catalog_digest(catalog),
        entries={e.id: entry_digest(e) for e in catalog.entries},
        authority="sealed",
        sealed_at=format_time(sealed_at),
        signature=None,
    )


def check_seal(catalog: ResolvedCatalog, seal: Seal) -> AuthorityStatus:
    """Return ``sealed`` when every digest of ``catalog`` matches ``seal``.

    Compute first, then compare: raises :class:`SealMismatch` naming every
    changed, added (in the catalog, not the seal) and removed (in the seal,
    not the catalog) entry, and ``name``, ``version`` or ``catalog_digest``
    when those differ. Every algorithm of each digest set is compared.
    """
    computed = {e.id: entry_digest(e) for e in catalog.entries}
    changed = sorted(
        i for i in computed.keys() & seal.entries.keys() if computed[i].mismatches(seal.entries[i])
    )
    added = sorted(computed.keys() - seal.entries.keys())
    removed = sorted(seal.entries.keys() - computed.keys())
    header = [
        field
        for field, differs in (
            ("name", catalog.name != seal.catalog.name),
            ("version", catalog.version != seal.catalog.version),
            ("catalog_digest", bool(catalog_digest(catalog).mismatches(seal.catalog_digest))),
        )
        if differs
    ]
    if changed or added or removed or header:
        raise SealMismatch(changed=changed, added=added, removed=removed, header=header)
    return AuthorityStatus.sealed
