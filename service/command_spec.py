"""A command entry as something to run: its spec, checked, and its argv, built whole.

Pure (no process, no file read): :class:`CommandSpec` checks what a catalog
command entry says (absolute executable, pinned SHA-256, template items that
are whole ``{name}`` placeholders or literals, allowlisted variable names,
limits, caps), and :func:`build_argv` turns bound inputs into argv: each
placeholder becomes exactly one argument, and a value that looks like an
option (leading ``-``) is refused unless a literal ``--`` ends the options
before it. :mod:`service.run_command` runs what this builds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from catalog.canonical import jcs
from catalog.errors import CanonicalizationError
from catalog.model import CommandEntry
from service.errors import CommandRefused, CommandSpecInvalid

ArgValue = str | int | float | bool
"""A bound parameter value as :func:`catalog.params.bind_inputs` normalizes it."""

BOUNDARY_COMMAND = (
    "no_shell",
    "whole_arguments",
    "pinned_executable",
    "env_allowlist",
    "fresh_workdir",
    "rlimits",
    "output_caps",
    "group_deadline",
)
END_OF_OPTIONS = "--"

# Same placeholder rule as the catalog (catalog/resolve.py): a whole argument `{name}`.
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandLimits:
    """Resource limits set in the child before exec; each a positive integer.

    ``cpu_seconds`` is the soft CPU limit (``SIGXCPU``), with ``SIGKILL`` one second later;
    ``memory_bytes`` bounds the address space (``RLIMIT_AS``); ``file_size_bytes`` each file
    written (``SIGXFSZ`` or ``EFBIG``); ``open_files`` the descriptors. A limit above the
    service's own hard limit is lowered to it: the stricter one holds.
    """

    cpu_seconds: int
    memory_bytes: int
    file_size_bytes: int
    open_files: int

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_bytes", "file_size_bytes", "open_files"):
            _positive(getattr(self, name), f"limits.{name}", minimum=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandSpec:
    """Everything that decides how one command runs; checked when it is built.

    ``executable`` is an absolute path and argv[0]; ``executable_sha256`` its pinned digest
    (lowercase hex). ``args`` is the template after argv[0] (the catalog's ``argv[1:]``): an
    item that holds a brace must be exactly ``{name}``, so ``--x={name}`` or ``{a}.txt`` are
    refused. ``env_allowlist`` names the variables passed through from ``base_env``. Output caps
    are bytes (0 allowed: any output is a flood); ``timeout_ms`` is wall-clock.

    Raises :class:`CommandSpecInvalid` naming the field.
    """

    executable: str
    executable_sha256: str
    args: tuple[str, ...]
    env_allowlist: tuple[str, ...]
    limits: CommandLimits
    stdout_cap_bytes: int
    stderr_cap_bytes: int
    timeout_ms: int

    def __post_init__(self) -> None:
        exe = _string(self.executable, "executable")
        if not PurePosixPath(exe).is_absolute() or any(c in exe for c in "\x00{}"):
            raise CommandSpecInvalid(
                "executable must be an absolute path, without NUL or placeholder",
                where="executable",
            )
        if not _SHA256_HEX.fullmatch(_string(self.executable_sha256, "executable_sha256")):
            raise CommandSpecInvalid(
                "executable_sha256 must be 64 lowercase hex digits", where="executable_sha256"
            )
        for i, item in enumerate(_tuple(self.args, "args")):
            _check_template_item(item, f"args[{i}]")
        for i, name in enumerate(_tuple(self.env_allowlist, "env_allowlist")):
            if not _ENV_NAME.fullmatch(_string(name, f"env_allowlist[{i}]")):
                raise CommandSpecInvalid(
                    f"not an environment variable name: {name!r}", where=f"env_allowlist[{i}]"
                )
        if not isinstance(self.limits, CommandLimits):
            raise CommandSpecInvalid("limits must be CommandLimits", where="limits")
        _positive(self.stdout_cap_bytes, "stdout_cap_bytes", minimum=0)
        _positive(self.stderr_cap_bytes, "stderr_cap_bytes", minimum=0)
        _positive(self.timeout_ms, "timeout_ms", minimum=1)

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The parameter names of the template, in order (a name may repeat)."""
        return tuple(n for n in map(_placeholder, self.args) if n is not None)


def spec_for_entry(entry: CommandEntry) -> CommandSpec:
    """The spec of a sealed command entry; pure.

    ``argv[0]`` and its pin, the template after it, the ``env`` allowlist, the limits, the
    caps (stdout: ``max_bytes``; stderr: ``max_stderr_bytes``) and ``timeout_ms``. Raises
    :class:`CommandSpecInvalid` for an entry the runner cannot run safely (the catalog's own
    checks refuse such entries at load, so this is a second look).
    """
    limits = entry.limits
    return CommandSpec(
        executable=entry.argv[0],
        executable_sha256=entry.executable_sha256,
        args=tuple(entry.argv[1:]),
        env_allowlist=tuple(entry.env),
        limits=CommandLimits(
            cpu_seconds=limits.cpu_seconds,
            memory_bytes=limits.memory_bytes,
            file_size_bytes=limits.file_size_bytes,
            open_files=limits.open_files,
        ),
        stdout_cap_bytes=entry.max_bytes,
        stderr_cap_bytes=entry.max_stderr_bytes,
        timeout_ms=entry.timeout_ms,
    )


def _string(value: object, where: str) -> str:
    """Internal: refuse a field that is not a string (dataclasses do not check types)."""
    if not isinstance(value, str):
        raise CommandSpecInvalid(f"{where} must be a string", where=where)
    return value


def _tuple(value: object, where: str) -> tuple[object, ...]:
    """Internal: refuse a field that is not a tuple (a list could change after the check)."""
    if not isinstance(value, tuple):
        raise CommandSpecInvalid(f"{where} must be a tuple", where=where)
    return value


def _positive(value: object, where: str, *, minimum: int) -> None:
    """Internal: refuse anything but an int (not a bool) of at least ``minimum``."""
    if type(value) is not int or value < minimum:
        raise CommandSpecInvalid(
            f"{where} must be an integer >= {minimum}, got {value!r}", where=where
        )


def _check_template_item(item: object, where: str) -> None:
    """Internal: a literal without braces or NUL, or exactly one whole ``{name}``."""
    item = _string(item, where)
    if "\x00" in item:
        raise CommandSpecInvalid(f"{where} holds a NUL character", where=where)
    if ("{" in item or "}" in item) and _PLACEHOLDER.fullmatch(item) is None:
        raise CommandSpecInvalid(
            f"{where}: a placeholder must be a whole argument '{{name}}' "
            "(never embedded in a larger string)",
            where=where,
        )


def _placeholder(item: str) -> str | None:
    match = _PLACEHOLDER.fullmatch(item)
    return match.group(1) if match else None


def build_argv(spec: CommandSpec, inputs: Mapping[str, ArgValue | None]) -> list[str]:
    """The exact argv to execute: ``[spec.executable, *rendered template]``; pure.

    Each placeholder becomes exactly one argument, whatever it holds (spaces, ``;``, quotes).
    A string is passed as is. Any other value is its RFC 8785 JSON text, the same text the
    contract records for the input: integers in decimal (``-3``), booleans ``true`` /
    ``false``, numbers in shortest round-trip form (``0.5``, ``1`` for 1.0, ``1e+21``).

    Raises :class:`CommandRefused` naming the parameter(s), and never echoing a value, for: an
    input with no placeholder (unknown), a placeholder with no value or ``None`` (missing), a
    NUL character, a number JCS cannot carry (non-finite, beyond 2**53 - 1), another type, and a
    value starting with ``-`` (negative numbers included) unless a literal ``--`` item comes
    before its placeholder.
    """
    names = spec.placeholders
    unknown = sorted(set(inputs) - set(names))
    if unknown:
        listed = ", ".join(unknown)
        raise CommandRefused(
            f"no placeholder in the command template for parameter(s) {listed}", where=listed
        )
    missing = sorted({n for n in names if inputs.get(n) is None})
    if missing:
        listed = ", ".join(missing)
        raise CommandRefused(f"no value for parameter(s) {listed}", where=listed)
    argv = [spec.executable]
    options_ended = False
    for item in spec.args:
        name = _placeholder(item)
        if name is None:
            options_ended = options_ended or item == END_OF_OPTIONS
            argv.append(item)
            continue
        text = _render(name, inputs[name])
        if text.startswith("-") and not options_ended:
            raise CommandRefused(
                f"parameter {name}: a value starting with '-' would be read as an option; "
                f"the template must end options with '{END_OF_OPTIONS}' before {{{name}}}",
                where=name,
            )
        argv.append(text)
    return argv


def _render(name: str, value: ArgValue | None) -> str:
    """Internal: one value as one argument's text (see :func:`build_argv`)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise CommandRefused(f"parameter {name}: NUL character in value", where=name)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise CommandRefused(f"parameter {name}: not a finite number", where=name)
    if isinstance(value, bool | int | float):
        try:
            return jcs(value, where=name).decode("ascii")
        except CanonicalizationError as exc:
            raise CommandRefused(f"parameter {name}: {exc.message}", where=name) from exc
    raise CommandRefused(
        f"parameter {name}: a {type(value).__name__} cannot be an argument", where=name
    )
