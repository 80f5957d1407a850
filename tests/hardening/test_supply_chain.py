"""Supply chain: no locked dependency with a known vulnerability, and ruff's security rules on.

The audit exports ``uv.lock`` (every group and extra, exact pins) and runs ``pip-audit``
on it with the PyPI vulnerability service (the PyPA advisory database, as PyPI serves it).
pip-audit asks PyPI's per-release JSON API (``/pypi/<name>/<version>/json``). Where a
registry serves only the per-project document (``/pypi/<name>/json``, the case on this
project's build machines, which reach PyPI through a registry front that answers 404 to
per-release URLs, and cannot reach OSV at all), pip-audit reports each such dependency as
"not found" and skips it. Each skipped one is then audited from the per-project
document: its ``vulnerabilities`` are those of the latest release, so a pin that *is* the
latest release is audited exactly; a pin that is not cannot be audited there and fails,
unless listed in ``NOT_LATEST`` with the reason. No answer at all (no network) is a
failure, never a pass.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPI_PROJECT = "https://pypi.org/pypi/{name}/json"
TIMEOUT_S = 30
_BANDIT = re.compile(r"^S\d*$")  # flake8-bandit: S, S1, S101 (not SIM, SLF)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")

# Pins that are not the latest release, each with why; the audit fails on any other.
NOT_LATEST: dict[str, str] = {
    "atheris": "3.1 ships no CPython 3.11 wheel and no sdist; a test-only fuzzer, never shipped",
}
# Advisories accepted after review, by id, each with why (none today).
ACCEPTED: dict[str, str] = {}


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        pytest.fail("uv not found beside the interpreter or on PATH: `make test` installs it")
    return found


def _locked_pins(out: Path) -> dict[str, str]:
    """Export the lock as requirements (exact pins, no hashes) to ``out``; name -> version."""
    subprocess.run(
        [
            _uv(),
            "export",
            "--locked",
            "--no-hashes",
            "--all-groups",
            "--all-extras",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "--quiet",
            "-o",
            str(out),
        ],
        cwd=REPO,
        check=True,
        timeout=120,
    )
    pins = {}
    for line in out.read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pip_audit(requirements: Path, report: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip_audit",
            "-r",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "--progress-spinner",
            "off",
            "-s",
            "pypi",
            "--timeout",
            str(TIMEOUT_S),
            "-f",
            "json",
            "-o",
            str(report),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if not report.exists() or result.returncode not in {0, 1}:
        pytest.fail(
            f"pip-audit could not run its audit (exit {result.returncode}): a network or "
            f"service failure is a failure here, not a pass\n{result.stderr[-3000:]}"
        )
    parsed: dict[str, Any] = json.loads(report.read_text())
    return parsed


def _project(name: str) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - a fixed https URL
        PYPI_PROJECT.format(name=name), headers={"Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
            document: dict[str, Any] = json.load(response)
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise RuntimeError(f"{name}: cannot read {PYPI_PROJECT.format(name=name)}: {exc}") from exc
    return document


def _open_advisories(vulns: list[dict[str, Any]]) -> list[str]:
    return [
        f"{v.get('id')} ({', '.join(v.get('aliases') or [])}; fixed in "
        f"{', '.join(v.get('fix_versions') or v.get('fixed_in') or []) or 'no release'})"
        for v in vulns
        if not v.get("withdrawn") and v.get("id") not in ACCEPTED
    ]


def test_no_locked_dependency_has_a_known_vulnerability(tmp_path: Path) -> None:
    pins = _locked_pins(tmp_path / "requirements.txt")
    assert len(pins) >= 50, "the lock export lists too few packages to be the whole lock"
    audit = _pip_audit(tmp_path / "requirements.txt", tmp_path / "pip-audit.json")
    findings: list[str] = []
    skipped: list[str] = []
    for dependency in audit["dependencies"]:
        name = _canonical(dependency["name"])
        if "skip_reason" in dependency:
            skipped.append(name)
            continue
        findings += [
            f"{name}=={pins.get(name)}: {a}" for a in _open_advisories(dependency["vulns"])
        ]

    # What pip-audit could not look up per release, from the per-project document.
    with ThreadPoolExecutor(max_workers=8) as pool:
        try:
            projects = dict(zip(skipped, pool.map(_project, skipped), strict=True))
        except RuntimeError as exc:
            pytest.fail(f"the vulnerability service is unreachable, so nothing was audited: {exc}")
    unaudited: list[str] = []
    for name, document in projects.items():
        latest = document["info"]["version"]
        if pins[name] == latest:
            advisories = _open_advisories(document.get("vulnerabilities", []))
            findings += [f"{name}=={pins[name]}: {a}" for a in advisories]
        elif name not in NOT_LATEST:
            unaudited.append(f"{name}=={pins[name]} (latest {latest})")

    assert not findings, "known vulnerabilities in locked dependencies:\n" + "\n".join(findings)
    assert not unaudited, (
        "these pins are not the latest release, and the registry here serves advisories "
        "for latest releases only: upgrade them (`uv lock --upgrade-package NAME`), or "
        "audit where pypi.org's per-release API answers:\n" + "\n".join(unaudited)
    )
    stale = sorted(set(NOT_LATEST) - set(pins))
    assert not stale, f"NOT_LATEST names packages no longer locked: {stale}"


# --- ruff's security rules (flake8-bandit, S) --------------------------------------------------

# One line per rule, each a textbook case ruff's S rules must flag in product code.
_PROBE = """\
import hashlib, pickle, subprocess, tempfile

def probe(sql_input: str, blob: bytes, command: str) -> object:
    exec(command)
    password = "hunter2"
    subprocess.run(command, shell=True)
    hashlib.md5(blob)
    tempfile.mktemp()
    open("/tmp/govex-probe")
    query = f"SELECT * FROM t WHERE id = {sql_input}"
    host = "0.0.0.0"
    return eval(command), pickle.loads(blob), query, password, host
"""
_EXPECTED = {"S102", "S105", "S602", "S324", "S306", "S108", "S608", "S104", "S307", "S301"}


@pytest.mark.parametrize("where", ["service/_probe.py", "ledger/_probe.py", "catalog/_probe.py"])
def test_ruff_security_rules_flag_product_code(where: str) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ruff"),
            "check",
            "--no-cache",
            "--output-format",
            "json",
            "--stdin-filename",
            where,
            "-",
        ],
        cwd=REPO,
        input=_PROBE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = {item["code"] for item in json.loads(result.stdout)}
    assert found >= _EXPECTED, f"S rules not reported in {where}: {sorted(_EXPECTED - found)}"


def _ruff_settings() -> dict[str, Any]:
    settings: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["ruff"]
    return settings


def test_no_security_rule_is_ignored_broadly() -> None:
    """``select = ["ALL"]``; no S rule is ignored globally, and per-file ones are the listed ones.

    Every exception is documented in docs/security.md ("Supply chain"), with its reason.
    """
    lint = _ruff_settings()["lint"]
    assert lint["select"] == ["ALL"]
    assert not [code for code in lint.get("ignore", []) if _BANDIT.match(code)]
    per_file = {
        pattern: sorted(code for code in codes if _BANDIT.match(code))
        for pattern, codes in lint.get("per-file-ignores", {}).items()
    }
    assert {k: v for k, v in per_file.items() if v} == {
        "tests/**": ["S101", "S105", "S106", "S603"],
        "examples/**": ["S311"],
        "bench/**": ["S603"],
    }


def test_every_inline_security_exemption_in_product_code_says_why() -> None:
    bare = []
    for package in ("catalog", "ledger", "service"):
        for path in sorted((REPO / package).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                match = re.search(r"# noqa: ([A-Z0-9]+(?:, [A-Z0-9]+)*)(.*)$", line)
                if (
                    match
                    and re.search(r"\bS\d+", match.group(1))
                    and not match.group(2).startswith(" - ")
                ):
                    bare.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not bare, "security exemptions without a reason:\n" + "\n".join(bare)


def test_the_audit_needs_the_network_and_says_so() -> None:
    """A registry that cannot be reached is a failure with the URL named, never a pass."""
    saved = {key: os.environ.get(key) for key in ("HTTPS_PROXY", "https_proxy")}
    os.environ["HTTPS_PROXY"] = os.environ["https_proxy"] = "http://127.0.0.1:9"  # discard
    try:
        with pytest.raises(RuntimeError, match=r"cannot read https://pypi\.org/pypi/govex/json"):
            _project("govex")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
