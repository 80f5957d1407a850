"""Which build is running: version and ``module_sha256`` over the installed govex code.

``module_sha256`` is SHA-256 over, for each ``.py`` file of the ``catalog``,
``ledger`` and ``service`` packages sorted by their ``/``-separated path relative
to the package parent: the path (UTF-8), a NUL byte, the file length in decimal,
a NUL byte, then the file bytes. Recorded in every ``service.started`` entry and
every packet, so an auditor can tell which build produced what.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import catalog
import ledger
import service

_PACKAGES = (catalog, ledger, service)


@dataclass(frozen=True)
class BuildInfo:
    version: str
    module_sha256: str


def govex_version() -> str:
    try:
        return metadata.version("govex")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def module_sha256() -> str:
    """Digest of the installed govex code files, in the order the module docstring defines."""
    files: list[tuple[str, Path]] = []
    for package in _PACKAGES:
        root = Path(package.__file__ or "").parent
        files.extend(
            (path.relative_to(root.parent).as_posix(), path) for path in root.rglob("*.py")
        )
    digest = hashlib.sha256()
    for name, path in sorted(files):
        data = path.read_bytes()
        digest.update(name.encode() + b"\x00" + str(len(data)).encode() + b"\x00" + data)
    return digest.hexdigest()


def current_build() -> BuildInfo:
    return BuildInfo(version=govex_version(), module_sha256=module_sha256())
