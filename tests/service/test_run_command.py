"""The command boundary, with real processes: whole arguments, a pinned executable, a reduced
environment, a fresh folder, rlimits, output caps and a deadline that kills the whole group."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from catalog.digest import digest_bytes
from service.command_spec import CommandLimits, CommandSpec, build_argv
from service.errors import (
    CommandFailed,
    CommandRefused,
    CommandSpecInvalid,
    ExecutableMismatch,
    ExecutableUnavailable,
)
from service.problems import problem_kind
from service.run_command import (
    CapturedOutput,
    CommandResult,
    CommandVerdict,
    run_command,
    verdict_for,
)
from service.verdicts import Verdict

PYTHON = sys.executable
PYTHON_SHA256 = hashlib.sha256(Path(PYTHON).read_bytes()).hexdigest()
MiB = 1024 * 1024
LIMITS = CommandLimits(cpu_seconds=10, memory_bytes=1024 * MiB, file_size_bytes=MiB, open_files=64)
FAST_TIMEOUT_MS = 500
# A grandchild that would outlive everything if nobody killed it.
SLEEPER = f"[{PYTHON!r}, '-I', '-S', '-c', 'import time; time.sleep(60)']"
_PR_SET_CHILD_SUBREAPER = 36


def _spec(tmp_path: Path, body: str, *args: str, **changes: Any) -> CommandSpec:
    """Python running ``body`` as a script; the template continues with ``args``."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(body))
    spec = CommandSpec(
        executable=PYTHON,
        executable_sha256=PYTHON_SHA256,
        args=("-I", "-S", str(script), *args),
        env_allowlist=(),
        limits=LIMITS,
        stdout_cap_bytes=MiB,
        stderr_cap_bytes=MiB,
        timeout_ms=10_000,
    )
    return replace(spec, **changes)


def _run(
    tmp_path: Path,
    spec: CommandSpec,
    inputs: dict[str, Any] | None = None,
    base_env: dict[str, str] | None = None,
) -> tuple[CommandResult, bytes, bytes]:
    out, err = tmp_path / "stdout.bin", tmp_path / "stderr.bin"
    result = run_command(
        spec, inputs or {}, stdout_path=out, stderr_path=err, base_env=base_env or {}
    )
    return result, out.read_bytes(), err.read_bytes()


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Orphaned grandchildren re-parent to this test process (not to PID 1, which may never
    reap them), so a test can reap one and read how it ended."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.fail(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")
    try:
        yield
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _reap_killed(pid: int) -> None:
    """Reap ``pid`` (an orphan now ours) and check SIGKILL ended it and it is gone."""
    deadline = time.monotonic() + 2
    while True:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"process {pid} was still alive after the command ended")
        time.sleep(0.01)
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


# --- argv: whole arguments ----------------------------------------------------------------


def test_each_value_is_exactly_one_argument(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "import json, sys; print(json.dumps(sys.argv[1:]))",
        "--name",
        "{name}",
        "{count}",
        "{ratio}",
        "{flag}",
        "{name}",
    )
    hostile = "a b; rm -rf / $(id) `id` 'q' \"z\" | > < * \n x"
    result, out, _ = _run(tmp_path, spec, {"name": hostile, "count": 7, "ratio": 0.5, "flag": True})
    assert result.exit_code == 0
    assert json.loads(out) == ["--name", hostile, "7", "0.5", "true", hostile]
    assert result.argv == (PYTHON, "-I", "-S", str(tmp_path / "child.py"), *json.loads(out))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param("plain", "plain", id="string-as-is"),
        pytest.param("", "", id="empty-string-is-one-empty-argument"),
        pytest.param(True, "true", id="bool-true"),
        pytest.param(False, "false", id="bool-false"),
        pytest.param(42, "42", id="int"),
        pytest.param(1.0, "1", id="float-integral-jcs"),
        pytest.param(0.1, "0.1", id="float-shortest"),
        pytest.param(1e21, "1e+21", id="float-exponent-jcs"),
        pytest.param(2**53 - 1, "9007199254740991", id="largest-safe-int"),
    ],
)
def test_values_render_as_their_json_text(tmp_path: Path, value: Any, text: str) -> None:
    spec = _spec(tmp_path, "", "{v}")
    assert build_argv(spec, {"v": value})[-1] == text


@pytest.mark.parametrize(
    ("args", "inputs", "where", "message"),
    [
        pytest.param(("{v}",), {"v": "-rf"}, "v", "would be read as an option", id="option"),
        pytest.param(("{v}",), {"v": "--all"}, "v", "would be read as an option", id="long"),
        pytest.param(("{v}",), {"v": "-"}, "v", "would be read as an option", id="dash"),
        pytest.param(("{v}",), {"v": -3}, "v", "would be read as an option", id="negative-int"),
        pytest.param(("{v}",), {"v": -0.5}, "v", "would be read as an option", id="negative-float"),
        pytest.param(
            ("{v}", "--"), {"v": "-x"}, "v", "would be read as an option", id="dashes-after"
        ),
        pytest.param(
            ("{v}",), {"v": "--"}, "v", "would be read as an option", id="value-cannot-end-options"
        ),
        pytest.param(
            ("{a}", "{b}"), {"a": "-x", "b": "y"}, "a", "option", id="first-of-two-refused"
        ),
        pytest.param(("{v}",), {}, "v", "no value", id="missing"),
        pytest.param(("{v}",), {"v": None}, "v", "no value", id="none-is-missing"),
        pytest.param(("{b}", "{a}"), {}, "a, b", "no value", id="every-missing-named"),
        pytest.param(("{v}",), {"v": "x", "w": "y"}, "w", "no placeholder", id="unknown"),
        pytest.param(("x",), {"v": "x"}, "v", "no placeholder", id="unknown-no-template"),
        pytest.param(("{v}",), {"v": "a\x00b"}, "v", "NUL", id="nul"),
        pytest.param(("{v}",), {"v": float("nan")}, "v", "finite", id="nan"),
        pytest.param(("{v}",), {"v": float("inf")}, "v", "finite", id="inf"),
        pytest.param(("{v}",), {"v": 2**53}, "v", "safe integer", id="unsafe-int"),
        pytest.param(("{v}",), {"v": b"x"}, "v", "cannot be an argument", id="bytes"),
        pytest.param(("{v}",), {"v": ["x"]}, "v", "cannot be an argument", id="list"),
    ],
)
def test_argv_refusals_name_the_parameter(
    tmp_path: Path, args: tuple[str, ...], inputs: dict[str, Any], where: str, message: str
) -> None:
    spec = _spec(tmp_path, "", *args)
    with pytest.raises(CommandRefused, match=message) as info:
        build_argv(spec, inputs)
    assert info.value.where == where


def test_refusals_never_echo_the_value(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "", "{v}")
    with pytest.raises(CommandRefused) as info:
        build_argv(spec, {"v": "-password=hunter2"})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--", "{v}"), id="dashes-right-before"),
        pytest.param(("--", "x", "{v}"), id="dashes-earlier"),
    ],
)
def test_option_looking_value_is_allowed_after_end_of_options(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    spec = _spec(tmp_path, "import json, sys; print(json.dumps(sys.argv[1:]))", *args)
    result, out, _ = _run(tmp_path, spec, {"v": "-rf /"})
    assert result.exit_code == 0
    assert json.loads(out)[-1] == "-rf /"


def test_a_refused_value_runs_nothing(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "", "{v}")
    with pytest.raises(CommandRefused):
        _run(tmp_path, spec, {"v": "-x"})
    assert not (tmp_path / "stdout.bin").exists()


# --- the spec is checked when it is built -------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        pytest.param({"args": ("--x={v}",)}, "args[0]", id="embedded-option"),
        pytest.param({"args": ("a", "{v}.txt")}, "args[1]", id="embedded-suffix"),
        pytest.param({"args": ("{a}{b}",)}, "args[0]", id="two-in-one"),
        pytest.param({"args": ("{V}",)}, "args[0]", id="bad-name"),
        pytest.param({"args": ("{",)}, "args[0]", id="lone-brace"),
        pytest.param({"args": ("{ v }",)}, "args[0]", id="spaces"),
        pytest.param({"args": ("a\x00b",)}, "args[0]", id="nul-literal"),
        pytest.param({"args": ["x"]}, "args", id="args-list"),
        pytest.param({"args": (1,)}, "args[0]", id="args-not-str"),
        pytest.param({"executable": "python3"}, "executable", id="relative"),
        pytest.param({"executable": "/bin/{v}"}, "executable", id="placeholder-exe"),
        pytest.param({"executable_sha256": "AB" * 32}, "executable_sha256", id="upper-hex"),
        pytest.param({"executable_sha256": "ab"}, "executable_sha256", id="short-pin"),
        pytest.param({"env_allowlist": ("A=B",)}, "env_allowlist[0]", id="env-name"),
        pytest.param({"env_allowlist": "PATH"}, "env_allowlist", id="env-str"),
        pytest.param({"stdout_cap_bytes": -1}, "stdout_cap_bytes", id="negative-cap"),
        pytest.param({"stderr_cap_bytes": True}, "stderr_cap_bytes", id="bool-cap"),
        pytest.param({"timeout_ms": 0}, "timeout_ms", id="zero-timeout"),
        pytest.param({"limits": None}, "limits", id="no-limits"),
    ],
)
def test_spec_refusals_name_the_field(tmp_path: Path, changes: dict[str, Any], where: str) -> None:
    with pytest.raises(CommandSpecInvalid) as info:
        _spec(tmp_path, "", **changes)
    assert info.value.where == where


@pytest.mark.parametrize("field", ["cpu_seconds", "memory_bytes", "file_size_bytes", "open_files"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(CommandSpecInvalid) as info:
        replace(LIMITS, **{field: 0})
    assert info.value.where == f"limits.{field}"


# --- the pinned executable ----------------------------------------------------------------


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tool"
    path.write_text(f"#!{PYTHON}\n{textwrap.dedent(body)}")
    path.chmod(0o755)
    return path


def test_a_pinned_script_runs_and_an_edited_one_is_refused(tmp_path: Path) -> None:
    tool = _script(tmp_path, "import json, sys; print(json.dumps(sys.argv[1:]))")
    pinned = hashlib.sha256(tool.read_bytes()).hexdigest()
    spec = _spec(tmp_path, "", executable=str(tool), executable_sha256=pinned, args=("{v}",))
    result, out, _ = _run(tmp_path, spec, {"v": "a b"})
    assert (result.exit_code, json.loads(out)) == (0, ["a b"])

    tool.write_text(tool.read_text() + "print('changed')\n")
    actual = hashlib.sha256(tool.read_bytes()).hexdigest()
    with pytest.raises(ExecutableMismatch) as info:
        run_command(
            spec,
            {"v": "a b"},
            stdout_path=tmp_path / "o2",
            stderr_path=tmp_path / "e2",
            base_env={},
        )
    assert (info.value.path, info.value.expected, info.value.actual) == (
        str(tool),
        pinned,
        actual,
    )
    assert info.value.where == str(tool)
    assert not (tmp_path / "o2").exists()


def _not_executable(tmp_path: Path) -> Path:
    path = tmp_path / "plain"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o644)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda p: p / "absent", "cannot be opened", id="missing"),
        pytest.param(lambda p: p, "not a regular file", id="directory"),
        pytest.param(_not_executable, "no execute permission", id="no-x-bit"),
    ],
)
def test_an_unusable_executable_is_refused(tmp_path: Path, make: Any, message: str) -> None:
    path = make(tmp_path)
    spec = _spec(tmp_path, "", executable=str(path), executable_sha256="0" * 64)
    with pytest.raises(ExecutableUnavailable, match=message) as info:
        _run(tmp_path, spec)
    assert info.value.where == str(path)
    assert problem_kind(info.value).status == 503  # the host's problem, not the caller's


def test_a_file_the_kernel_cannot_execute_fails_to_start(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"not a program\n")
    blob.chmod(0o755)
    spec = _spec(
        tmp_path,
        "",
        executable=str(blob),
        executable_sha256=hashlib.sha256(b"not a program\n").hexdigest(),
        args=(),
    )
    with pytest.raises(CommandFailed, match="cannot start") as info:
        _run(tmp_path, spec)
    assert info.value.where == str(blob)


# --- environment and working directory ----------------------------------------------------


def test_the_environment_is_only_the_allowlist(tmp_path: Path) -> None:
    # /proc/self/environ is what exec received (Python adds LC_CTYPE to os.environ itself).
    spec = _spec(
        tmp_path,
        """
        import json
        raw = open("/proc/self/environ", "rb").read().split(b"\\0")
        print(json.dumps(dict(v.decode().split("=", 1) for v in raw if v)))
        """,
        env_allowlist=("KEEP", "ALSO", "ABSENT"),
    )
    assert "PATH" in os.environ  # the service's own environment must not leak in
    result, out, _ = _run(tmp_path, spec, base_env={"KEEP": "1", "ALSO": "a b=c", "DROP": "secret"})
    assert result.exit_code == 0
    assert json.loads(out) == {"KEEP": "1", "ALSO": "a b=c"}


def test_a_nul_in_an_allowlisted_value_is_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "", env_allowlist=("X",))
    with pytest.raises(CommandRefused) as info:
        _run(tmp_path, spec, base_env={"X": "a\x00b"})
    assert info.value.where == "X"


def test_cwd_is_a_fresh_private_empty_folder_removed_afterwards(tmp_path: Path) -> None:
    body = """
        import json, os, stat
        here = os.getcwd()
        listing = os.listdir(".")
        mode = stat.S_IMODE(os.stat(".").st_mode)
        os.makedirs("deep/locked")
        open("deep/locked/f", "w").write("x")
        os.chmod("deep/locked", 0)
        os.chmod("deep", 0o500)
        print(json.dumps([here, listing, mode]))
        """
    spec = _spec(tmp_path, body)
    result, out, err = _run(tmp_path, spec)
    assert result.exit_code == 0, err
    first, listing, mode = json.loads(out)
    assert listing == []
    assert mode == 0o700
    assert not Path(first).exists()

    again = tmp_path / "again"
    again.mkdir()
    second = json.loads(_run(again, spec)[1])[0]
    assert second != first
    assert not Path(second).exists()


def test_temp_root_places_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir()
    spec = _spec(tmp_path, "import os; print(os.getcwd())")
    run_command(
        spec,
        {},
        stdout_path=tmp_path / "o",
        stderr_path=tmp_path / "e",
        base_env={},
        temp_root=root,
    )
    assert Path((tmp_path / "o").read_text().strip()).parent == root
    assert list(root.iterdir()) == []


def test_existing_output_files_are_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "stdout.bin").write_bytes(b"evidence")
    with pytest.raises(FileExistsError):
        _run(tmp_path, _spec(tmp_path, "print('x')"))
    assert (tmp_path / "stdout.bin").read_bytes() == b"evidence"


# --- resource limits ----------------------------------------------------------------------


def test_rlimits_are_applied_in_the_child(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        """
        import json, resource as r
        names = ["RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_CORE"]
        print(json.dumps({n: r.getrlimit(getattr(r, n)) for n in names}))
        """,
        limits=CommandLimits(
            cpu_seconds=7, memory_bytes=512 * MiB, file_size_bytes=12345, open_files=32
        ),
    )
    result, out, err = _run(tmp_path, spec)
    assert result.exit_code == 0, err
    assert json.loads(out) == {
        "RLIMIT_CPU": [7, 8],
        "RLIMIT_AS": [512 * MiB, 512 * MiB],
        "RLIMIT_FSIZE": [12345, 12345],
        "RLIMIT_NOFILE": [32, 32],
        "RLIMIT_CORE": [0, 0],
    }


def test_the_memory_limit_stops_an_allocation(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        """
        try:
            block = bytearray(1024 * 1024 * 1024)
        except MemoryError:
            print("MemoryError")
            raise SystemExit(3)
        """,
        limits=replace(LIMITS, memory_bytes=256 * MiB),
    )
    result, out, _ = _run(tmp_path, spec)
    assert (result.exit_code, out) == (3, b"MemoryError\n")


def test_the_file_size_limit_stops_a_write(tmp_path: Path) -> None:
    # Python ignores SIGXFSZ, so the write fails with EFBIG instead of the process dying.
    spec = _spec(
        tmp_path,
        """
        import json, os
        fd = os.open("big", os.O_WRONLY | os.O_CREAT)
        written = os.write(fd, b"x" * 4000)
        try:
            os.write(fd, b"x")
            code = 0
        except OSError as exc:
            code = exc.errno
        print(json.dumps([written, code, os.fstat(fd).st_size]))
        """,
        limits=replace(LIMITS, file_size_bytes=1000),
    )
    result, out, err = _run(tmp_path, spec)
    assert result.exit_code == 0, err
    assert json.loads(out) == [1000, errno.EFBIG, 1000]


# --- output: streamed, digested, capped ---------------------------------------------------


def test_both_streams_are_captured_with_exact_counts_and_digests(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        """
        import sys
        for i in range(300):
            sys.stdout.buffer.write(b"o" * 1000)
            sys.stderr.buffer.write(b"e" * 7)
        """,
    )
    result, out, err = _run(tmp_path, spec)
    assert result.exit_code == 0
    assert result.killed_reason is None
    assert not result.timed_out
    assert result.stdout == CapturedOutput(bytes=300_000, digest=digest_bytes(out), truncated=False)
    assert result.stderr == CapturedOutput(bytes=2100, digest=digest_bytes(err), truncated=False)
    assert 0 <= result.duration_ms < 10_000


def test_output_exactly_at_the_cap_is_not_truncated(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path, "import sys; sys.stdout.buffer.write(b'x' * 5000)", stdout_cap_bytes=5000
    )
    result, out, _ = _run(tmp_path, spec)
    assert (result.exit_code, result.killed_reason, len(out)) == (0, None, 5000)
    assert not result.stdout.truncated


FLOOD = """
    import subprocess, sys
    child = subprocess.Popen({sleeper})
    open(sys.argv[1], "w").write(str(child.pid))
    while True:
        sys.{stream}.buffer.write(b"x" * 65536)
    """


@pytest.mark.usefixtures("subreaper")
@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_an_output_flood_is_cut_at_the_cap_and_kills_the_group(tmp_path: Path, stream: str) -> None:
    pid_file = tmp_path / "grandchild.pid"
    spec = _spec(
        tmp_path,
        FLOOD.format(sleeper=SLEEPER, stream=stream),
        str(pid_file),
        **{f"{stream}_cap_bytes": 100_000},
    )
    result, out, err = _run(tmp_path, spec)
    flooded, other = (
        (result.stdout, result.stderr)
        if stream == "stdout"
        else (
            result.stderr,
            result.stdout,
        )
    )
    data = out if stream == "stdout" else err
    assert result.killed_reason == "output_cap"
    assert result.signal == signal.SIGKILL
    assert flooded == CapturedOutput(bytes=100_000, digest=digest_bytes(data), truncated=True)
    assert len(data) == 100_000
    assert not other.truncated
    assert verdict_for(result, {"0": "ran_clean"}) == CommandVerdict(
        Verdict.error_running,
        f"output flood: {stream} passed the byte cap; its process group was killed",
    )
    _reap_killed(int(pid_file.read_text()))


# --- the deadline kills the whole process group -------------------------------------------


@pytest.mark.usefixtures("subreaper")
def test_timeout_kills_a_grandchild_that_holds_the_pipes(tmp_path: Path) -> None:
    # The command itself exits at once; its grandchild keeps stdout open and sleeps.
    pid_file = tmp_path / "grandchild.pid"
    spec = _spec(
        tmp_path,
        f"""
        import subprocess, sys
        child = subprocess.Popen({SLEEPER})
        open(sys.argv[1], "w").write(str(child.pid))
        print("started", flush=True)
        """,
        str(pid_file),
        timeout_ms=FAST_TIMEOUT_MS,
    )
    result, out, _ = _run(tmp_path, spec)
    assert result.timed_out
    assert result.killed_reason == "timeout"
    assert result.exit_code == 0  # the command exited; its output never ended
    assert out == b"started\n"
    assert FAST_TIMEOUT_MS <= result.duration_ms < FAST_TIMEOUT_MS + 3000
    assert verdict_for(result, {"0": "ran_clean"}).verdict is Verdict.timed_out
    _reap_killed(int(pid_file.read_text()))


@pytest.mark.usefixtures("subreaper")
def test_timeout_kills_the_command_and_its_grandchild(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    spec = _spec(
        tmp_path,
        f"""
        import subprocess, sys, time
        child = subprocess.Popen({SLEEPER})
        open(sys.argv[1], "w").write(str(child.pid))
        time.sleep(60)
        """,
        str(pid_file),
        timeout_ms=FAST_TIMEOUT_MS,
    )
    result, _, _ = _run(tmp_path, spec)
    assert (result.killed_reason, result.exit_code, result.signal) == (
        "timeout",
        None,
        signal.SIGKILL,
    )
    _reap_killed(int(pid_file.read_text()))


def test_a_command_that_closes_its_output_still_meets_the_deadline(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        "import os, time; os.close(1); os.close(2); time.sleep(60)",
        timeout_ms=FAST_TIMEOUT_MS,
    )
    result, _, _ = _run(tmp_path, spec)
    assert result.timed_out
    assert result.signal == signal.SIGKILL


@pytest.mark.usefixtures("subreaper")
def test_no_process_outlives_its_call(tmp_path: Path) -> None:
    # A background grandchild with its own stdio: the command ends cleanly, the sweep kills it.
    pid_file = tmp_path / "grandchild.pid"
    spec = _spec(
        tmp_path,
        f"""
        import subprocess, sys
        child = subprocess.Popen({SLEEPER}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open(sys.argv[1], "w").write(str(child.pid))
        """,
        str(pid_file),
    )
    result, _, _ = _run(tmp_path, spec)
    assert (result.exit_code, result.killed_reason) == (0, None)
    _reap_killed(int(pid_file.read_text()))


# --- exit codes to verdicts ---------------------------------------------------------------


def _result(
    *,
    exit_code: int | None = 0,
    sig: int | None = None,
    killed: Any = None,
    stderr_truncated: bool = False,
) -> CommandResult:
    empty = CapturedOutput(bytes=0, digest=digest_bytes(b""), truncated=False)
    return CommandResult(
        argv=("/bin/true",),
        exit_code=exit_code,
        signal=sig,
        killed_reason=killed,
        stdout=empty,
        stderr=replace(empty, truncated=stderr_truncated),
        duration_ms=1,
    )


SEMANTICS = {"0": "ran_clean", "1": "ran_with_drift", "2": "error_running", "9": "blocked"}


@pytest.mark.parametrize(
    ("result", "verdict", "reason"),
    [
        pytest.param(_result(), Verdict.ran_clean, "exit code 0 maps to ran_clean", id="zero"),
        pytest.param(
            _result(exit_code=1), Verdict.ran_with_drift, "maps to ran_with_drift", id="drift"
        ),
        pytest.param(
            _result(exit_code=2), Verdict.error_running, "maps to error_running", id="error"
        ),
        pytest.param(_result(exit_code=3), Verdict.error_running, "not mapped", id="unmapped"),
        pytest.param(
            _result(exit_code=9), Verdict.error_running, "not mapped", id="not-an-exit-verdict"
        ),
        pytest.param(
            _result(exit_code=None, sig=signal.SIGXCPU),
            Verdict.error_running,
            "ended by signal SIGXCPU",
            id="cpu-limit-signal",
        ),
        pytest.param(
            _result(killed="timeout"), Verdict.timed_out, "contract timeout", id="timeout-wins"
        ),
        pytest.param(
            _result(exit_code=None, sig=signal.SIGKILL, killed="output_cap", stderr_truncated=True),
            Verdict.error_running,
            "output flood: stderr",
            id="flood",
        ),
    ],
)
def test_verdicts_follow_the_exit_semantics(
    result: CommandResult, verdict: Verdict, reason: str
) -> None:
    decided = verdict_for(result, SEMANTICS)
    assert decided.verdict is verdict
    assert reason in decided.reason


def test_empty_exit_semantics_means_every_exit_is_an_error() -> None:
    assert verdict_for(_result(), {}).verdict is Verdict.error_running


def test_a_real_exit_code_maps_through_the_semantics(tmp_path: Path) -> None:
    result, _, _ = _run(tmp_path, _spec(tmp_path, "raise SystemExit(1)"))
    assert result.exit_code == 1
    assert verdict_for(result, {"0": "ran_clean", "1": "ran_with_drift"}) == CommandVerdict(
        Verdict.ran_with_drift, "exit code 1 maps to ran_with_drift"
    )
