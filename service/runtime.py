"""The runtime: every dependency a call needs, built once at the edge (CLI or app lifespan).

``build_runtime`` refuses to start on a catalog that does not match its seal
(unless provisional), on invalid policies, keys or JWT settings, on a ledger
signing key that cannot be read or is not named after the origin, on sensitive
columns without a usable masking key, or on a source
the catalog names that is not configured; then it migrates the ledger and call index to
head and appends ``service.started``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from catalog.errors import CatalogError
from catalog.model import CommandEntry, QueryEntry
from ledger.checkpointer import Checkpointer
from ledger.errors import KeyFormatError
from ledger.keys import SignerKey, parse_signer_key
from ledger.store import LedgerStore
from service.approval_index import ApprovalIndex
from service.authenticate import Authenticator
from service.build_info import BuildInfo, current_build
from service.call_index import CallIndex, open_call_index
from service.clock import Clock, system_clock
from service.errors import SigningKeyMissing, StartupRefused
from service.leases import LeaseGate
from service.masking import MaskingKey, load_masking_key
from service.packets.recovery import ledger_lookup, recover_staging
from service.policy import PolicySet
from service.sealed_catalog import SealedCatalog, build_sealed_catalog
from service.settings import Settings, sqlite_file
from service.sqlite_readers import SqliteReaders


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sealed: SealedCatalog
    policy: PolicySet
    auth: Authenticator  # API keys, the JWT verifier, the auth-failure throttle
    ledger: LedgerStore
    calls: CallIndex
    clock: Clock
    build: BuildInfo
    checkpointer: Checkpointer | None = None  # None: no signing key configured
    # The values of the variables command entries allowlist (``env``), read once at start.
    command_env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    masking_key: MaskingKey | None = None  # None: no entry lists sensitive columns

    @cached_property
    def leases(self) -> LeaseGate:
        """Call leases, in the ledger's database (so they hold across processes)."""
        return LeaseGate(self.ledger.engine)

    @cached_property
    def approvals(self) -> ApprovalIndex:
        """Granted approvals (an index of ledger entries), in the ledger's database."""
        return ApprovalIndex(self.ledger.engine)

    @cached_property
    def sqlite_readers(self) -> SqliteReaders:
        """Read-only connections to SQLite sources, kept between calls."""
        return SqliteReaders()

    def require_checkpointer(self) -> Checkpointer:
        """The checkpointer; :class:`SigningKeyMissing` when no signing key is configured."""
        if self.checkpointer is None:
            raise SigningKeyMissing
        return self.checkpointer

    def close(self) -> None:
        readers: SqliteReaders | None = self.__dict__.get("sqlite_readers")
        if readers is not None:
            readers.close()
        self.ledger.close()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    record_start: bool = True,
    environ: Mapping[str, str] = os.environ,
) -> Runtime:
    """Open everything ``settings`` names, checking seal, policies, keys and sources first.

    Raises :class:`StartupRefused` naming what is wrong; nothing is ledgered then.
    ``record_start`` appends ``service.started`` (the server and ``govex call`` do;
    read-only commands such as ``govex ledger verify`` do not). ``environ`` holds the values
    of the variables command entries allowlist (by default this process's environment).
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
    auth = Authenticator.from_settings(settings)
    signer = None if settings.ledger_key_file is None else load_signer_key(settings)
    masking_key = masking_key_for(sealed, settings)
    settings.packet_root.mkdir(parents=True, exist_ok=True)
    ledger_file = sqlite_file(settings.ledger_url)
    if ledger_file is not None:  # the embedded default: create its folder
        ledger_file.parent.mkdir(parents=True, exist_ok=True)
    ledger = LedgerStore.open(settings.ledger_url)
    try:
        calls = open_call_index(ledger.engine)
        # What builders that died left staged: published when issued, else removed/quarantined.
        recover_staging(settings.packet_root, ledger_lookup(ledger.engine))
    except BaseException:
        ledger.close()
        raise
    build = current_build()
    checkpointer = None if signer is None else Checkpointer(ledger, signer, clock)
    command_env = command_environment(sealed, environ)
    runtime = Runtime(
        settings, sealed, policy, auth, ledger, calls, clock, build, checkpointer, command_env,
        masking_key,
    )  # fmt: skip
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


def masking_key_for(sealed: SealedCatalog, settings: Settings) -> MaskingKey | None:
    """The masking key when an entry lists sensitive columns; refuse to start without one.

    Fail closed: a sensitive column is never written unmasked for want of a key, and no key
    is made up (a key that changes on each start would break joins across packets).
    """
    sensitive = [
        e.id for e in sealed.catalog.entries if isinstance(e, QueryEntry) and e.sensitive_columns
    ]
    if settings.masking_key_file is None:
        if sensitive:
            raise StartupRefused(
                f"entries {', '.join(sensitive)} list sensitive_columns but no masking key is "
                "configured: set GOVEX_MASKING_KEY_FILE (create one with 'govex keys masking')",
                where="masking_key_file",
            )
        return None
    return load_masking_key(settings.masking_key_file)


def command_environment(sealed: SealedCatalog, environ: Mapping[str, str]) -> Mapping[str, str]:
    """The values, in ``environ``, of every variable a command entry allowlists; nothing else.

    Read once at start, so every call of a process sees the same values, and no other
    variable of the service (its settings, credentials) is kept for commands.
    """
    names = {n for e in sealed.catalog.entries if isinstance(e, CommandEntry) for n in e.env}
    return MappingProxyType({n: environ[n] for n in sorted(names) if n in environ})


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
