"""The atheris fuzz targets under tests/hardening/fuzz/, each run in its own process.

Targets: the packet verifier on arbitrary zip bytes (``packet_zip``) and on edited valid
packets (``packet_members``), the tlog-proof parser and verifier (``tlog_proof``), the
signed-note, checkpoint and key parsers (``note``), and the catalog loader (``catalog``).
Each must survive its run: no exception outside the module's documented error hierarchy
(a crash), no input slower than ``-timeout`` seconds (a hang), no process over
``-rss_limit_mb`` or its address-space cap (unbounded memory). A failing input is saved
under ``build/fuzz-crashes/<target>/`` and named in the failure, with the traceback.

``make test`` runs every target at once for a few seconds (``BOUNDED_S``); ``make soak``
runs them for ``FUZZ_SOAK_SECONDS`` seconds each (default 600) on a corpus kept in
``build/fuzz-corpus/<target>/`` from one soak to the next. Seeds are valid inputs built
at run time, plus the shared conformance vectors read from ``../shared/vectors`` when
present (never copied into the repository).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "tests" / "hardening" / "fuzz" / "run_target.py"
CRASHES = REPO / "build" / "fuzz-crashes"
SOAK_CORPUS = REPO / "build" / "fuzz-corpus"
VECTORS = REPO.parent / "shared" / "vectors"
_RAM_DISK = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108 - inputs are files
TARGETS = ("packet_zip", "packet_members", "tlog_proof", "note", "catalog")

BOUNDED_S = 8  # wall seconds per target; all targets run at once (2 cores: ~4 CPU-s each)
MIN_EXECS = 200  # a run that did fewer did not really fuzz: a failure, not a pass
INPUT_TIMEOUT_S = 20  # one input slower than this is a hang (generous: the machine is shared)
RSS_LIMIT_MB = 2048
_EXECS = re.compile(rb"stat::number_of_executed_units:\s*(\d+)")


@dataclass(frozen=True)
class FuzzRun:
    target: str
    returncode: int
    execs: int
    seconds: float
    log: str
    findings: tuple[Path, ...]

    def explain(self) -> str:
        saved = ", ".join(str(p) for p in self.findings) or "none saved"
        tail = "\n".join(self.log.splitlines()[-40:])
        return (
            f"fuzz target {self.target} failed (exit {self.returncode}, {self.execs} execs in "
            f"{self.seconds:.1f} s); input: {saved}; replay it with `.venv/bin/python "
            f"{RUNNER.relative_to(REPO)} {self.target} FILE`\n{tail}"
        )


def _vectors() -> Path | None:
    return VECTORS if VECTORS.is_dir() else None


def _seed(target: str, folder: Path) -> int:
    """Write the target's seeds (and the conformance vectors it can use) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(f"tests.hardening.fuzz.target_{target}")
    seeds: list[bytes] = list(module.seeds())
    vectors = _vectors()
    if vectors is not None and target == "packet_zip":
        from tests.hardening.fuzz.packets import zip_bag_folder  # noqa: PLC0415 - builds a packet

        bags = sorted(p for p in (vectors / "bagit" / "v1.0").glob("*/*") if p.is_dir())
        seeds.extend(zip_bag_folder(bag) for bag in bags)
    for number, seed in enumerate(seeds):
        (folder / f"seed-{number:03d}").write_bytes(seed)
    return len(seeds)


def _start(
    target: str, corpus: list[Path], seconds: int, log: Path, scratch: Path
) -> subprocess.Popen[bytes]:
    findings = CRASHES / target
    findings.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("GOVEX_")}
    env["PYTHONPATH"] = str(REPO)
    env["GOVEX_FUZZ_SCRATCH"] = str(scratch)
    vectors = _vectors()
    if vectors is not None:
        env["GOVEX_FUZZ_VECTORS"] = str(vectors)
    argv = [
        sys.executable,
        str(RUNNER),
        target,
        f"-max_total_time={seconds}",
        f"-timeout={INPUT_TIMEOUT_S}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-artifact_prefix={findings}/",
        "-print_final_stats=1",
        *(str(folder) for folder in corpus),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def _record(runs: dict[str, FuzzRun], name: str) -> None:
    """What each target did, in build/fuzz-<name>.json: the figures docs/security.md cites."""
    summary = {
        run.target: {"exit": run.returncode, "execs": run.execs, "seconds": round(run.seconds, 1)}
        for run in runs.values()
    }
    (CRASHES.parent / f"fuzz-{name}.json").write_text(json.dumps(summary, indent=2) + "\n")


def _run_all(root: Path, seconds: int, corpora: dict[str, list[Path]]) -> dict[str, FuzzRun]:
    """Start every target at once, wait for all, and collect what each did."""
    before = {target: set((CRASHES / target).glob("*")) for target in TARGETS}
    started = time.monotonic()
    logs = {target: root / f"{target}.log" for target in TARGETS}
    scratch = Path(tempfile.mkdtemp(prefix="govex-fuzz-", dir=_RAM_DISK))
    try:
        processes = {t: _start(t, corpora[t], seconds, logs[t], scratch) for t in TARGETS}
        return _wait_all(processes, logs, started, seconds, before)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_all(
    processes: dict[str, subprocess.Popen[bytes]],
    logs: dict[str, Path],
    started: float,
    seconds: int,
    before: dict[str, set[Path]],
) -> dict[str, FuzzRun]:
    runs: dict[str, FuzzRun] = {}
    for target, process in processes.items():
        try:
            returncode = process.wait(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            process.kill()  # our own child: a hang past libFuzzer's own limits
            returncode = process.wait()
        data = logs[target].read_bytes()
        executed = _EXECS.search(data)
        runs[target] = FuzzRun(
            target=target,
            returncode=returncode,
            execs=int(executed.group(1)) if executed else 0,
            seconds=time.monotonic() - started,
            log=data.decode("utf-8", "replace"),
            findings=tuple(sorted(set((CRASHES / target).glob("*")) - before[target])),
        )
    return runs


@pytest.fixture(scope="module")
def bounded_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FuzzRun]:
    root = tmp_path_factory.mktemp("fuzz")
    corpora = {}
    for target in TARGETS:
        _seed(target, root / "corpus" / target)
        corpora[target] = [root / "corpus" / target]
    runs = _run_all(root, BOUNDED_S, corpora)
    _record(runs, "bounded")
    return runs


@pytest.mark.parametrize("target", TARGETS)
def test_a_bounded_fuzz_run_finds_no_crash_hang_or_memory_blowup(
    target: str, bounded_runs: dict[str, FuzzRun]
) -> None:
    run = bounded_runs[target]
    assert run.returncode == 0, run.explain()
    assert not run.findings, run.explain()
    assert run.execs >= MIN_EXECS, f"{target} ran only {run.execs} inputs:\n{run.log[-3000:]}"


@pytest.mark.parametrize("target", TARGETS)
def test_every_seed_is_an_input_the_target_accepts(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The seeds run through ``test_one_input`` in this process: no seed is itself a crash."""
    monkeypatch.setenv("GOVEX_FUZZ_SCRATCH", str(tmp_path))
    module = importlib.import_module(f"tests.hardening.fuzz.target_{target}")
    module.prepare()
    seeds = list(module.seeds())
    assert seeds
    for seed in seeds:
        module.test_one_input(seed)


def test_the_conformance_vectors_seed_the_packet_and_note_targets(tmp_path: Path) -> None:
    """The shared vectors are read at run time; absent, this skips (and fails under CI)."""
    if _vectors() is None:
        reason = f"conformance vectors not found at {VECTORS} (a plain clone has none)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires them")
        pytest.skip(reason)
    generated = len(importlib.import_module("tests.hardening.fuzz.target_packet_zip").seeds())
    assert _seed("packet_zip", tmp_path / "zip") >= generated + 5  # the BagIt bags, zipped
    os.environ["GOVEX_FUZZ_VECTORS"] = str(VECTORS)
    try:
        note = importlib.import_module("tests.hardening.fuzz.target_note")
        note._vectors.cache_clear()
        note._trusted.cache_clear()
        vector_notes = len(note._vectors())
        assert vector_notes >= 3
        assert len(note.seeds()) >= 6 + vector_notes
        for seed in note.seeds()[6:]:
            note.test_one_input(seed)  # each vector opens with its keys, trusted by the target
    finally:
        del os.environ["GOVEX_FUZZ_VECTORS"]
        note._vectors.cache_clear()
        note._trusted.cache_clear()


def _soak_seconds() -> int:
    return int(os.environ.get("FUZZ_SOAK_SECONDS", "600"))


@pytest.fixture(scope="module")
def soak_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FuzzRun]:
    root = tmp_path_factory.mktemp("fuzz-soak")
    corpora = {}
    for target in TARGETS:
        _seed(target, root / "seeds" / target)
        kept = SOAK_CORPUS / target
        kept.mkdir(parents=True, exist_ok=True)
        corpora[target] = [kept, root / "seeds" / target]  # new finds go to the first
    runs = _run_all(root, _soak_seconds(), corpora)
    _record(runs, "soak")
    return runs


@pytest.mark.soak
@pytest.mark.parametrize("target", TARGETS)
def test_a_long_fuzz_run_finds_no_crash_hang_or_memory_blowup(
    target: str, soak_runs: dict[str, FuzzRun]
) -> None:
    run = soak_runs[target]
    assert run.returncode == 0, run.explain()
    assert not run.findings, run.explain()
    assert run.execs >= MIN_EXECS * 10, f"{target} ran only {run.execs} inputs"
