"""`make run`'s demo catalog: the committed seal where it holds, a copy sealed here only when
nothing but a command's executable differs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from catalog.errors import SealMismatch
from catalog.load import SEAL_FILE, load_catalog_dir, read_seal, write_seal
from catalog.seal import check_seal, compute_seal
from examples.demo.machine_catalog import machine_catalog

TOML = """
[catalog]
name = "machine"
version = "1"

[sources.items]
engine = "sqlite"

[[query]]
id = "items.all"
title = "All items"
source = "items"
sql = "queries/all.sql"

[[command]]
id = "tool.run"
title = "Run the tool"
argv = ["{tool}"]
mutating = false
"""


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\necho one\n")
    tool.chmod(0o755)
    folder = tmp_path / "catalog"
    (folder / "queries").mkdir(parents=True)
    (folder / "queries" / "all.sql").write_text("SELECT count(*) AS n FROM items\n")
    (folder / "catalog.toml").write_text(TOML.replace("{tool}", str(tool)))
    write_seal(folder / SEAL_FILE, compute_seal(load_catalog_dir(folder), datetime.now(UTC)))
    return folder


def test_a_catalog_whose_seal_holds_is_served_as_it_is(sealed: Path, tmp_path: Path) -> None:
    copy = tmp_path / "var" / "catalog"
    assert machine_catalog(sealed, copy) == sealed
    assert not copy.exists()


def test_a_changed_executable_gives_a_copy_sealed_here_and_says_so(
    sealed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tool").write_text("#!/bin/sh\necho two\n")
    copy = tmp_path / "var" / "catalog"
    assert machine_catalog(sealed, copy) == copy
    check_seal(load_catalog_dir(copy), read_seal(copy / SEAL_FILE))  # the copy's seal holds
    with pytest.raises(SealMismatch):  # the original's seal still refuses
        check_seal(load_catalog_dir(sealed), read_seal(sealed / SEAL_FILE))
    assert "executables differ from the demo seal's pins (tool.run)" in capsys.readouterr().err


def test_a_changed_query_is_never_resealed(sealed: Path, tmp_path: Path) -> None:
    (sealed / "queries" / "all.sql").write_text("SELECT count(*) + 1 AS n FROM items\n")
    copy = tmp_path / "var" / "catalog"
    with pytest.raises(SealMismatch) as caught:
        machine_catalog(sealed, copy)
    assert caught.value.changed == ["items.all"]
    assert not copy.exists()
