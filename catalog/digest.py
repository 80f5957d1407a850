"""Digest sets: SHA-256 and BLAKE3 of the same bytes (FORMATS section 1).

A :class:`DigestSet` is computed one-shot with :func:`digest_bytes` or while
streaming with :class:`StreamingDigest`; both give identical values.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

import blake3
from pydantic import BaseModel, ConfigDict, Field

Algorithm = Literal["sha256", "blake3"]
ALGORITHMS: tuple[Algorithm, ...] = ("sha256", "blake3")
_HEX64 = r"^[0-9a-f]{64}$"


class DigestSet(BaseModel):
    """Both digests of some bytes, lowercase hex."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    sha256: str = Field(pattern=_HEX64)
    blake3: str = Field(pattern=_HEX64)

    def hex(self, algorithm: Algorithm) -> str:
        return self.sha256 if algorithm == "sha256" else self.blake3

    def raw(self, algorithm: Algorithm) -> bytes:
        """The 32 raw digest bytes of ``algorithm``."""
        return bytes.fromhex(self.hex(algorithm))

    def text(self, algorithm: Algorithm = "sha256") -> str:
        """Single-algorithm text form, ``sha256:<hex>``."""
        return f"{algorithm}:{self.hex(algorithm)}"

    def mismatches(self, other: DigestSet) -> list[Algorithm]:
        """The algorithms whose values differ between ``self`` and ``other``."""
        return [a for a in ALGORITHMS if not hmac.compare_digest(self.hex(a), other.hex(a))]


def digest_bytes(data: bytes) -> DigestSet:
    """Digest set of ``data`` in one shot."""
    return DigestSet(
        sha256=hashlib.sha256(data).hexdigest(), blake3=blake3.blake3(data).hexdigest()
    )


class StreamingDigest:
    """Digest set computed incrementally, with the byte count on the side."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._blake3 = blake3.blake3()
        self.bytes = 0

    def update(self, data: bytes) -> None:
        self._sha256.update(data)
        self._blake3.update(data)
        self.bytes += len(data)

    def finish(self) -> DigestSet:
        return DigestSet(sha256=self._sha256.hexdigest(), blake3=self._blake3.hexdigest())
