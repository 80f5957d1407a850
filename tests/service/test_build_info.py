"""``module_sha256``: a digest over the installed code files in a defined order.

It changes when a code file changes (bytes, name, a file added) and is stable otherwise:
checked on a copy of the installed packages, so the real ones are never touched.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from service.build_info import code_digest, code_files, current_build, module_sha256, package_roots


@pytest.fixture
def copy(tmp_path: Path) -> list[Path]:
    """A copy of the installed ``catalog``, ``ledger`` and ``service`` package folders."""
    roots = []
    for root in package_roots():
        target = tmp_path / root.name
        shutil.copytree(root, target, ignore=shutil.ignore_patterns("__pycache__"))
        roots.append(target)
    return roots


def test_the_digest_follows_its_definition() -> None:
    expected = hashlib.sha256()
    files = code_files(package_roots())
    assert [name for name, _ in files] == sorted(name for name, _ in files)
    assert "service/build_info.py" in dict(files)
    for name, path in files:
        data = path.read_bytes()
        expected.update(name.encode() + b"\x00" + str(len(data)).encode() + b"\x00" + data)
    assert module_sha256() == expected.hexdigest()


def test_it_is_stable_and_is_the_one_a_runtime_records() -> None:
    assert module_sha256() == module_sha256() == current_build().module_sha256


def test_a_copy_of_the_same_files_digests_the_same(copy: list[Path]) -> None:
    assert code_digest(copy) == module_sha256()


def test_changing_a_code_file_changes_it_and_undoing_the_change_restores_it(
    copy: list[Path],
) -> None:
    before = code_digest(copy)
    target = copy[2] / "calls.py"
    original = target.read_bytes()
    target.write_bytes(original.replace(b"def execute(", b"def execute (", 1))
    assert code_digest(copy) != before
    target.write_bytes(original)
    assert code_digest(copy) == before


def test_adding_or_renaming_a_code_file_changes_it(copy: list[Path]) -> None:
    before = code_digest(copy)
    added = copy[1] / "extra.py"
    added.write_text("")
    assert code_digest(copy) != before
    added.unlink()
    assert code_digest(copy) == before
    (copy[0] / "ids.py").rename(copy[0] / "ids2.py")
    assert code_digest(copy) != before


def test_files_that_are_not_code_are_not_inputs(copy: list[Path]) -> None:
    before = code_digest(copy)
    (copy[2] / "notes.txt").write_text("not code")
    (copy[2] / "__pycache__").mkdir(exist_ok=True)
    (copy[2] / "__pycache__" / "calls.cpython-311.pyc").write_bytes(b"\x00")
    assert code_digest(copy) == before
