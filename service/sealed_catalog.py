"""The catalog a runtime serves, with its seal and authority status.

Built once at start-up (``build_sealed_catalog``), immutable afterwards: an edit
means sealing again and restarting. Every call re-checks its entry's digest
against the seal before any database work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from catalog.authority import AuthorityStatus
from catalog.digest import DigestSet
from catalog.errors import SealError
from catalog.load import SEAL_FILE, load_catalog_dir, read_seal
from catalog.model import Entry, ResolvedCatalog, Seal
from catalog.seal import catalog_digest, check_seal, entry_digest
from service.errors import CatalogNotRunnable, StartupRefused


@dataclass(frozen=True)
class SealedCatalog:
    """A resolved catalog and what the service knows of its seal."""

    catalog: ResolvedCatalog
    seal: Seal | None
    digest: DigestSet
    authority: AuthorityStatus
    provisional_reason: str | None
    # An entry's digest, computed once: the models are frozen, so it cannot change after load.
    _entry_digests: dict[str, DigestSet] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def runnable_entry(self, entry_id: str) -> tuple[Entry, DigestSet]:
        """The entry and its digest, after checking the digest against the seal.

        Raises ``catalog.errors.UnknownEntry`` for an unknown id and
        :class:`CatalogNotRunnable` when the entry no longer matches its seal.
        """
        entry = self.catalog.entry(entry_id)
        digest = self._entry_digests.get(entry_id)
        if digest is None:
            digest = self._entry_digests.setdefault(entry_id, entry_digest(entry))
        if self.authority is AuthorityStatus.provisional:
            return entry, digest
        sealed = self.seal.entries.get(entry_id) if self.seal else None
        if sealed is None or sealed.mismatches(digest):
            raise CatalogNotRunnable(
                f"entry {entry_id} does not match the catalog seal; seal the catalog again",
                where=entry_id,
            )
        return entry, digest


def build_sealed_catalog(catalog_dir: Path, *, provisional: bool) -> SealedCatalog:
    """Load ``catalog_dir`` and check it against ``catalog.seal.json``.

    Refuses (:class:`StartupRefused`) on a missing seal or a mismatch, naming the
    entries, unless ``provisional``: then the catalog runs with authority
    ``provisional`` and the reason is kept for the start-up record.
    """
    catalog = load_catalog_dir(catalog_dir)
    digest = catalog_digest(catalog)
    seal_path = catalog_dir / SEAL_FILE
    try:
        seal = read_seal(seal_path)
        check_seal(catalog, seal)
    except SealError as exc:
        if not provisional:
            raise StartupRefused(
                f"catalog {catalog_dir} does not match its seal: {exc.message}; "
                "seal it with 'govex catalog seal', or start with --provisional for development",
                where=exc.where or str(seal_path),
            ) from exc
        return SealedCatalog(catalog, None, digest, AuthorityStatus.provisional, exc.message)
    if provisional:
        return SealedCatalog(
            catalog, seal, digest, AuthorityStatus.provisional, "started with --provisional"
        )
    return SealedCatalog(catalog, seal, digest, AuthorityStatus.sealed, None)
