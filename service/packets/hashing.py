"""The byte work of a payload file: writing it and hashing it, inline or in a thread (I/O).

A :class:`FileHasher` writes each block to the file and feeds it to the file's digest
set (sha256 + blake3) and to the blake3 of the open chunk; :meth:`FileHasher.cut`
closes that chunk. :class:`ThreadedHasher` does the same work, in order, in a thread of
its own: hashlib, blake3 and file writes release the GIL, so the caller encodes (or
receives) the next rows on one core while the last ones are hashed and written on
another. It holds at most :data:`QUEUE_BLOCKS` blocks; an error in the thread (a full
disk) is raised in the caller at its next call. Internal to :mod:`service.packets.tables`.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Protocol

import blake3

from catalog.digest import StreamingDigest

if TYPE_CHECKING:
    from catalog.digest import DigestSet


class ByteSink(Protocol):
    """Where a payload file's bytes go: a binary file, or the packet builder's spool."""

    def write(self, data: bytes, /) -> object: ...


QUEUE_BLOCKS = 4
"""Blocks (about a chunk each) handed to a :class:`ThreadedHasher` and not yet written."""
_CUT = object()
_STOP = object()


class FileHasher:
    """Writes blocks to ``out`` and hashes them, in the caller's thread."""

    def __init__(self, out: ByteSink) -> None:
        self._out = out
        self._digest = StreamingDigest()
        self._chunk = blake3.blake3()
        self.chunks: list[str] = []
        """The blake3 hex digest of each chunk cut so far, in order."""

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._digest.update(data)
        self._chunk.update(data)

    def cut(self) -> None:
        """Close the open chunk: its digest joins :attr:`chunks`."""
        self.chunks.append(self._chunk.hexdigest())
        self._chunk = blake3.blake3()

    def finish(self) -> DigestSet:
        """The file's digest set, once every block is written."""
        return self._digest.finish()

    def close(self) -> None:
        """Release what the hasher holds (nothing, here); idempotent."""


class ThreadedHasher:
    """The work of a :class:`FileHasher`, done in a thread; :meth:`close` it in a ``finally``.

    Takes over ``inner`` as it stands (what it wrote and hashed so far stays), so a writer
    can start inline and move to a thread once a file proves large.
    """

    def __init__(self, inner: FileHasher) -> None:
        self._inner = inner
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_BLOCKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="govex-packet-hasher", daemon=True)
        self._thread.start()

    @property
    def chunks(self) -> list[str]:
        """The inner hasher's chunk digests (all of them once :meth:`finish` returned)."""
        return self._inner.chunks

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            if self._error is not None:
                continue  # drain: the caller raises the error
            try:
                if item is _CUT:
                    self._inner.cut()
                else:
                    self._inner.write(item)  # type: ignore[arg-type]  # blocks are bytes
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, data: bytes) -> None:
        self._raise()
        self._queue.put(data)

    def cut(self) -> None:
        self._raise()
        self._queue.put(_CUT)

    def finish(self) -> DigestSet:
        self.close()
        self._raise()
        return self._inner.finish()

    def close(self) -> None:
        """Let the thread write what it holds and end; idempotent."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
