"""Print the demo catalog folder `make run` serves on this machine.

The demo's seal pins the SHA-256 of /bin/date (its one command entry) as built on
Debian 12. On a machine whose /bin/date differs, that entry's digest differs and the
committed seal rightly refuses to start. Then, and only when command entries alone
differ, this copies the demo catalog under var/ and seals the copy here, saying so
loudly on stderr: an operator's real catalog is never resealed behind their back
(`make run` calls this only for the bundled demo).

    python examples/demo/machine_catalog.py SOURCE_DIR COPY_DIR   -> prints the folder
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from catalog.errors import CatalogError, SealMismatch
from catalog.load import SEAL_FILE, load_catalog_dir, read_seal, write_seal
from catalog.model import CommandEntry
from catalog.seal import check_seal, compute_seal


def machine_catalog(source: Path, copy: Path) -> Path:
    """``source`` when its seal holds here, else a copy under ``copy`` sealed here.

    Raises :class:`CatalogError` when anything but command entries differs from the
    seal: that is a real change, to be fixed, not resealed.
    """
    catalog = load_catalog_dir(source)
    try:
        check_seal(catalog, read_seal(source / SEAL_FILE))
    except SealMismatch as exc:
        commands = {e.id for e in catalog.entries if isinstance(e, CommandEntry)}
        header_ok = set(exc.header) <= {"catalog_digest"}
        if exc.added or exc.removed or not header_ok or not set(exc.changed) <= commands:
            raise
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(source, copy)
        write_seal(copy / SEAL_FILE, compute_seal(load_catalog_dir(copy), datetime.now(UTC)))
        changed = ", ".join(exc.changed)
        print(
            f"NOTE: this machine's executables differ from the demo seal's pins ({changed});\n"
            f"NOTE: serving a copy of the demo catalog sealed here: {copy}",
            file=sys.stderr,
        )
        return copy
    return source


def main(argv: list[str]) -> int:
    if len(argv) != 2:  # noqa: PLR2004 - the two folders
        print(__doc__, file=sys.stderr)
        return 2
    try:
        folder = machine_catalog(Path(argv[0]), Path(argv[1]))
    except CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
