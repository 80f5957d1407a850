"""Readiness (``GET /readyz``): whether this process can serve calls now.

:class:`ReadinessProbe` runs these checks, each in a worker thread under one deadline
(:data:`CHECK_TIMEOUT_S`; a check still running then fails as ``timed out``):

1. ``ledger``: a cheap read of the ledger database (its size);
2. ``source:<name>``, for every configured source: a SQLite file opens read-only and its
   schema is read; a PostgreSQL source connects (2 s timeout) and runs ``SELECT 1``
   under a 2 s ``statement_timeout``;
3. ``catalog_seal``: the catalog directory on disk still matches its seal, re-verified at
   most every ``seal_recheck_s`` seconds (the served catalog itself is immutable);
4. ``packet_root``: a temporary file can be created in the packet root, and removed;
5. ``api_keys``: the API keys file loads;
6. ``jwt_keys`` (with JWT settings): the JWT key file holds at least one usable key.

A check's ``detail`` is safe for an unauthenticated caller: counts and states, never a
URL, a host, a path or a driver message (those go to the server log as
``readiness.failed``, with PostgreSQL passwords scrubbed).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import structlog

from catalog.authority import AuthorityStatus
from catalog.errors import CatalogError
from catalog.load import SEAL_FILE, load_catalog_dir, read_seal
from catalog.seal import check_seal
from service.api_keys import read_keys_file
from service.jwt_follow import FollowedJwtVerifier
from service.run_sql import open_read_only
from service.sources import PostgresSource, SqliteSource, parse_source

if TYPE_CHECKING:
    from collections.abc import Callable

    from service.runtime import Runtime

_log = structlog.get_logger("govex.readiness")
CHECK_TIMEOUT_S = 3.0
SEAL_RECHECK_S = 30.0
_PG_TIMEOUT_S = 2
_WORKERS = 8


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``detail`` is safe to show anyone."""

    name: str
    ok: bool
    detail: str


class _Failed(Exception):
    """Private: a check failed; ``detail`` is public, ``log`` goes to the server log only."""

    def __init__(self, detail: str, log: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.log = log or detail


class ReadinessProbe:
    """The readiness checks of one runtime; :meth:`close` it with the runtime."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        seal_recheck_s: float = SEAL_RECHECK_S,
        timeout_s: float = CHECK_TIMEOUT_S,
    ) -> None:
        self._runtime = runtime
        self._seal_recheck_s = seal_recheck_s
        self._timeout_s = timeout_s
        # Bounded: a hung database holds at most these threads; later checks time out.
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="govex-readyz")
        self._seal_lock = threading.Lock()
        self._seal_checked: tuple[float, Check] | None = None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self) -> list[Check]:
        """Every check, in the documented order; none raises."""
        checks = self._checks()
        futures: list[tuple[str, Future[str]]] = [
            (name, self._pool.submit(check)) for name, check in checks
        ]
        wait_all([future for _, future in futures], timeout=self._timeout_s)
        return [self._outcome(name, future) for name, future in futures]

    def _checks(self) -> list[tuple[str, Callable[[], str]]]:
        settings = self._runtime.settings
        checks: list[tuple[str, Callable[[], str]]] = [("ledger", self._ledger)]
        for name, value in sorted(settings.sources.items()):
            checks.append((f"source:{name}", _source_check(name, value)))
        checks += [
            ("catalog_seal", self._catalog_seal),
            ("packet_root", self._packet_root),
            ("api_keys", self._api_keys),
        ]
        if self._runtime.auth.jwt is not None:
            checks.append(("jwt_keys", self._jwt_keys))
        return checks

    def _outcome(self, name: str, future: Future[str]) -> Check:
        if not future.done():
            future.cancel()
            _log.warning("readiness.failed", check=name, detail="timed out")
            return Check(name, ok=False, detail=f"timed out after {self._timeout_s:g} s")
        try:
            return Check(name, ok=True, detail=future.result())
        except _Failed as exc:
            _log.warning("readiness.failed", check=name, detail=exc.log)
            return Check(name, ok=False, detail=exc.detail)
        except Exception as exc:  # noqa: BLE001 - a check that breaks is a failed check
            _log.warning("readiness.failed", check=name, error=type(exc).__name__)
            return Check(name, ok=False, detail=f"failed ({type(exc).__name__}); see the log")

    # -- the checks (each returns its detail or raises) ------------------------------------

    def _ledger(self) -> str:
        return f"{self._runtime.ledger.size()} entries"

    def _catalog_seal(self) -> str:
        with self._seal_lock:
            cached = self._seal_checked
            if cached is None or time.monotonic() - cached[0] >= self._seal_recheck_s:
                cached = (time.monotonic(), self._verify_seal_on_disk())
                self._seal_checked = cached
        check = cached[1]
        if not check.ok:
            raise _Failed(check.detail)
        return check.detail

    def _verify_seal_on_disk(self) -> Check:
        sealed = self._runtime.sealed
        if sealed.authority is AuthorityStatus.provisional:
            return Check("catalog_seal", ok=True, detail="provisional: no seal is enforced")
        directory = self._runtime.settings.catalog_dir
        try:
            seal = read_seal(directory / SEAL_FILE)
            check_seal(load_catalog_dir(directory), seal)
        except CatalogError as exc:
            _log.warning("readiness.failed", check="catalog_seal", detail=str(exc))
            return Check(
                "catalog_seal",
                ok=False,
                detail="the catalog on disk no longer matches its seal: seal it again",
            )
        served = sealed.digest.text("sha256")
        if seal.catalog_digest.text("sha256") != served:
            return Check(
                "catalog_seal",
                ok=True,
                detail=f"serving {served}; the catalog on disk was sealed again as "
                f"{seal.catalog_digest.text('sha256')}: restart to serve it",
            )
        return Check("catalog_seal", ok=True, detail=f"serving {served}, as sealed on disk")

    def _packet_root(self) -> str:
        root = self._runtime.settings.packet_root
        try:
            fd, name = tempfile.mkstemp(prefix=".readyz-", dir=root)
            os.close(fd)
            Path(name).unlink()
        except OSError as exc:
            raise _Failed("not writable", f"packet root {root}: {exc}") from None
        return "writable"

    def _api_keys(self) -> str:
        path = self._runtime.settings.keys_file
        try:
            keys = read_keys_file(path)
        except Exception as exc:  # noqa: BLE001 - any refusal of the file fails the check
            raise _Failed("cannot be loaded", f"{path}: {exc}") from None
        return f"loaded, {len(keys.keys)} keys"

    def _jwt_keys(self) -> str:
        verifier = self._runtime.auth.jwt
        if not isinstance(verifier, FollowedJwtVerifier):
            return "loaded"
        count = len(verifier.key_ids)
        if count == 0:
            raise _Failed("the key file cannot be loaded, or holds no usable key")
        return f"loaded, {count} keys"


def _source_check(name: str, value: str) -> Callable[[], str]:
    """Private: the check of one configured source."""

    def check() -> str:
        try:
            source = parse_source(name, value)
        except Exception as exc:  # noqa: BLE001 - parse_source never repeats the value
            raise _Failed("refused: not a SQLite path or PostgreSQL URL", str(exc)) from None
        if isinstance(source, SqliteSource):
            return _sqlite(source)
        return _postgres(source)

    return check


def _sqlite(source: SqliteSource) -> str:
    try:
        conn = open_read_only(source.path)
    except Exception as exc:  # noqa: BLE001 - SourceUnavailable names the path: log only
        raise _Failed("SQLite file cannot be opened read-only", str(exc)) from None
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise _Failed("SQLite file cannot be read", f"{source.path}: {exc}") from None
    finally:
        conn.close()
    return "SQLite file opens read-only"


def _postgres(source: PostgresSource) -> str:
    try:
        with psycopg.connect(
            source.conninfo,
            autocommit=True,
            connect_timeout=_PG_TIMEOUT_S,
            options=f"-c statement_timeout={_PG_TIMEOUT_S * 1000}",
            application_name="govex-readyz",
        ) as conn:
            conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        state = f"SQLSTATE {exc.sqlstate}" if exc.sqlstate else type(exc).__name__
        raise _Failed(
            f"PostgreSQL unreachable or refused ({state})",
            f"{source.redacted()}: {source.scrub(first)}",
        ) from None
    return "PostgreSQL answers SELECT 1"
