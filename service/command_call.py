"""A command entry's run inside a call: the runner's output into the packet, and its outcome (I/O).

:func:`run_into_packet` runs the sealed entry with :func:`service.run_command.run_command`,
its stdout and stderr written to a private folder under the packet's staging folder (so a
crash leaves nothing that start-up does not clean), then streams both files into the packet
as ``data/stdout.txt`` and ``data/stderr.txt`` (never whole in memory) and checks that what
went into the packet is what the runner captured. The verdict follows
:func:`service.run_command.verdict_for` and the entry's exit codes.

Every way a started command ends is a :class:`CommandRun`, not an exception: a refusal by
the runner (the executable changed or vanished since the check before ``call.started``) is
``blocked``, a command that could not start or whose output could not be kept is
``error_running``. ``service.calls`` records it in ``call.finished`` and the packet.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.command_spec import spec_for_entry
from service.errors import CommandFailed, CommandRefused
from service.packets.errors import PacketBuildError
from service.run_command import CapturedOutput, CommandResult, run_command, verdict_for
from service.verdicts import Verdict

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from catalog.model import CommandEntry, JsonScalar
    from service.cancel import CancelToken
    from service.packets.build import PacketBuilder
    from service.packets.tables import BlobWritten

STDOUT_PATH = "data/stdout.txt"
STDERR_PATH = "data/stderr.txt"
OUTPUT_MEDIA_TYPE = "text/plain"  # as the command wrote it: no charset is promised
_READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class CommandOutcome:
    """How a started command ended, as ``call.finished`` and packet.json record it."""

    result: CommandResult
    reason: str

    @property
    def complete(self) -> bool:
        """False when its output may be cut: killed (deadline, flood) or ended by a signal."""
        return self.result.killed_reason is None and self.result.signal is None

    @property
    def cut_by(self) -> str | None:
        """What cut the output; ``None`` when the command ended on its own.

        ``timeout``, ``cancelled``, ``max_bytes`` (stdout passed its cap), ``max_stderr_bytes``,
        ``signal``.
        """
        result = self.result
        if result.killed_reason in {"timeout", "cancelled"}:
            return result.killed_reason
        if result.killed_reason == "output_cap":
            return "max_bytes" if result.stdout.truncated else "max_stderr_bytes"
        return "signal" if result.signal is not None else None

    def record(self) -> dict[str, Any]:
        """The ``command`` object of ``call.finished`` and packet.json's ``contract.outcome``.

        ``{exit_code, signal, killed_reason, reason, stdout, stderr}``, each stream as
        ``{bytes, digest, truncated}``. A body field beyond FORMATS section 3's minimum (like
        ``complete`` and ``error``), so the ledger's body models do not name it.
        """
        result = self.result
        return {
            "exit_code": result.exit_code,
            "signal": result.signal,
            "killed_reason": result.killed_reason,
            "reason": self.reason,
            "stdout": _stream(result.stdout),
            "stderr": _stream(result.stderr),
        }


def _stream(captured: CapturedOutput) -> dict[str, Any]:
    return {
        "bytes": captured.bytes,
        "digest": captured.digest.model_dump(),
        "truncated": captured.truncated,
    }


@dataclass(frozen=True)
class CommandRun:
    """A command's run: its verdict, and once it started, its outcome and stdout file."""

    verdict: Verdict
    error: str | None = None
    outcome: CommandOutcome | None = None
    stdout: BlobWritten | None = None


def run_into_packet(
    entry: CommandEntry,
    inputs: Mapping[str, JsonScalar],
    builder: PacketBuilder,
    *,
    base_env: Mapping[str, str],
    cancel: CancelToken | None = None,
) -> CommandRun:
    """Run ``entry`` with ``inputs``; its output becomes the packet's two data files.

    ``base_env`` holds the values of the allowlisted variables. ``error`` is set for any
    verdict but ``ran_clean`` and ``ran_with_drift``. Errors other than the runner's own
    (a ledger or disk failure of the caller) propagate.
    """
    with tempfile.TemporaryDirectory(prefix="command-", dir=builder.staging) as folder:
        stdout_path, stderr_path = Path(folder, "stdout"), Path(folder, "stderr")
        try:
            result = run_command(
                spec_for_entry(entry),
                inputs,
                stdout_path=stdout_path,
                stderr_path=stderr_path,
                base_env=base_env,
                cancel=cancel,
            )
        except CommandRefused as exc:
            return CommandRun(Verdict.blocked, error=exc.message)
        except CommandFailed as exc:
            return CommandRun(Verdict.error_running, error=exc.message)
        decided = verdict_for(result, entry.exit_codes)
        outcome = CommandOutcome(result, decided.reason)
        try:
            stdout = builder.write_blob(
                path=STDOUT_PATH,
                data=_blocks(stdout_path),
                media_type=OUTPUT_MEDIA_TYPE,
                max_bytes=None,
            )
            stderr = builder.write_blob(
                path=STDERR_PATH,
                data=_blocks(stderr_path),
                media_type=OUTPUT_MEDIA_TYPE,
                max_bytes=None,
            )
        except PacketBuildError as exc:
            return CommandRun(Verdict.error_running, error=exc.message, outcome=outcome)
    for name, written, captured in (
        ("stdout", stdout, result.stdout),
        ("stderr", stderr, result.stderr),
    ):
        if written.record.digest != captured.digest or written.record.bytes != captured.bytes:
            error = f"the captured {name} changed before it was put into the packet"
            return CommandRun(Verdict.error_running, error=error, outcome=outcome)
    clean = decided.verdict in {Verdict.ran_clean, Verdict.ran_with_drift}
    return CommandRun(
        decided.verdict,
        error=None if clean else decided.reason,
        outcome=outcome,
        stdout=stdout,
    )


def _blocks(path: Path) -> Iterator[bytes]:
    """Internal: a file's bytes in blocks, so no output is ever held whole in memory."""
    with path.open("rb") as file:
        while block := file.read(_READ_BLOCK):
            yield block
