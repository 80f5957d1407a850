"""Who owns a staged packet: a lock file held for as long as its builder lives.

Several workers share one packet root. At start-up each settles the staging leftovers
of builders that died (:func:`service.packets.recovery.recover_staging`), and must not
touch those of builders alive in other processes. A builder holds an exclusive
``flock`` on ``.staging/<id>.lock`` from before it creates anything until it has
published or discarded; the kernel drops the lock when its process dies, however it
dies. A cleaner that can take the lock owns what is left. (``flock`` holds between
processes of one host; workers on several hosts need a packet root each, or a shared
file system whose locks are coherent.)
"""

from __future__ import annotations

import fcntl
import os
from contextlib import suppress
from pathlib import Path

LOCK_SUFFIX = ".lock"


class StagingLock:
    """An exclusive lock on one lock file; :meth:`release` unlocks and removes it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def take(cls, path: Path) -> StagingLock | None:
        """Lock ``path`` (created when missing) without waiting; None when another holds it."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(path, fd)

    @classmethod
    def create(cls, path: Path) -> StagingLock | None:
        """Create ``path`` and lock it (a builder's own lock); None when it exists already.

        Raises :class:`FileNotFoundError` when its folder does not exist.
        """
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a cleaner opened it first: it releases and removes it
            os.close(fd)
            return None
        return cls(path, fd)

    def release(self) -> None:
        """Remove the lock file, then unlock; idempotent."""
        if self._fd is None:
            return
        with suppress(FileNotFoundError):
            self.path.unlink()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
