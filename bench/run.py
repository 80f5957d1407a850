"""govex benchmarks: measured, never asserted. Writes docs/benchmarks.md.

Run with `make bench`. Each figure names what it measures; rerun on the same
machine to compare. The ledger figures (bench/appends.py, bench/export_verify.py)
start a throwaway PostgreSQL 15 server (tests/pg_harness.py) and verify a
1,000,000-entry export; the streaming exports (bench/streaming.py) export
1,000,000 and 5,000,000 rows from PostgreSQL and SQLite into packets. A whole
run takes about ten minutes on 2 cores.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import appends, export_verify, small_calls, streaming  # noqa: E402
from bench.machine import describe, on_disk_tempdir  # noqa: E402
from catalog.authority import AuthorityStatus  # noqa: E402
from catalog.digest import digest_bytes  # noqa: E402
from ledger.store import LedgerStore  # noqa: E402
from service.packets.build import PacketBuilder  # noqa: E402
from service.packets.manifest import CatalogRef, EntryRef, LedgerRef, ServiceRef  # noqa: E402
from service.packets.verify import verify_packet_file  # noqa: E402

EXPORT_ROWS = 1_000_000
LEDGER_APPENDS = 2_000


def _timed(action: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = action()
    return time.perf_counter() - t0, value


def _rows(count: int) -> Iterator[tuple[int, str, int, float, str]]:
    for i in range(count):
        yield (i, f"customer-{i % 5000}", i * 7 % 100_000, i / 3, "2026-11-23")


def bench_packet_export(work: Path) -> dict[str, str]:
    """Stream rows into a packet (JSON Lines), zip it, then verify it offline."""
    digest = digest_bytes(b"bench")
    builder = PacketBuilder(work / "packets", "01BENCHPACKET00000000000000")
    seconds, written = _timed(
        lambda: builder.write_table(
            path="data/result.jsonl",
            fmt="jsonl",
            columns=["id", "name", "amount", "ratio", "day"],
            rows=_rows(EXPORT_ROWS),
            max_bytes=None,
        )
    )
    finish_seconds, staged = _timed(
        lambda: builder.finish(
            created_at=datetime.now(UTC),
            authority_status=AuthorityStatus.sealed,
            catalog=CatalogRef(name="bench", version="1", catalog_digest=digest),
            entry=EntryRef(id="bench.rows", kind="query", entry_digest=digest),
            contract={},
            complete=True,
            claim=None,
            ledger=LedgerRef(origin="bench", call_seq=0),
            service=ServiceRef(version="bench", module_sha256="0" * 64),
        )
    )
    path = builder.publish(staged)  # type: ignore[arg-type]
    verify_seconds, report = _timed(lambda: verify_packet_file(path))
    size = written.record.bytes  # type: ignore[attr-defined]
    return {
        "rows written": f"{EXPORT_ROWS:,}",
        "data file": f"{size / 1e6:.1f} MB",
        "write (rows -> JSONL with sha256 + blake3 + chunks)": f"{EXPORT_ROWS / seconds:,.0f} rows/s, {size / 1e6 / seconds:.1f} MB/s",
        "finish (tag files + deterministic zip)": f"{finish_seconds:.2f} s, zip {path.stat().st_size / 1e6:.1f} MB",
        "offline verify (8 checks)": f"{verify_seconds:.2f} s ({size / 1e6 / verify_seconds:.1f} MB/s), ok={report.ok}",  # type: ignore[attr-defined]
        "peak RSS of the process": f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB",
    }


def bench_ledger(work: Path) -> dict[str, str]:
    """Durable appends (SQLite WAL, synchronous=FULL, BEGIN IMMEDIATE), one at a time."""
    store = LedgerStore.open(f"sqlite:///{work / 'ledger.sqlite'}")
    body = {
        "call_id": "01BENCH",
        "verdict": "ran_clean",
        "exit_code": 0,
        "result_digest": None,
        "rows": 1,
        "bytes": 1,
        "duration_ms": 1,
    }
    seconds, _ = _timed(
        lambda: [
            store.append("call.finished", body, datetime.now(UTC)) for _ in range(LEDGER_APPENDS)
        ]
    )
    verify_seconds, report = _timed(store.verify)
    store.close()
    return {
        "appends": f"{LEDGER_APPENDS:,}",
        "sequential durable appends": f"{LEDGER_APPENDS / seconds:,.0f} appends/s ({seconds / LEDGER_APPENDS * 1000:.2f} ms each)",
        "verify the stored chain": f"{report.size / verify_seconds:,.0f} entries/s",  # type: ignore[attr-defined]
    }


def bench_calls(work: Path) -> dict[str, str]:
    """Whole calls through the core (contract, policy, ledger, SQLite, packet) on the demo data."""
    from service import calls  # noqa: PLC0415
    from service.contract import CallRequest  # noqa: PLC0415
    from service.runtime import build_runtime  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415

    database = work / "demo.sqlite"
    subprocess.run(
        [sys.executable, str(REPO / "examples/demo/generate.py"), str(database)],
        check=True,
        capture_output=True,
    )
    settings = Settings(
        catalog_dir=REPO / "examples/demo/catalog",
        sources={"demo": str(database)},
        keys_file=REPO / "examples/demo/keys.json",
        ledger_url=f"sqlite:///{work / 'calls-ledger.sqlite'}",
        packet_root=work / "call-packets",
        ledger_key_file=None,  # no checkpoints signed here (`make` exports the demo key's path)
    )
    runtime = build_runtime(settings)
    alice = runtime.auth.authenticate("Bearer gvx-demo-alice", runtime.clock())
    small = CallRequest(entry="orders.by_customer", params={"tenant": "acme", "customer_id": 48})
    count = 100
    seconds, _ = _timed(
        lambda: [calls.execute(runtime, alice, small, request_id=None) for _ in range(count)]
    )
    large = CallRequest(entry="invoices.unpaid", params={"tenant": "acme"})
    large_seconds, result = _timed(lambda: calls.execute(runtime, alice, large, request_id=None))
    runtime.close()
    return {
        "small call (orders.by_customer, 12 rows)": f"{count / seconds:,.1f} calls/s ({seconds / count * 1000:.1f} ms each)",
        "invoices.unpaid for acme": f"{result.rows:,} rows in {large_seconds * 1000:.0f} ms",  # type: ignore[attr-defined]
    }


def _versions(postgres: str) -> dict[str, str]:
    """Versions the ledger figures depend on, beyond the machine's."""
    libpq = psycopg.pq.version()
    return {
        "postgresql server": postgres,
        "psycopg": (
            f"{metadata.version('psycopg')} ({psycopg.pq.__impl__} implementation, "
            f"libpq {libpq // 10000}.{libpq % 10000})"
        ),
    }


def _load(averages: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in averages)


def _intro(module: ModuleType) -> str:
    """A module's docstring without its first line: how a section's figures were made."""
    text = inspect.cleandoc(module.__doc__ or "").split("\n", 1)[-1].strip()
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")  # reST to Markdown


def _table(title: str, doc: str, figures: dict[str, str]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in figures.items())
    return f"## {title}\n\n{doc}\n\n| measure | result |\n|---|---|\n{rows}\n"


def main() -> None:
    started = time.perf_counter()
    load_before = os.getloadavg()
    # Temporary files, PostgreSQL's data directory among them, on a disk: durability is measured.
    tempfile.tempdir = str(on_disk_tempdir())
    with tempfile.TemporaryDirectory(prefix="govex-bench-") as tmp:
        work = Path(tmp)
        machine = describe(work)
        packet = ("Packet export", bench_packet_export.__doc__ or "", bench_packet_export(work))
        sqlite_text, sqlite_line = appends.sqlite_section(work)
        postgres_text, postgres_line, postgres_version = appends.postgres_section()
        verify_text, verify_line = export_verify.section(work)
        streaming_text, streaming_line = streaming.section(work)
        quick = (
            "Ledger: one caller, small entries",
            bench_ledger.__doc__ or "",
            bench_ledger(work),
        )
        calls = ("Calls", bench_calls.__doc__ or "", bench_calls(work))
        small_text = small_calls.section(small_calls.measure(work / "small-calls"))
    machine.update(_versions(postgres_version))
    machine["load average (1, 5, 15 min) at start and end"] = (
        f"{_load(load_before)} and {_load(os.getloadavg())}; other work on the machine "
        "lowers the figures"
    )
    minutes = (time.perf_counter() - started) / 60
    text = (
        "# govex benchmarks\n\nWritten by `make bench` (`bench/run.py`); figures from one run "
        f"({minutes:.1f} minutes). Measured, never asserted: rerun on the same machine to "
        "compare.\n\n"
    )
    text += "\n".join(f"- {k}: {v}" for k, v in machine.items()) + "\n\n"
    text += "## Ledger targets (issue 3, for a 2-core machine)\n\n"
    text += "\n".join(f"- {line}" for line in (postgres_line, sqlite_line, verify_line)) + "\n\n"
    text += f"## Ledger: durable appends\n\n{_intro(appends)}\n\n{sqlite_text}\n{postgres_text}\n"
    text += f"## Ledger: offline verification\n\n{_intro(export_verify)}\n\n{verify_text}\n"
    text += "\n".join(_table(*section) for section in (packet, quick, calls))
    text += (
        f"\n{streaming.HEADING}\n\n{streaming.intro()}\n\n- {streaming_line}\n\n{streaming_text}"
    )
    text += f"\n{small_text}"
    (REPO / "docs" / "benchmarks.md").write_text(text)
    print(text)
    print(json.dumps({"written": "docs/benchmarks.md", "minutes": round(minutes, 1)}))


if __name__ == "__main__":
    main()
