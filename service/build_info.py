"""Which build is running: version and ``module_sha256`` over the installed govex code.

``module_sha256`` is SHA-256 over the installed code files, in a defined order:

- the inputs are every file whose name ends in ``.py`` under the folders of the
  ``catalog``, ``ledger`` and ``service`` packages, at any depth (migrations
  included; ``__pycache__`` holds no ``.py`` file; data files such as the bundled
  policies and schemas are not code: ``service.started`` records the policy digest);
- each file is named by its ``/``-separated path relative to the folder holding the
  packages (``service/calls.py``), and the files are sorted by that name (code point
  order, which for these ASCII names is byte order);
- for each file in that order, the digest is fed: the name (UTF-8), a NUL byte, the
  file's length in decimal ASCII, a NUL byte, then the file's bytes.

It is computed once when a runtime is built (:func:`current_build`) and recorded,
that same value, in the ``service.started`` entry and in every packet's ``service``
block, so an auditor can tell which build produced what; ``govex selftest`` and
``GET /v1/selftest`` show it and compare it with the code on disk now.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import catalog
import ledger
import service

if TYPE_CHECKING:
    from collections.abc import Iterable

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


def package_roots() -> tuple[Path, ...]:
    """The folders of the installed ``catalog``, ``ledger`` and ``service`` packages."""
    return tuple(Path(package.__file__ or "").parent for package in _PACKAGES)


def code_files(roots: Iterable[Path]) -> list[tuple[str, Path]]:
    """The inputs of :func:`code_digest`: (name, path) of every ``.py`` file, in digest order.

    A name is the file's ``/``-separated path relative to its package folder's parent.
    """
    files: list[tuple[str, Path]] = []
    for root in roots:
        files.extend(
            (path.relative_to(root.parent).as_posix(), path)
            for path in root.rglob("*.py")
            if path.is_file()
        )
    return sorted(files)


def code_digest(roots: Iterable[Path]) -> str:
    """SHA-256 (hex) over the code files under ``roots``, as the module docstring defines."""
    digest = hashlib.sha256()
    for name, path in code_files(roots):
        data = path.read_bytes()
        digest.update(name.encode() + b"\x00" + str(len(data)).encode() + b"\x00" + data)
    return digest.hexdigest()


def module_sha256() -> str:
    """Digest of the installed govex code files (:func:`code_digest` of the package folders)."""
    return code_digest(package_roots())


def current_build() -> BuildInfo:
    return BuildInfo(version=govex_version(), module_sha256=module_sha256())
