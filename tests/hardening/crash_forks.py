"""A fork server for crash tests: each ``govex`` run is a fresh process, without 3 s of imports.

Starting ``govex`` costs about 3 s of imports on the test machine, most of the crash sweep's
time if each crash case paid it. :class:`ForkServer` starts one Python process that imports
govex once and then, per request, forks a child that is a ``govex`` process in every way
that matters here: its own pid, environment (``GOVEX_*`` of the world, nothing inherited),
files, database connections and threads, running the console script's code
(``service.cli.app`` with the given argv). The child arms the crash point it is given
(:func:`ledger.faults.arm`, what a process armed by ``GOVEX_TEST_CRASH_AT`` at start does)
and dies of its own ``SIGKILL`` there; or it serves (``govex serve``) until the test kills it
by its pid. Nothing in the server is shared with the child but the imported code: the
server opens no database, file or thread before it forks.

Run as a script it is the server: one JSON request per line on stdin, one JSON answer per
line on stdout (``spawn`` -> ``{"pid"}``, ``wait`` -> ``{"returncode"}``, negative for a
signal as in :mod:`subprocess`).
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

REPO = Path(__file__).resolve().parents[2]
# What a govex run imports: loaded once in the server, before any fork.
_PRELOAD = (
    "service.cli.app",
    "service.cli.ledger",
    "service.cli.progress_line",
    "service.calls",
    "service.runtime",
    "service.api_models",
    "service.app",
    "service.logging",
    "ledger.checkpointer",
    "uvicorn",
    "uvicorn.main",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "uvicorn.loops.auto",
)


@dataclass
class ForkServer:
    """The server process and the children it forked (killed by pid at close)."""

    process: subprocess.Popen[str]
    children: set[int] = field(default_factory=set)

    @classmethod
    def start(cls) -> Self:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOVEX_")}
        env["PYTHONPATH"] = str(REPO)
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        server = cls(process)
        server._ask({"op": "ping"})
        return server

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None
        assert stdout is not None
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server ended (exit {self.process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def spawn(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        crash_at: str | None = None,
        trace: Path | None = None,
        output: Path,
    ) -> int:
        """Fork a ``govex <argv>`` process; its stdout and stderr go to ``output`` (+ .err)."""
        answer = self._ask(
            {
                "op": "spawn",
                "argv": argv,
                "env": env,
                "cwd": str(cwd),
                "crash_at": crash_at,
                "trace": None if trace is None else str(trace),
                "stdout": str(output),
                "stderr": f"{output}.err",
            }
        )
        pid = int(answer["pid"])
        self.children.add(pid)
        return pid

    def wait(self, pid: int) -> int:
        """Wait for child ``pid`` to end; its return code (``-9`` when SIGKILL ended it)."""
        answer = self._ask({"op": "wait", "pid": pid})
        self.children.discard(pid)
        return int(answer["returncode"])

    def run(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        crash_at: str | None = None,
        trace: Path | None = None,
        output: Path,
    ) -> int:
        """:meth:`spawn`, then :meth:`wait`."""
        pid = self.spawn(argv, env=env, cwd=cwd, crash_at=crash_at, trace=trace, output=output)
        return self.wait(pid)

    def close(self) -> None:
        """Kill the children still running (by pid), then end the server."""
        for pid in sorted(self.children):
            try:
                os.kill(pid, 9)
                self.wait(pid)
            except (ProcessLookupError, RuntimeError):
                pass
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()


_shared: list[ForkServer] = []


def shared_fork_server() -> ForkServer:
    """One fork server for the whole test session (closed when the interpreter exits)."""
    if not _shared or _shared[0].process.poll() is not None:
        server = ForkServer.start()
        atexit.register(server.close)
        _shared[:] = [server]
    return _shared[0]


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the govex process asked for; never returns."""
    code = 70
    try:
        os.setpgid(0, 0)  # its own group: the test's terminal signals never reach it
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        from ledger import faults  # noqa: PLC0415 - preloaded

        faults.arm(request["crash_at"], request["trace"])
        from service.cli import app  # noqa: PLC0415 - preloaded

        try:
            app(args=request["argv"], prog_name="govex")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on the child's stderr, then exit 70
        import traceback  # noqa: PLC0415

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _serve(requests: IO[str], answers: IO[str]) -> None:
    """The server loop: preload govex, then fork or wait per request."""
    import importlib  # noqa: PLC0415

    for name in _PRELOAD:
        importlib.import_module(name)
    for line in requests:
        request = json.loads(line)
        op = request["op"]
        if op == "spawn":
            answers.flush()
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer: dict[str, Any] = {"pid": pid}
        elif op == "wait":
            _, status = os.waitpid(request["pid"], 0)
            answer = {"returncode": os.waitstatus_to_exitcode(status)}
        else:
            answer = {"ok": True}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    _serve(sys.stdin, sys.stdout)
