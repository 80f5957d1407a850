"""A throwaway PostgreSQL 15 server for tests and benchmarks (Debian's ``postgresql-15`` binaries).

:class:`PostgresServer` runs ``initdb`` in a fresh temporary folder and starts ``postgres``
listening on a Unix socket in that folder and on a free 127.0.0.1 port, as the
``postgres`` user when we are root (PostgreSQL refuses to run as root). Durability
settings stay at PostgreSQL's defaults (``fsync=on``, ``synchronous_commit=on``):
benchmarks of durable appends must measure real commits.

:func:`find_bindir` says where the binaries are, or why there are none, so the
fixture can skip with that reason, or fail under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import psycopg

SUPERUSER = "postgres"
SERVICE_ROLE = "govex_service"
SERVICE_PASSWORD = "govex-test-only"  # loopback-only throwaway server
_START_TIMEOUT_S = 60.0


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL 15 server binaries here: the reason says what was looked for."""


def find_bindir() -> Path:
    """The PostgreSQL 15 server binaries: ``pg_config --bindir`` first, then Debian's path."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    candidates.append(Path("/usr/lib/postgresql/15/bin"))
    for bindir in candidates:
        if (bindir / "postgres").is_file() and (bindir / "initdb").is_file():
            return bindir
    looked = ", ".join(str(c) for c in candidates)
    raise PostgresUnavailableError(
        f"no PostgreSQL server binaries (initdb, postgres) in {looked}; "
        "install Debian's postgresql-15 package"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One running server in its own temporary folder; :meth:`stop` removes it all."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="govex-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.port = _free_port()
        self._run_as: str | None = SUPERUSER if os.geteuid() == 0 else None
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start_new(cls) -> Self:
        """Find the binaries, init a cluster and start it; raises PostgresUnavailableError."""
        server = cls(find_bindir())
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        return server

    def _own(self, path: Path) -> None:
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.socket_dir.mkdir()
        self._own(self.root)
        self._own(self.socket_dir)
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",  # the cluster is thrown away; its commits still fsync (fsync=on)
            ],
            check=True,
            capture_output=True,
            user=self._run_as,
        )
        log = (self.root / "server.log").open("wb")
        self._own(self.root / "server.log")
        self._process = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data),
                "-k",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self._run_as,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise PostgresUnavailableError(
                    f"postgres exited with {self._process.returncode}: {self.log_tail()}"
                )
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise PostgresUnavailableError(
                        f"postgres did not accept connections in {_START_TIMEOUT_S:.0f} s: "
                        f"{self.log_tail()}"
                    ) from None
                time.sleep(0.05)

    def log_tail(self) -> str:
        try:
            return (self.root / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"

    def dsn(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """A libpq connection string over the Unix socket."""
        secret = f" password={password}" if password else ""
        return f"host={self.socket_dir} port={self.port} dbname={dbname} user={user}{secret}"

    def url(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """A SQLAlchemy URL (psycopg 3) for ``dbname`` over the Unix socket."""
        secret = f":{password}" if password else ""
        return (
            f"postgresql+psycopg://{user}{secret}@/{dbname}?host={self.socket_dir}&port={self.port}"
        )

    def tcp_url(self, dbname: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """A SQLAlchemy URL for ``dbname`` over 127.0.0.1 (what a remote deployment looks like)."""
        secret = f":{password}" if password else ""
        return f"postgresql+psycopg://{user}{secret}@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        """Run ``sql`` as the superuser, autocommit (CREATE DATABASE needs it)."""
        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            conn.execute(sql.encode())

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL (superuser)."""
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def ensure_service_role(self) -> None:
        """Create the login role the service runs as in a documented deployment (idempotent)."""
        create = (
            "DO $$ BEGIN "
            "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'govex_service') THEN "
            "CREATE ROLE govex_service LOGIN PASSWORD 'govex-test-only'; "
            "END IF; END $$"
        )
        assert (SERVICE_ROLE, SERVICE_PASSWORD) == ("govex_service", "govex-test-only")
        self.execute(create)

    @property
    def pid(self) -> int:
        """The server's process id (its postmaster, or the wrapper that runs it as postgres)."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # fast shutdown of our own postmaster
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
