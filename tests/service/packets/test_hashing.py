"""Hashing a payload file in a thread gives what hashing it inline gives; its errors surface."""

from __future__ import annotations

import io
import threading

import pytest

from catalog.digest import digest_bytes
from service.packets.hashing import FileHasher, ThreadedHasher
from service.packets.tables import EncodedRows, write_table

BLOCKS = [bytes([i]) * (1000 + i) for i in range(50)]


def _hash(threaded: bool) -> tuple[bytes, object, list[str]]:
    out = io.BytesIO()
    inline = FileHasher(out)
    inline.write(BLOCKS[0])
    hasher = ThreadedHasher(inline) if threaded else inline  # takes over what was hashed
    try:
        for number, block in enumerate(BLOCKS[1:]):
            hasher.write(block)
            if number % 7 == 0:
                hasher.cut()
        hasher.cut()
        digest = hasher.finish()
    finally:
        hasher.close()
    return out.getvalue(), digest, hasher.chunks


def test_a_threaded_hasher_writes_and_hashes_as_the_inline_one() -> None:
    inline, threaded = _hash(threaded=False), _hash(threaded=True)
    assert inline == threaded
    assert inline[0] == b"".join(BLOCKS)
    assert inline[1] == digest_bytes(b"".join(BLOCKS))


class _FullDisk(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() > 3 << 20:
            raise OSError(28, "No space left on device")
        return super().write(data)


def _hashers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "govex-packet-hasher"]


@pytest.mark.parametrize("encoded", [False, True], ids=["rows", "encoded"])
def test_a_write_error_in_the_thread_reaches_the_caller_and_no_thread_is_left(
    encoded: bool,
) -> None:
    rows = [(i, "x" * 50) for i in range(200_000)]
    lines = [f"{i},{'x' * 50}\n".encode() for i, _ in rows]
    with pytest.raises(OSError, match="No space left"):
        write_table(
            _FullDisk(), path="data/t.csv", fmt="csv", columns=["id", "v"],
            rows=EncodedRows("csv", lines) if encoded else rows, max_bytes=None,
        )  # fmt: skip
    assert not _hashers()


def test_close_is_idempotent_and_finish_after_close_still_answers() -> None:
    hasher = ThreadedHasher(FileHasher(io.BytesIO()))
    hasher.write(b"abc")
    hasher.close()
    hasher.close()
    assert hasher.finish() == digest_bytes(b"abc")
    assert not _hashers()
