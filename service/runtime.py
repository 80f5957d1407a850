"""The runtime: every dependency a call needs, built once at the edge (CLI or app lifespan).

``build_runtime`` refuses to start on a catalog that does not match its seal
(unless provisional), on invalid policies or keys, on a ledger signing key that
cannot be read or is not named after the origin, or on a source the catalog
names that is not configured; then it migrates the ledger and call index to
head and appends ``service.started``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catalog.errors import CatalogError
from catalog.model import QueryEntry
from ledger.checkpointer import Checkpointer
from ledger.errors import KeyFormatError
from ledger.keys import SignerKey, parse_signer_key
from ledger.store import LedgerStore
from service.build_info import BuildInfo, current_build
from service.call_index import CallIndex, open_call_index
from service.clock import Clock, system_clock
from service.errors import SigningKeyMissing, SourceUnavailable, StartupRefused
from service.identity import ApiKeyring
from service.packets.build import clean_staging
from service.policy import PolicySet
from service.sealed_catalog import SealedCatalog, build_sealed_catalog
from service.settings import Settings, sqlite_file


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sealed: SealedCatalog
    policy: PolicySet
    keyring: ApiKeyring
    ledger: LedgerStore
    calls: CallIndex
    clock: Clock
    build: BuildInfo
    checkpointer: Checkpointer | None = None  # None: no signing key configured

    def require_checkpointer(self) -> Checkpointer:
        """The checkpointer; :class:`SigningKeyMissing` when no signing key is configured."""
        if self.checkpointer is None:
            raise SigningKeyMissing
        return self.checkpointer

    def source_path(self, name: str) -> Path:
        """The SQLite file of source ``name``; refuse an unconfigured one."""
        path = self.settings.sources.get(name)
        if path is None:
            raise SourceUnavailable(
                f"source {name!r} is not configured (GOVEX_SOURCES)", where=name
            )
        return Path(path)

    def close(self) -> None:
        self.ledger.close()


def build_runtime(
    settings: Settings, *, clock: Clock = system_clock, record_start: bool = True
) -> Runtime:
    """Open everything ``settings`` names, checking seal, policies, keys and sources first.

    Raises :class:`StartupRefused` naming what is wrong; nothing is ledgered then.
    ``record_start`` appends ``service.started`` (the server and ``govex call`` do;
    read-only commands such as ``govex ledger verify`` do not).
    """
    try:
        sealed = build_sealed_catalog(settings.catalog_dir, provisional=settings.provisional)
    except CatalogError as exc:
        raise StartupRefused(
            f"catalog {settings.catalog_dir} cannot be loaded: {exc}", where=exc.where
        ) from exc
    named = {e.source for e in sealed.catalog.entries if isinstance(e, QueryEntry)}
    missing = sorted(named - set(settings.sources))
    if missing:
        raise StartupRefused(
            f"the catalog names unconfigured sources: {', '.join(missing)} (set GOVEX_SOURCES)",
            where=missing[0],
        )
    policy = PolicySet.load(settings.policies_dir)
    keyring = ApiKeyring.from_file(settings.keys_file)
    signer = None if settings.ledger_key_file is None else load_signer_key(settings)
    settings.packet_root.mkdir(parents=True, exist_ok=True)
    clean_staging(settings.packet_root)
    ledger_file = sqlite_file(settings.ledger_url)
    if ledger_file is not None:  # the embedded default: create its folder
        ledger_file.parent.mkdir(parents=True, exist_ok=True)
    ledger = LedgerStore.open(settings.ledger_url)
    try:
        calls = open_call_index(ledger.engine)
    except BaseException:
        ledger.close()
        raise
    build = current_build()
    checkpointer = None if signer is None else Checkpointer(ledger, signer, clock)
    runtime = Runtime(settings, sealed, policy, keyring, ledger, calls, clock, build, checkpointer)
    if record_start:
        ledger.append(
            "service.started",
            {
                "version": build.version,
                "module_sha256": build.module_sha256,
                "catalog_digest": sealed.digest.model_dump(),
                "authority_status": sealed.authority.value,
                "provisional_reason": sealed.provisional_reason,
                "catalog": {"name": sealed.catalog.name, "version": sealed.catalog.version},
                "policy_digest": policy.digest.model_dump(),
                "origin": settings.origin,
            },
            clock(),
        )
    return runtime


def load_signer_key(settings: Settings) -> SignerKey:
    """The ledger signing key of ``settings.ledger_key_file``, named after ``settings.origin``.

    Raises :class:`StartupRefused` when the file cannot be read, does not hold
    one signer key, or the key's name is not the origin. Messages name the
    file and the fields, never the key material.
    """
    path = settings.ledger_key_file
    if path is None:
        raise StartupRefused("no ledger signing key file configured", where="ledger_key_file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StartupRefused(
            f"ledger signing key file {path} cannot be read: {exc.strerror or type(exc).__name__}",
            where=str(path),
        ) from None
    except UnicodeDecodeError:
        raise StartupRefused(
            f"ledger signing key file {path} is not UTF-8 text", where=str(path)
        ) from None
    try:
        signer = parse_signer_key(text.strip())
    except KeyFormatError as exc:
        raise StartupRefused(
            f"ledger signing key file {path} does not hold a signer key: {exc.message}",
            where=str(path),
        ) from None
    if signer.name != settings.origin:
        raise StartupRefused(
            f"ledger signing key {signer.name!r} (in {path}) is not named after the ledger "
            f"origin {settings.origin!r}: a checkpoint's origin line is its key's name",
            where=str(path),
        )
    return signer
