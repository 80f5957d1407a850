"""Proof of run: the built-in checks of ``govex selftest`` and ``GET /v1/selftest``.

:func:`run_selftest` runs these checks, in this order, one after the other; none raises
(a check that breaks fails, naming the error's type):

1. ``catalog_seal``: the served catalog is sealed (``provisional`` fails), and the
   catalog directory on disk still matches its seal (a catalog sealed again on disk
   passes, saying a restart serves it);
2. ``policy_schema``: the Cedar policies on disk validate against the Cedar schema (the
   detail says whether they are the ones served, by policy digest);
3. ``ledger_chain``: the whole chain, as ``govex ledger verify`` checks the store (seq,
   prev, stored leaf hashes, the roots of stored checkpoints), when the ledger holds at
   most :data:`FULL_CHAIN_MAX` entries; beyond that, the most recent
   :data:`CHAIN_WINDOW` entries and the link into them (each parses, seq counts up, prev
   is the leaf hash of the entry before); the detail says which was done;
4. ``checkpoint_signature``: with a ledger signing key, the latest stored checkpoint
   verifies with its verifier key and its root is the stored tree's at that size;
   skipped without a key or before the first checkpoint;
5. ``packet_root``: a file can be created in the packet root, and removed;
6. ``source:<name>``, for every configured source: ``SELECT 1`` through the call path's
   own read-only runner (SQLite: ``mode=ro``, ``query_only``, the read authorizer;
   PostgreSQL: a fresh connection as a role that is not a superuser, a ``READ ONLY``
   transaction with its timeouts, rolled back), naming the engine's version;
7. ``schemas``: the JSON Schemas the models generate are exactly the installed
   ``schemas`` package's files;
8. ``module_sha256``: the code on disk digests (:mod:`service.build_info`) to the value
   this runtime recorded when it started (in ``service.started`` and every packet).

``N/N checks passed`` counts the checks that ran; skipped ones are named apart.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

from catalog.authority import AuthorityStatus
from catalog.errors import CatalogError
from catalog.load import SEAL_FILE, load_catalog_dir, read_seal
from catalog.seal import check_seal
from ledger.checkpoint import open_checkpoint
from ledger.entry import ZERO_PREV, entry_from_leaf_input, leaf_hash
from ledger.errors import LedgerError
from service.build_info import module_sha256
from service.errors import ServiceError
from service.policy import PolicySet, require_ledger_reader
from service.run_postgres import run_postgres_query
from service.run_sql import run_query
from service.schemas import generate_schemas, render
from service.sources import PostgresSource, parse_source

if TYPE_CHECKING:
    from service.identity import Principal
    from service.runtime import Runtime

SELFTEST_FORMAT: Literal["govex.selftest/v1"] = "govex.selftest/v1"
FULL_CHAIN_MAX = 100_000
CHAIN_WINDOW = 10_000
SOURCE_TIMEOUT_MS = 3_000
_PROBE_SQL = "SELECT 1 AS ok"
Status = Literal["passed", "failed", "skipped"]


class SelftestCheck(BaseModel):
    """One check: ``passed``, ``failed`` or ``skipped``, and what it found."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str
    status: Status
    detail: str


class SelftestReport(BaseModel):
    """Every check, a summary (``N/N checks passed``) and the build that ran them."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    format: Literal["govex.selftest/v1"] = SELFTEST_FORMAT
    ok: bool
    passed: int
    total: int
    skipped: int
    summary: str
    version: str
    module_sha256: str
    checks: tuple[SelftestCheck, ...]


class _Skipped(Exception):
    """Private: the check does not apply here (``detail`` says why)."""


class _Failed(Exception):
    """Private: the check failed (``detail`` says where)."""


def selftest_for(runtime: Runtime, principal: Principal) -> SelftestReport:
    """The report, for whoever may read the ledger (``read_ledger``): ``GET /v1/selftest``."""
    require_ledger_reader(runtime.policy, principal)
    return run_selftest(runtime)


def run_selftest(
    runtime: Runtime,
    *,
    full_chain_max: int = FULL_CHAIN_MAX,
    chain_window: int = CHAIN_WINDOW,
) -> SelftestReport:
    """Run every check of the module docstring, in order; never raises.

    ``full_chain_max`` and ``chain_window`` bound ``ledger_chain`` (the defaults are the
    documented ones).
    """
    checks = [_run(name, check) for name, check in _checks(runtime, full_chain_max, chain_window)]
    ran = [check for check in checks if check.status != "skipped"]
    passed = sum(check.status == "passed" for check in ran)
    skipped = len(checks) - len(ran)
    summary = f"{passed}/{len(ran)} checks passed" + (f", {skipped} skipped" if skipped else "")
    return SelftestReport(
        ok=passed == len(ran),
        passed=passed,
        total=len(ran),
        skipped=skipped,
        summary=summary,
        version=runtime.build.version,
        module_sha256=runtime.build.module_sha256,
        checks=tuple(checks),
    )


def _run(name: str, check: Callable[[], str]) -> SelftestCheck:
    try:
        return SelftestCheck(name=name, status="passed", detail=check())
    except _Skipped as exc:
        return SelftestCheck(name=name, status="skipped", detail=str(exc))
    except _Failed as exc:
        return SelftestCheck(name=name, status="failed", detail=str(exc))
    except Exception as exc:  # noqa: BLE001 - a check that breaks is a failed check
        detail = str(getattr(exc, "message", "")) or type(exc).__name__
        return SelftestCheck(name=name, status="failed", detail=detail)


def _checks(
    runtime: Runtime, full_chain_max: int, chain_window: int
) -> list[tuple[str, Callable[[], str]]]:
    checks: list[tuple[str, Callable[[], str]]] = [
        ("catalog_seal", lambda: _catalog_seal(runtime)),
        ("policy_schema", lambda: _policy_schema(runtime)),
        ("ledger_chain", lambda: _ledger_chain(runtime, full_chain_max, chain_window)),
        ("checkpoint_signature", lambda: _checkpoint_signature(runtime)),
        ("packet_root", lambda: _packet_root(runtime.settings.packet_root)),
    ]
    for name, value in sorted(runtime.settings.sources.items()):
        checks.append((f"source:{name}", _source_check(name, value)))
    checks += [
        ("schemas", _schemas),
        ("module_sha256", lambda: _module_sha256(runtime)),
    ]
    return checks


def _catalog_seal(runtime: Runtime) -> str:
    sealed = runtime.sealed
    if sealed.authority is AuthorityStatus.provisional:
        raise _Failed(f"provisional: no seal is enforced ({sealed.provisional_reason})")
    directory = runtime.settings.catalog_dir
    try:
        seal = read_seal(directory / SEAL_FILE)
        check_seal(load_catalog_dir(directory), seal)
    except CatalogError as exc:
        raise _Failed(f"the catalog on disk does not match its seal: {exc.message}") from None
    served = sealed.digest.text("sha256")
    on_disk = seal.catalog_digest.text("sha256")
    if on_disk != served:
        return f"{sealed.authority.value}, serving {served}; sealed again on disk as {on_disk}"
    return f"{sealed.authority.value}: {served}, as sealed on disk"


def _policy_schema(runtime: Runtime) -> str:
    try:
        on_disk = PolicySet.load(runtime.settings.policies_dir)
    except ServiceError as exc:
        raise _Failed(exc.message) from None
    served = runtime.policy.digest.text("sha256")
    if on_disk.digest.text("sha256") != served:
        return f"valid; changed on disk since start (serving {served}): restart to serve them"
    return f"valid against the Cedar schema; serving {served}"


def _ledger_chain(runtime: Runtime, full_chain_max: int, window: int) -> str:
    store = runtime.ledger
    size = store.size()
    try:
        if size <= full_chain_max:
            report = store.verify()
            return f"whole chain: {report.size} entries, root {report.root.hex()}"
        return _chain_window(runtime, size, window)
    except LedgerError as exc:
        raise _Failed(exc.message) from None


def _chain_window(runtime: Runtime, size: int, window: int) -> str:
    """Private: the last ``window`` entries and the link into them."""
    start = max(size - window, 0)
    store = runtime.ledger
    previous = ZERO_PREV if start == 0 else leaf_hash(store.get_leaf_input(start - 1)).hex()
    expected_seq = start
    for data in store.iter_leaf_inputs(start, size):
        entry = entry_from_leaf_input(data)
        if entry.seq != expected_seq:
            raise _Failed(f"no entry at seq {expected_seq} (found {entry.seq})")
        if entry.prev != previous:
            raise _Failed(
                f"seq {entry.seq}: prev {entry.prev} is not leaf_hash of seq {entry.seq - 1}"
            )
        previous = leaf_hash(data).hex()
        expected_seq += 1
    if expected_seq != size:
        raise _Failed(f"no entry at seq {expected_seq} of {size}")
    return (
        f"last {size - start:,} of {size:,} entries (seq {start}..{size - 1}): seq and prev "
        "links hold; 'govex ledger verify' checks the whole chain"
    )


def _checkpoint_signature(runtime: Runtime) -> str:
    checkpointer = runtime.checkpointer
    if checkpointer is None:
        raise _Skipped("no ledger signing key configured")
    latest = runtime.ledger.latest_checkpoint()
    if latest is None:
        raise _Skipped("no checkpoint stored yet")
    key = checkpointer.verifier_key
    try:
        checkpoint = open_checkpoint(latest.note, key)
    except LedgerError as exc:
        raise _Failed(f"the latest checkpoint does not verify: {exc.message}") from None
    if checkpoint.size != latest.size or checkpoint.root != runtime.ledger.root(latest.size):
        raise _Failed(f"the checkpoint of size {latest.size} is not the stored tree's")
    return f"size {checkpoint.size} signed by {key.text()}"


def _packet_root(root: Path) -> str:
    try:
        fd, name = tempfile.mkstemp(prefix=".selftest-", dir=root)
        os.close(fd)
        Path(name).unlink()
    except OSError as exc:
        raise _Failed(f"not writable: {exc.strerror or type(exc).__name__}") from None
    return "writable"


def _source_check(name: str, value: str) -> Callable[[], str]:
    """Private: ``SELECT 1`` on source ``name`` through the call path's read-only runner."""

    def check() -> str:
        try:
            source = parse_source(name, value)
            if isinstance(source, PostgresSource):
                with run_postgres_query(source, _PROBE_SQL, {}, SOURCE_TIMEOUT_MS) as result:
                    list(result.rows)
                return (
                    f"PostgreSQL {result.engine_version}: SELECT 1 in a READ ONLY transaction, "
                    "as a role that is not a superuser"
                )
            with run_query(source.path, _PROBE_SQL, {}, SOURCE_TIMEOUT_MS) as result:
                list(result.rows)
        except ServiceError as exc:
            raise _Failed(exc.message) from None
        return f"SQLite {result.engine_version}: SELECT 1 read-only (mode=ro, query_only)"

    return check


def _schemas() -> str:
    generated = generate_schemas()
    installed = resources.files("schemas")
    names = {item.name for item in installed.iterdir() if item.name.endswith(".schema.json")}
    missing, extra = sorted(set(generated) - names), sorted(names - set(generated))
    drifted = sorted(
        name
        for name in set(generated) & names
        if installed.joinpath(name).read_text(encoding="utf-8") != render(generated[name])
    )
    if missing or extra or drifted:
        parts = [
            f"{label}: {', '.join(found)}"
            for label, found in (("missing", missing), ("extra", extra), ("drifted", drifted))
            if found
        ]
        raise _Failed("the installed schemas differ from the models; " + "; ".join(parts))
    return f"{len(generated)} schemas match the models"


def _module_sha256(runtime: Runtime) -> str:
    running = runtime.build.module_sha256
    on_disk = module_sha256()
    if on_disk != running:
        raise _Failed(
            f"the code on disk ({on_disk}) is not the code this process started with "
            f"({running}): restart"
        )
    return f"{running}: the code on disk is the code running"
