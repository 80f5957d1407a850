"""Run one atheris fuzz target: ``python tests/hardening/fuzz/run_target.py NAME [libFuzzer args]``.

``NAME`` is a module ``tests/hardening/fuzz/target_NAME.py`` with ``test_one_input(data)``.
The target module, and through it the govex packages it imports, are imported under
atheris's instrumentation, so coverage of our own code (and of the stdlib parsers we rely
on: zipfile, tomllib) steers the fuzzer. Any exception that escapes ``test_one_input`` is a
crash: libFuzzer saves the input under ``-artifact_prefix`` and exits non-zero.

Memory: besides libFuzzer's ``-rss_limit_mb``, the address space is capped at
``GOVEX_FUZZ_AS_MB`` (default 4096) MiB, so a runaway allocation becomes a MemoryError
(a crash with its input saved) long before it could hurt the machine.
``tests/hardening/test_fuzz.py`` runs every target, bounded in ``make test`` and long in
``make soak``; run one by hand from the repository root, for example::

    .venv/bin/python tests/hardening/fuzz/run_target.py note -max_total_time=60
"""

from __future__ import annotations

import importlib
import os
import resource
import sys
from pathlib import Path

import atheris

INSTRUMENTED = ["catalog", "ledger", "service", "tests.hardening.fuzz", "zipfile", "tomllib"]


def _limit_address_space() -> None:
    limit = int(os.environ.get("GOVEX_FUZZ_AS_MB", "4096")) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(f"usage: {sys.argv[0]} TARGET [libFuzzer options] [corpus dirs]")
    name = sys.argv.pop(1)
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root
    with atheris.instrument_imports(include=INSTRUMENTED):
        target = importlib.import_module(f"tests.hardening.fuzz.target_{name}")
    target.prepare()  # build what every input reuses (a valid packet) before the limits apply
    _limit_address_space()
    atheris.Setup(sys.argv, target.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
