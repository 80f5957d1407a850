"""Read-only SQLite source connections kept between calls: one per thread and source file.

Opening a source for every call costs a dozen syscalls (the path resolved, the file opened,
its header and schema read, the connection's pragma) and a fresh prepare of the entry's
statement; under concurrent calls each of those syscalls also hands the GIL to another
call's thread and waits to get it back. A connection kept by the thread that ran the last
call on the same file skips all of it: the call begins a read transaction of its own (its
own snapshot), runs the statement from sqlite3's statement cache, and ends the transaction.

A kept connection is the same connection as a fresh one (``mode=ro``, ``query_only`` and
the read authorizer: :func:`service.run_sql.connect_read_only`), and a call leaves nothing
in it for the next: the authorizer refuses every write, temporary tables, ``ATTACH`` and
pragmas. A file replaced under its path (another inode) is opened afresh, and a file
removed lets go of a thread's kept connection (and its disk space) at that thread's next call;
a connection whose transaction could not be ended is closed, not kept.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from service.errors import SourceUnavailable
from service.run_sql import (
    SourceConnection,
    begin_snapshot,
    connect_read_only,
    end_snapshot,
    source_identity,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_FileIdentity = tuple[int, int]  # st_dev, st_ino


class SqliteReaders:
    """Connections to SQLite sources, kept by the thread that last used them (thread-safe)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._idle: set[SourceConnection] = set()  # kept, not in a call: what close() closes
        self._closed = False

    def _kept(self) -> dict[Path, tuple[_FileIdentity, SourceConnection]]:
        kept: dict[Path, tuple[_FileIdentity, SourceConnection]] | None = getattr(
            self._local, "kept", None
        )
        if kept is None:
            kept = self._local.kept = {}
        return kept

    @contextmanager
    def snapshot(self, path: Path) -> Iterator[tuple[SourceConnection, int]]:
        """A connection to ``path`` in a read transaction of its own, and its schema version.

        Raises :class:`SourceUnavailable` for a missing or unreadable file.
        """
        kept = self._kept()
        held = kept.pop(path, None)
        try:
            identity = source_identity(path)
        except SourceUnavailable:
            if held is not None:  # the file is gone: let go of it (and of its disk space)
                self._drop(held[1])
            raise
        if held is not None and self._drop(held[1], keep=held[0] == identity):
            conn = held[1]
        else:
            conn = connect_read_only(path)
        try:
            schema_version = begin_snapshot(conn, path)
        except BaseException:
            conn.close()
            raise
        try:
            yield conn, schema_version
        finally:
            self._give_back(kept, path, identity, conn)

    def _drop(self, conn: SourceConnection, *, keep: bool = False) -> bool:
        """Private: take ``conn`` out of the idle set; close it unless ``keep`` (and open).

        Whether it may be used: not when close() closed it meanwhile.
        """
        with self._lock:
            idle = conn in self._idle  # else close() has closed it
            self._idle.discard(conn)
        if keep and idle:
            return True
        conn.close()
        return False

    def _give_back(
        self,
        kept: dict[Path, tuple[_FileIdentity, SourceConnection]],
        path: Path,
        identity: _FileIdentity,
        conn: SourceConnection,
    ) -> None:
        """Private: keep ``conn`` for this thread's next call on ``path``, or close it."""
        if end_snapshot(conn) and path not in kept:
            with self._lock:
                if not self._closed:
                    kept[path] = (identity, conn)
                    self._idle.add(conn)
                    return
        conn.close()

    def close(self) -> None:
        """Close the kept connections; one in a call is closed when the call gives it back."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, set()
        for conn in idle:
            conn.close()
