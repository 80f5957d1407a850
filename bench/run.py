"""govex benchmarks: measured, never asserted. Writes docs/benchmarks.md.

Run with `make bench`. Each figure names what it measures; rerun on the same
machine to compare. Sizes are modest so a run takes about a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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
    )
    runtime = build_runtime(settings)
    alice = runtime.keyring.authenticate("Bearer gvx-demo-alice", runtime.clock())
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


def _machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("sqlalchemy", "blake3", "rfc8785", "pydantic", "fastapi")
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "libraries": versions,
    }


def _table(title: str, doc: str, figures: dict[str, str]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in figures.items())
    return f"## {title}\n\n{doc}\n\n| measure | result |\n|---|---|\n{rows}\n"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="govex-bench-") as tmp:
        work = Path(tmp)
        sections = [
            ("Packet export", bench_packet_export.__doc__ or "", bench_packet_export(work)),
            ("Ledger", bench_ledger.__doc__ or "", bench_ledger(work)),
            ("Calls", bench_calls.__doc__ or "", bench_calls(work)),
        ]
    machine = _machine()
    text = (
        "# govex benchmarks\n\nWritten by `make bench` (`bench/run.py`); figures from one run.\n\n"
    )
    text += "\n".join(f"- {k}: {v}" for k, v in machine.items()) + "\n\n"
    text += "\n".join(_table(*section) for section in sections)
    (REPO / "docs" / "benchmarks.md").write_text(text)
    print(text)
    print(json.dumps({"written": "docs/benchmarks.md"}))


if __name__ == "__main__":
    main()
