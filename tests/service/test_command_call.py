"""A command entry run into a packet: output streamed into the bag, every ending a verdict."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.model import CommandEntry, CommandLimits, ParamSpec, ParamType
from service.command_call import STDERR_PATH, STDOUT_PATH, run_into_packet
from service.command_spec import spec_for_entry
from service.errors import CommandRefused, ExecutableMismatch
from service.packets import build as packet_build
from service.packets.build import PacketBuilder
from service.run_command import check_executable
from service.verdicts import Verdict

PACKET_ID = "01JCOMMANDCALLTEST000000000"


def _script(path: Path, body: str, *, interpreter: str = sys.executable) -> Path:
    path.write_text(f"#!{interpreter} -I\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


def _entry(executable: Path, **changes: object) -> CommandEntry:
    entry = CommandEntry(
        id="cmd.test",
        title="Test",
        argv=(str(executable), "--", "{word}"),
        executable_sha256=hashlib.sha256(executable.read_bytes()).hexdigest(),
        params={"word": ParamSpec(type=ParamType.string)},
        env=("CMD_VISIBLE",),
        max_stderr_bytes=100,
        limits=CommandLimits(cpu_seconds=5, open_files=32),
        timeout_ms=10_000,
    )
    return entry.model_copy(update=changes)


@pytest.fixture
def builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PacketBuilder]:
    # Every payload byte goes to the bag folder (none held in memory), where tests read it.
    monkeypatch.setattr(packet_build, "SPOOL_BYTES", 0)
    with PacketBuilder(tmp_path / "packets", PACKET_ID) as packet:
        yield packet


def _leftovers(builder: PacketBuilder) -> list[str]:
    """What the run left in the staging folder besides the packet's own bag and its lock."""
    own = {PACKET_ID, f"{PACKET_ID}.lock"}
    return sorted(p.name for p in builder.staging.iterdir() if p.name not in own)


def test_spec_for_entry_carries_every_setting(tmp_path: Path) -> None:
    entry = _entry(_script(tmp_path / "tool", "print(1)\n"), max_bytes=10)
    spec = spec_for_entry(entry)
    assert (spec.executable, spec.args) == (entry.argv[0], ("--", "{word}"))
    assert spec.executable_sha256 == entry.executable_sha256
    assert spec.env_allowlist == ("CMD_VISIBLE",)
    assert (spec.stdout_cap_bytes, spec.stderr_cap_bytes, spec.timeout_ms) == (10, 100, 10_000)
    assert (spec.limits.cpu_seconds, spec.limits.open_files) == (5, 32)
    assert spec.limits.memory_bytes == entry.limits.memory_bytes


def test_check_executable_refuses_a_changed_or_missing_file(tmp_path: Path) -> None:
    tool = _script(tmp_path / "tool", "print(1)\n")
    spec = spec_for_entry(_entry(tool))
    check_executable(spec)  # the pinned bytes: nothing to say
    tool.write_text(tool.read_text() + "# edited\n")
    with pytest.raises(ExecutableMismatch) as info:
        check_executable(spec)
    assert info.value.path == str(tool)
    assert info.value.actual == hashlib.sha256(tool.read_bytes()).hexdigest()
    tool.unlink()
    with pytest.raises(CommandRefused, match="cannot be opened"):
        check_executable(spec)


def test_stdout_and_stderr_become_the_packets_data_files(
    tmp_path: Path, builder: PacketBuilder
) -> None:
    tool = _script(
        tmp_path / "tool",
        """
        import os, sys
        print(sys.argv[1:], os.environ.get("CMD_VISIBLE"), os.environ.get("CMD_HIDDEN"))
        print("warning", file=sys.stderr)
        """,
    )
    run = run_into_packet(
        _entry(tool),
        {"word": "-x"},
        builder,
        base_env={"CMD_VISIBLE": "yes", "CMD_HIDDEN": "no"},
    )
    assert (run.verdict, run.error) == (Verdict.ran_clean, None)
    assert run.outcome is not None
    assert run.stdout is not None
    stdout = (builder.bag / STDOUT_PATH).read_bytes()
    assert stdout == b"['--', '-x'] yes None\n"
    assert (builder.bag / STDERR_PATH).read_bytes() == b"warning\n"
    assert run.stdout.record.digest == run.outcome.result.stdout.digest
    assert run.stdout.record.digest.sha256 == hashlib.sha256(stdout).hexdigest()
    assert run.outcome.complete
    assert run.outcome.cut_by is None
    record = run.outcome.record()
    assert (record["exit_code"], record["signal"], record["killed_reason"]) == (0, None, None)
    assert record["reason"] == "exit code 0 maps to ran_clean"
    assert record["stderr"] == {
        "bytes": 8,
        "digest": run.outcome.result.stderr.digest.model_dump(),
        "truncated": False,
    }
    assert _leftovers(builder) == []  # the private output folder is gone


def test_a_stderr_flood_is_cut_at_its_own_cap(tmp_path: Path, builder: PacketBuilder) -> None:
    tool = _script(tmp_path / "tool", "import sys\nsys.stderr.write('e' * 100_000)\n")
    run = run_into_packet(_entry(tool), {"word": "w"}, builder, base_env={})
    assert run.verdict is Verdict.error_running
    assert run.error == ("output flood: stderr passed the byte cap; its process group was killed")
    assert run.outcome is not None
    assert (run.outcome.complete, run.outcome.cut_by) == (False, "max_stderr_bytes")
    assert (builder.bag / STDERR_PATH).read_bytes() == b"e" * 100
    assert run.outcome.record()["stderr"]["truncated"] is True


def test_an_executable_changed_after_the_check_is_blocked_and_nothing_is_kept(
    tmp_path: Path, builder: PacketBuilder
) -> None:
    tool = _script(tmp_path / "tool", "print('sealed')\n")
    entry = _entry(tool)
    tool.write_text(tool.read_text() + "print('swapped')\n")
    run = run_into_packet(entry, {"word": "w"}, builder, base_env={})
    assert run.verdict is Verdict.blocked
    assert run.error is not None
    assert run.error.startswith(f"executable {tool} has sha256 ")
    assert (run.outcome, run.stdout) == (None, None)
    assert not (builder.bag / "data").exists()
    assert _leftovers(builder) == []


def test_a_command_that_cannot_start_is_error_running(
    tmp_path: Path, builder: PacketBuilder
) -> None:
    tool = _script(tmp_path / "tool", "print(1)\n", interpreter="/nonexistent/python")
    run = run_into_packet(_entry(tool), {"word": "w"}, builder, base_env={})
    assert run.verdict is Verdict.error_running
    assert run.error is not None
    assert run.error.startswith(f"cannot start {tool}")
    assert (run.outcome, run.stdout) == (None, None)
    assert _leftovers(builder) == []
