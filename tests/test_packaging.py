"""`pip install .` (not editable) into a fresh venv gives a working govex with its data files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_a_wheel_install_finds_schemas_and_policies(tmp_path: Path) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        pytest.fail("uv is not installed in the test environment (make test installs it)")
    venv = tmp_path / "venv"
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    env.pop("PYTHONPATH", None)
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, env=env
    )
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(venv / "bin" / "python"),
            "--no-editable",
            str(REPO),
        ],
        check=True,
        env=env,
        cwd=tmp_path,
    )
    help_text = subprocess.run(
        [str(venv / "bin" / "govex"), "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert "packet" in help_text
    probe = (
        "import importlib.resources as r, service.policy as p, service;"
        "s = p.PolicySet.load(None);"
        "names = sorted(f.name for f in r.files('schemas').iterdir() if f.name.endswith('.json'));"
        "print(service.__file__); print(len(s.ids_by_position)); print(','.join(names))"
    )
    lines = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.splitlines()
    assert str(venv) in lines[0]  # the installed copy, not the checkout
    assert int(lines[1]) > 0
    assert "packet.schema.json" in lines[2].split(",")
