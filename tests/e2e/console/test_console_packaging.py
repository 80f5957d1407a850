"""The wheel carries the console's templates and static files (hatch packs them with service/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from service.console.render import STATIC, TEMPLATES

REPO = Path(__file__).resolve().parents[3]


def test_the_wheel_holds_every_template_and_static_file(tmp_path: Path) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        pytest.fail("uv is not installed in the test environment (make test installs it)")
    subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(tmp_path), str(REPO)],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("govex-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"service/console/{path.relative_to(TEMPLATES.parent).as_posix()}"
        for folder in (TEMPLATES, STATIC)
        for path in folder.iterdir()
    }
    assert len(expected) >= 15
    assert expected <= names, sorted(expected - names)
