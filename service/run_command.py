"""Run one catalog command: a pinned executable, whole-argument parameters, bounded.

Layers, each on its own (STYLE G8); a command never gets a shell:

- argv is built from the template by :func:`service.command_spec.build_argv`: each
  placeholder becomes exactly one argument, never part of a string; a value that looks like
  an option (leading ``-``) is refused unless a literal ``--`` ends the options before it;
- the executable is opened once, its SHA-256 compared with the pin, and *that open file* is
  executed (``/proc/self/fd/N``): a path swapped after the check is not what runs (argv[0]
  stays the catalog path, but a ``#!`` script sees ``/proc/self/fd/N`` as its own file name);
- the environment holds only the allowlisted names, valued from the ``base_env`` the caller
  passes (never this process's own environment);
- the working directory is a fresh private temporary folder, removed afterwards;
- rlimits set in the child before exec: CPU seconds, address space, file size, open files,
  and no core files (a core of a command may hold what it read, and fills the disk);
- stdout and stderr stream to files, digested as they go, never held in memory; passing a byte
  cap stops the writing and kills the process group ("output flood");
- the command runs in its own session; at its wall-clock deadline the whole process group is
  killed (grandchildren that keep the pipes open included), and when the command ends, any
  member of its group still alive is killed too: no process outlives its call.

Residual gaps, not closed here: a descendant that calls ``setsid`` leaves the group and escapes
the kill (a cgroup would hold it); ``RLIMIT_FSIZE`` bounds each file, not the total written
into the folder; rewriting the executable *in place* between the check and the exec is not
detected (keep executables unwritable by anyone untrusted); the command runs as the service's
user, with its network. Killed descendants are reaped by the nearest subreaper or PID 1, so a
container needs an init that reaps.

Linux only: ``/proc/self/fd``, ``waitid(WNOWAIT)`` and these rlimits.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, cast

from catalog.digest import DigestSet, StreamingDigest
from service.cancel import CancelToken
from service.command_spec import ArgValue, CommandLimits, CommandSpec, build_argv
from service.errors import (
    CommandFailed,
    CommandRefused,
    ExecutableMismatch,
    ExecutableUnavailable,
)
from service.verdicts import Verdict

KilledReason = Literal["timeout", "output_cap", "cancelled"]
_READ_CHUNK = 64 * 1024
_HASH_CHUNK = 1024 * 1024
_EXIT_POLL_S = 0.01
_EXIT_VERDICTS = frozenset({Verdict.ran_clean, Verdict.ran_with_drift, Verdict.error_running})


@dataclass(frozen=True, slots=True, kw_only=True)
class CapturedOutput:
    """One output stream as written to its file: ``bytes`` and ``digest`` cover that file."""

    bytes: int
    digest: DigestSet
    truncated: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """How a command ended. ``exit_code`` or ``signal`` (the other is ``None``).

    ``killed_reason`` says why this runner killed the process group: ``"timeout"`` (the
    deadline passed before the command ended and closed its output) or ``"output_cap"`` (a
    stream passed its cap; that stream is ``truncated``). A command can exit on its own and
    still time out, when a descendant held the pipes open past the deadline.
    """

    argv: tuple[str, ...]
    exit_code: int | None
    signal: int | None
    killed_reason: KilledReason | None
    stdout: CapturedOutput
    stderr: CapturedOutput
    duration_ms: int

    @property
    def timed_out(self) -> bool:
        return self.killed_reason == "timeout"


def run_command(
    spec: CommandSpec,
    inputs: Mapping[str, ArgValue | None],
    *,
    stdout_path: Path,
    stderr_path: Path,
    base_env: Mapping[str, str],
    temp_root: Path | None = None,
    cancel: CancelToken | None = None,
) -> CommandResult:
    """Run the command once, within every layer in the module docstring.

    Cancelling ``cancel`` kills the process group at once (``killed_reason`` ``cancelled``).

    ``stdout_path`` and ``stderr_path`` must not exist (they are created exclusively, so
    nothing is overwritten); they hold the captured streams, cut at their caps. ``base_env``
    is the only source of environment values. The working directory is made under
    ``temp_root`` (the system default when ``None``) and removed before returning.

    Raises, before anything runs: :class:`CommandRefused` (argv refusal, see
    :func:`build_argv`; executable missing, not a regular file or not executable; NUL in an
    allowlisted value) and :class:`ExecutableMismatch`. Raises :class:`CommandFailed` when
    the process cannot start or its output cannot be written (the process group is killed
    first). A command that starts always returns a result, whatever its exit.
    """
    argv = build_argv(spec, inputs)
    env = _reduced_env(spec, base_env)
    with ExitStack() as stack:
        exe_fd, is_script = stack.enter_context(_verified_executable(spec))
        workdir = stack.enter_context(_fresh_workdir(temp_root))
        out = stack.enter_context(_Sink.create(stdout_path, spec.stdout_cap_bytes))
        err = stack.enter_context(_Sink.create(stderr_path, spec.stderr_cap_bytes))
        started = time.monotonic()
        with _start(argv, env, workdir, spec.limits, exe_fd, keep_fd=is_script) as proc:
            token = cancel if cancel is not None else CancelToken()
            unregister = token.on_cancel(lambda: _kill_group(proc.pid))
            try:
                killed = _pump(proc, out, err, started + spec.timeout_ms / 1000)
            finally:
                unregister()
                _kill_group(proc.pid)
                proc.wait()
            if token.is_cancelled():
                killed = "cancelled"
        duration_ms = int((time.monotonic() - started) * 1000)
    code = proc.returncode
    return CommandResult(
        argv=tuple(argv),
        exit_code=code if code >= 0 else None,
        signal=-code if code < 0 else None,
        killed_reason=killed,
        stdout=out.captured(),
        stderr=err.captured(),
        duration_ms=duration_ms,
    )


def check_executable(spec: CommandSpec) -> None:
    """Check the executable as :func:`run_command` will, without running anything (I/O).

    For a refusal before a call starts; :func:`run_command` checks again on the file it
    executes. Raises :class:`ExecutableUnavailable` (missing, not a regular file, not
    executable) or :class:`ExecutableMismatch`.
    """
    with _verified_executable(spec):
        pass


def _reduced_env(spec: CommandSpec, base_env: Mapping[str, str]) -> dict[str, str]:
    env = {name: base_env[name] for name in spec.env_allowlist if name in base_env}
    for name, value in env.items():
        if not isinstance(value, str):
            raise CommandRefused(f"environment variable {name}: not a string", where=name)
        if "\x00" in value:
            raise CommandRefused(f"environment variable {name}: NUL character in value", where=name)
    return env


@contextmanager
def _verified_executable(spec: CommandSpec) -> Iterator[tuple[int, bool]]:
    """Internal: open the executable, check it, yield ``(fd, is_script)``; close it after.

    The digest is computed from the descriptor that is later executed, so the checked bytes
    and the run file are the same inode. ``O_NONBLOCK`` keeps a FIFO from blocking the open.
    """
    path = spec.executable
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise ExecutableUnavailable(
            f"executable {path} cannot be opened: {exc.strerror}", where=path
        ) from exc
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ExecutableUnavailable(f"executable {path} is not a regular file", where=path)
        if not mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
            raise ExecutableUnavailable(f"executable {path} has no execute permission", where=path)
        actual = hashlib.sha256()
        offset = 0
        while chunk := os.pread(fd, _HASH_CHUNK, offset):
            actual.update(chunk)
            offset += len(chunk)
        if not hmac.compare_digest(actual.hexdigest(), spec.executable_sha256):
            raise ExecutableMismatch(
                path=path, expected=spec.executable_sha256, actual=actual.hexdigest()
            )
        yield fd, os.pread(fd, 2, 0) == b"#!"
    finally:
        os.close(fd)


@contextmanager
def _fresh_workdir(temp_root: Path | None) -> Iterator[Path]:
    """Internal: a new 0700 folder; removed afterwards, whatever modes the command left."""
    path = Path(tempfile.mkdtemp(prefix="govex-cmd-", dir=temp_root))
    try:
        yield path
    finally:
        try:
            _make_removable(path)
            shutil.rmtree(path)
        except OSError as exc:
            raise CommandFailed(
                f"cannot remove the command's working directory {path}: {exc.strerror}",
                where=str(path),
            ) from exc


def _make_removable(root: Path) -> None:
    """Internal: give every folder back owner rwx, top-down, so ``rmtree`` can empty it."""
    root.chmod(stat.S_IRWXU)
    for parent, dirs, _files in os.walk(root):
        for name in dirs:
            sub = Path(parent, name)
            if not sub.is_symlink():  # never follow a link the command left out of the folder
                sub.chmod(stat.S_IRWXU)


@dataclass
class _Sink:
    """Internal: one stream into its file up to ``cap`` bytes, digested as written."""

    file: IO[bytes]
    path: Path
    cap: int
    digest: StreamingDigest = field(default_factory=StreamingDigest)
    truncated: bool = False

    @classmethod
    @contextmanager
    def create(cls, path: Path, cap: int) -> Iterator[_Sink]:
        with path.open("xb") as file:
            yield cls(file, path, cap)

    def take(self, chunk: bytes) -> bool:
        """Write what fits under the cap; false once the cap is passed."""
        kept = chunk[: self.cap - self.digest.bytes]
        if kept:
            try:
                self.file.write(kept)
            except OSError as exc:
                raise CommandFailed(
                    f"cannot write command output to {self.path}: {exc.strerror}",
                    where=str(self.path),
                ) from exc
            self.digest.update(kept)
        if len(kept) < len(chunk):
            self.truncated = True
        return not self.truncated

    def captured(self) -> CapturedOutput:
        return CapturedOutput(
            bytes=self.digest.bytes, digest=self.digest.finish(), truncated=self.truncated
        )


def _start(
    argv: list[str],
    env: dict[str, str],
    workdir: Path,
    limits: CommandLimits,
    exe_fd: int,
    *,
    keep_fd: bool,
) -> subprocess.Popen[bytes]:
    """Internal: start the verified file in a new session, limited, with piped output."""
    try:
        return subprocess.Popen(  # noqa: S603 - no shell; argv items are whole, checked values
            argv,
            executable=f"/proc/self/fd/{exe_fd}",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            cwd=workdir,
            env=env,
            close_fds=True,
            pass_fds=(exe_fd,),
            start_new_session=True,
            preexec_fn=_child_setup(limits, exe_fd, keep_fd=keep_fd),  # noqa: PLW1509 - see _child_setup
        )
    except (OSError, subprocess.SubprocessError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CommandFailed(f"cannot start {argv[0]}: {reason}", where=argv[0]) from exc


def _child_setup(limits: CommandLimits, exe_fd: int, *, keep_fd: bool) -> Callable[[], None]:
    """Internal: the ``preexec_fn`` that runs in the child between fork and exec.

    CPython warns that ``preexec_fn`` is unsafe with threads: the child of a threaded process
    may deadlock on a lock another thread held at fork. This one only calls C-level
    ``setrlimit`` and ``fcntl`` on values computed here, in the parent: it imports nothing,
    logs nothing and takes no Python-level lock (the import lock is handled by CPython around
    the fork, glibc's malloc is fork-safe). The alternative, a Python re-exec wrapper, costs
    an interpreter start per call and rewrites the environment (PEP 538 sets ``LC_CTYPE``).
    Python 3.11 offers no rlimit option on ``Popen`` or ``posix_spawn``.

    The executed descriptor is marked close-on-exec for a binary (the kernel has it open);
    a ``#!`` script keeps it, since its interpreter opens ``/proc/self/fd/N`` after the exec.
    ``RLIMIT_AS`` is set last: once lowered, the forked copy of this process may not allocate.
    """
    pairs = [
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
        (resource.RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
    ]
    settings = [(which, _under_hard(which, soft, hard)) for which, soft, hard in pairs]

    def setup() -> None:
        if not keep_fd:
            os.set_inheritable(exe_fd, False)  # noqa: FBT003 - os API, positional only
        for which, value in settings:
            resource.setrlimit(which, value)

    return setup


def _under_hard(which: int, soft: int, hard: int) -> tuple[int, int]:
    """Internal: never above the current hard limit (the stricter limit holds)."""
    current = resource.getrlimit(which)[1]
    if current == resource.RLIM_INFINITY:
        return soft, hard
    return min(soft, current), min(hard, current)


def _pump(
    proc: subprocess.Popen[bytes], out: _Sink, err: _Sink, deadline: float
) -> KilledReason | None:
    """Internal: copy both pipes into their sinks until the command is done, or kill reason.

    Done means both pipes at end of file *and* the leader exited (checked without reaping it,
    so its pid, which is the group id, cannot be reused before the group is killed).
    """
    sinks = {
        cast("IO[bytes]", proc.stdout).fileno(): out,
        cast("IO[bytes]", proc.stderr).fileno(): err,
    }
    with selectors.DefaultSelector() as selector:
        for fd in sinks:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map() or not _exited(proc.pid):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            if not selector.get_map():
                time.sleep(min(remaining, _EXIT_POLL_S))
                continue
            for key, _events in selector.select(remaining):
                fd = key.fd
                chunk = os.read(fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(fd)
                elif not sinks[fd].take(chunk):
                    return "output_cap"
    return None


def _exited(pid: int) -> bool:
    """Internal: has the child exited? Leaves it unreaped (``WNOWAIT``)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int) -> None:
    """Internal: SIGKILL every process of the group (the leader is not reaped yet)."""
    with suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


@dataclass(frozen=True, slots=True)
class CommandVerdict:
    """A verdict (FORMATS section 6) and why."""

    verdict: Verdict
    reason: str


def verdict_for(result: CommandResult, exit_codes: Mapping[str, str]) -> CommandVerdict:
    """The verdict of a finished command, by these rules in order.

    ``exit_codes`` is the entry's exit semantics (``CommandEntry.exit_codes``): decimal exit
    code -> ``ran_clean`` | ``ran_with_drift`` | ``error_running``.

    1. killed at the deadline -> ``timed_out``; killed on cancel -> ``error_running``;
    2. killed for an output flood -> ``error_running`` (the output is cut, the command did not
       finish within its contract; no verdict of its own exists in FORMATS section 6);
    3. ended by a signal (``SIGXCPU`` at the CPU limit, ...) -> ``error_running``;
    4. an exit code the semantics map -> that verdict;
    5. anything else (an unmapped code, a name that is not an exit verdict) -> ``error_running``.
    """
    if result.killed_reason == "timeout":
        return CommandVerdict(
            Verdict.timed_out, "stopped at the contract timeout; its process group was killed"
        )
    if result.killed_reason == "cancelled":
        return CommandVerdict(
            Verdict.error_running, "cancelled while running; its process group was killed"
        )
    if result.killed_reason == "output_cap":
        streams = [
            n for n, c in (("stdout", result.stdout), ("stderr", result.stderr)) if c.truncated
        ]
        return CommandVerdict(
            Verdict.error_running,
            f"output flood: {' and '.join(streams)} passed the byte cap; "
            "its process group was killed",
        )
    if result.signal is not None:
        try:
            name = signal.Signals(result.signal).name
        except ValueError:
            name = str(result.signal)
        return CommandVerdict(Verdict.error_running, f"ended by signal {name}")
    mapped = exit_codes.get(str(result.exit_code))
    if mapped in _EXIT_VERDICTS:
        return CommandVerdict(Verdict(mapped), f"exit code {result.exit_code} maps to {mapped}")
    return CommandVerdict(
        Verdict.error_running, f"exit code {result.exit_code} is not mapped to a verdict"
    )
