r"""Streaming exports into packets: rows/s, MB/s and peak memory, against the engines' own dumps.

A throwaway PostgreSQL 15 server (tests/pg_harness.py) holds a table of 5,000,000
rows (an integer, text, numeric, a boolean, a date, a timestamptz); a SQLite file
holds the same rows. Each export is a whole call through the real path
(``calls.execute``, as ``govex call`` runs it: contract, policy, ledger entries, the
run, the packet zipped, published) of a sealed entry ``SELECT ... WHERE id <= :n
ORDER BY id`` (the primary key),
made in a fresh process (``python bench/streaming.py call ...``), reading PostgreSQL
over 127.0.0.1 as a role that is not a superuser. The packet is then verified
offline (``verify_packet_file``) in that process.

Figures per export: the whole call, from the request until the packet is published
(the run: statement to data file, its sha256 + blake3 and chunk digests computed
while writing; the ledger entries; the tag files; the zip, fsynced; publication);
within it, the run alone (the call's ``duration_ms``); the packet's size; then, apart,
the offline verification of the published packet (``govex packet verify``'s checks);
the process's RSS just before the call (after its imports, pyarrow's included) and
its peak (growth = peak - before). References, in the same run and over the same
connection: psql's ``copy (query) TO FILE CSV`` (the issue's reference) and to
``/dev/null`` (COPY alone), and ``sqlite3 -csv`` into a file.

**The targets' ratio** is reference time / whole call time: a finished packet (digests
made while writing, zipped, fsynced, published) against psql ``\copy`` to a file
(PostgreSQL CSV, target 0.8x; JSON Lines, 0.35x) or the ``sqlite3`` CSV dump (SQLite
CSV, 0.4x), that dump timed just before and just after the export (their mean: the
shared 2-core machine's speed drifts by a third over minutes; the rows "reference:"
are the first dumps of each size). The offline verification is not in it: a consumer runs it, on its own
machine, and its time is shown apart. 1.0x: as fast as the engine's own dump.

The packets' size is the trade for that speed: a data file over 1 MiB is stored in the
zip, not deflated (``write_zip`` in service/packets/build.py). At 5,000,000 rows,
deflating at level 6 would shrink the PostgreSQL CSV from 351 MB to 67 MB (5.2x) and
the JSON Lines from 596 MB to 74 MB (8.0x), at 5.5 to 5.7 s of CPU each; level 1, to
76 MB and 82 MB at 1.7 and 1.9 s. Either would cost more than the whole export.

Run alone (``python bench/streaming.py``) it replaces its section of
docs/benchmarks.md; ``make bench`` runs it with the rest.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal  # noqa: E402
from catalog.seal import compute_seal  # noqa: E402
from service.api_keys import token_hash  # noqa: E402
from tests.pg_harness import PostgresServer  # noqa: E402

SIZES = (1_000_000, 5_000_000)
TOKEN = "gvx-bench-streaming"  # noqa: S105 - a throwaway key of the bench's own catalog
PASSWORD = "bench-Reader-1"  # noqa: S105 - loopback-only throwaway server
COLUMNS = "id, name, amount, flag, day, at"
QUERY = f"SELECT {COLUMNS} FROM big WHERE id <= :n ORDER BY id"  # noqa: S608 - fixed text
TARGETS = {"postgresql csv": 0.8, "postgresql jsonl": 0.35, "sqlite csv": 0.4}
MEMORY_TARGET_MB = 64
CATALOG = """
[catalog]
name = "bench-streaming"
version = "1"

[sources.pg]
engine = "postgresql"

[sources.lite]
engine = "sqlite"

[[query]]
id = "pg.big"
title = "The first n rows of big"
source = "pg"
sql = "queries/big.sql"
timeout_ms = 600000
max_rows = 10000000
max_bytes = 8000000000
[query.params.n]
type = "integer"
min = 1

[[query]]
id = "lite.big"
title = "The first n rows of big"
source = "lite"
sql = "queries/big.sql"
timeout_ms = 600000
max_rows = 10000000
max_bytes = 8000000000
[query.params.n]
type = "integer"
min = 1
"""


@dataclass(frozen=True)
class Export:
    """One call's figures, from its own process."""

    engine: str
    fmt: str
    rows: int
    bytes: int
    run_s: float
    call_s: float
    verify_s: float
    packet_bytes: int
    rss_before_mb: float
    rss_peak_mb: float
    verified: bool

    @property
    def growth_mb(self) -> float:
        return self.rss_peak_mb - self.rss_before_mb


def _world(work: Path, server: PostgresServer, rows: int) -> Path:
    """The PostgreSQL table, the SQLite file, a sealed catalog and settings; the settings file."""
    server.execute("CREATE DATABASE bench")
    table = (
        "CREATE TABLE big AS SELECT g AS id, 'customer-' || (g % 5000) AS name, "
        "(g * 7 % 100000)::numeric(12, 2) AS amount, g % 3 = 0 AS flag, "
        "DATE '2026-01-01' + (g % 365) AS day, "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' + g * interval '1 second' AS at "
        "FROM generate_series(1, {rows:d}) g; ALTER TABLE big ADD PRIMARY KEY (id); "
        "CREATE ROLE reader LOGIN PASSWORD '{password}'; GRANT SELECT ON big TO reader"
    )
    server.execute(table.format(rows=rows, password=PASSWORD), "bench")
    server.execute("VACUUM ANALYZE big", "bench")
    lite = work / "big.sqlite"
    with sqlite3.connect(lite) as conn:
        conn.execute(
            "CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, amount NUMERIC, flag BOOLEAN, day DATE, "
            "at TEXT)"
        )
        conn.execute(
            "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ?) "
            "INSERT INTO big SELECT x, 'customer-' || (x % 5000), "
            "printf('%.2f', x * 7 % 100000), x % 3 = 0, date('2026-01-01', '+' || (x % 365) || "
            "' days'), strftime('%Y-%m-%d %H:%M:%S+00', '2026-01-01', '+' || x || ' seconds') "
            "FROM g",
            (rows,),
        )
    catalog = work / "catalog"
    (catalog / "queries").mkdir(parents=True)
    (catalog / "catalog.toml").write_text(CATALOG)
    (catalog / "queries" / "big.sql").write_text(QUERY + "\n")
    write_seal(catalog / SEAL_FILE, compute_seal(load_catalog_dir(catalog), datetime.now(UTC)))
    keys = work / "keys.json"
    key = {"key_id": "k-bench", "principal": "bench", "roles": ["analyst"], "tenant": "acme",
           "sha256": token_hash(TOKEN), "expires_at": None}  # fmt: skip
    keys.write_text(json.dumps({"format": "govex.keys/v1", "keys": [key]}))
    settings = {
        "catalog_dir": str(catalog),
        "sources": {
            "pg": f"postgresql://reader:{PASSWORD}@127.0.0.1:{server.port}/bench",
            "lite": str(lite),
        },
        "keys_file": str(keys),
        "ledger_url": f"sqlite:///{work / 'ledger.sqlite'}",
        "packet_root": str(work / "packets"),
        "origin": "bench.localhost/ledger/streaming",
    }
    path = work / "settings.json"
    path.write_text(json.dumps(settings))
    return path


def _export(settings: Path, engine: str, fmt: str, rows: int) -> Export:
    entry = "pg.big" if engine == "postgresql" else "lite.big"
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), "call", str(settings), entry, fmt, str(rows)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{engine} {fmt} export failed: {done.stderr.strip()[-3000:]}")
    out = json.loads(done.stdout)
    if out["rows"] != rows or not out["complete"]:
        raise RuntimeError(f"{engine} {fmt} export is not whole: {out}")
    return Export(engine=engine, fmt=fmt, **{k: v for k, v in out.items() if k != "complete"})


def _timed_shell(argv: list[str], stdout: Path | None = None) -> float:
    t0 = time.perf_counter()
    if stdout is None:
        subprocess.run(argv, check=True, capture_output=True)
    else:
        with stdout.open("wb") as out:
            subprocess.run(argv, check=True, stdout=out)
    return time.perf_counter() - t0


def _references(server: PostgresServer, work: Path, rows: int) -> dict[str, tuple[float, int]]:
    """Seconds and bytes of the engines' own CSV dumps of the same rows."""
    found: dict[str, tuple[float, int]] = {}
    found["psql \\copy to a file"] = _reference(server, work, rows, "postgresql")
    seconds = _reference(server, work, rows, "postgresql", devnull=True)[0]
    found["psql \\copy to /dev/null"] = (seconds, found["psql \\copy to a file"][1])
    found["sqlite3 -csv to a file"] = _reference(server, work, rows, "sqlite")
    return found


def _reference(
    server: PostgresServer, work: Path, rows: int, engine: str, *, devnull: bool = False
) -> tuple[float, int]:
    """Seconds and bytes of one engine's own CSV dump of the rows (0 bytes: to /dev/null)."""
    sql = QUERY.replace(":n", str(rows))
    target = work / "reference.csv"
    if engine == "sqlite":
        seconds = _timed_shell(["sqlite3", "-csv", "-header", str(work / "big.sqlite"), sql],
                               stdout=target)  # fmt: skip
    else:
        conninfo = f"host=127.0.0.1 port={server.port} dbname=bench user=reader password={PASSWORD}"
        psql = str(server.bindir / "psql") if (server.bindir / "psql").exists() else "psql"
        into = "/dev/null" if devnull else str(target)
        seconds = _timed_shell([psql, conninfo, "-c", f"\\copy ({sql}) TO '{into}' CSV HEADER"])
        if devnull:
            return seconds, 0
    size = target.stat().st_size
    target.unlink()
    return seconds, size


def _mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB"


def section(work: Path, sizes: tuple[int, ...] = SIZES) -> tuple[str, str]:
    """Run every export at each size: ``(markdown, verdict line)``."""
    print("streaming exports", flush=True)
    server = PostgresServer.start_new()
    try:
        settings = _world(work, server, max(sizes))
        version = _server_version(server)
        lines: list[str] = []
        verdicts: list[str] = []
        for rows in sizes:
            references = _references(server, work, rows)
            for name, (seconds, size) in references.items():
                lines.append(
                    f"| {rows:,} | reference: {name} | {rows / seconds:,.0f} rows/s, "
                    f"{size / 1e6 / seconds:,.0f} MB/s ({seconds:.2f} s, {_mb(size)}) | | | | | |"
                )
            for engine, fmt in (("postgresql", "csv"), ("postgresql", "jsonl"),
                                ("postgresql", "parquet"), ("sqlite", "csv")):  # fmt: skip
                # The engine's dump timed just before and just after this export: their mean
                # is the reference, so the ratio holds on a machine whose speed drifts.
                before = _reference(server, work, rows, engine)[0]
                export = _export(settings, engine, fmt, rows)
                after = _reference(server, work, rows, engine)[0]
                reference = (before + after) / 2
                ratio = reference / export.call_s
                target = TARGETS.get(f"{engine} {fmt}")
                met = "" if target is None else (" **met**" if ratio >= target else " **NOT met**")
                lines.append(
                    f"| {rows:,} | govex {engine} -> {fmt} packet | "
                    f"{rows / export.call_s:,.0f} rows/s, {export.bytes / 1e6 / export.call_s:,.0f}"
                    f" MB/s ({export.call_s:.2f} s, {_mb(export.bytes)}) | {ratio:.2f}x"
                    f"{'' if target is None else f' (target {target}x)'}{met} (dump: "
                    f"{before:.2f} s before, {after:.2f} s after) | "
                    f"{export.run_s:.2f} s ({reference / export.run_s:.2f}x) | "
                    f"{_mb(export.packet_bytes)} | "
                    f"{export.verify_s:.2f} s, ok={export.verified} | "
                    f"{export.rss_before_mb:.0f} -> {export.rss_peak_mb:.0f} MB "
                    f"(+{export.growth_mb:.0f} MB) |"
                )
                print(f"  {lines[-1]}", flush=True)
                if rows == max(sizes) and target is not None:
                    verdicts.append(
                        f"{engine} {fmt} {ratio:.2f}x (target {target}x){met.replace('*', '')}"
                    )
                if rows == max(sizes):
                    memory = " met" if export.growth_mb < MEMORY_TARGET_MB else " NOT met"
                    verdicts.append(f"{engine} {fmt} +{export.growth_mb:.0f} MB{memory}")
    finally:
        server.stop()
    text = (
        f"PostgreSQL {version} on the same machine, over 127.0.0.1; SQLite "
        f"{sqlite3.sqlite_version}. Each govex row is a fresh process making one whole call.\n\n"
        "| rows | export | whole call to a published packet: rows/s, MB/s (time, data file) "
        "| ratio to the engine's dump timed around it (whole call; the targets') "
        "| of which the run (its ratio) "
        "| packet zip | offline verify (apart) | RSS before -> peak (growth) |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(lines) + "\n"
    )
    line = (
        f"streaming exports of {max(sizes):,} rows: " + "; ".join(verdicts) + "; memory target "
        f"< {MEMORY_TARGET_MB} MB growth"
    )
    return text, line


def _server_version(server: PostgresServer) -> str:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(server.dsn("postgres")) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _call(settings_file: Path, entry: str, fmt: str, rows: int) -> dict[str, Any]:
    """The fresh process: one whole call, then the packet verified offline."""
    from service import calls  # noqa: PLC0415
    from service.contract import CallRequest  # noqa: PLC0415
    from service.packets.verify import verify_packet_file  # noqa: PLC0415
    from service.runtime import build_runtime  # noqa: PLC0415
    from service.settings import Settings  # noqa: PLC0415

    if fmt == "parquet":
        import pyarrow.parquet  # noqa: F401, PLC0415 - its import is not the export's memory

    settings = Settings(**json.loads(settings_file.read_text()), ledger_key_file=None)
    runtime = build_runtime(settings)
    principal = runtime.auth.authenticate(f"Bearer {TOKEN}", runtime.clock())
    request = CallRequest.model_validate({"entry": entry, "params": {"n": rows}, "format": fmt})
    before = _rss_mb()
    t0 = time.perf_counter()
    result = calls.execute(runtime, principal, request, request_id=None)
    call_s = time.perf_counter() - t0
    if result.packet_id is None or result.duration_ms is None:
        raise RuntimeError(f"no packet: {result.verdict} {result.error}")
    path = settings.packet_root / f"{result.packet_id}.zip"
    t1 = time.perf_counter()
    report = verify_packet_file(path)
    verify_s = time.perf_counter() - t1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runtime.close()
    packet_bytes = path.stat().st_size
    path.unlink()
    return {
        "rows": result.rows,
        "bytes": result.bytes,
        "complete": result.complete,
        "run_s": result.duration_ms / 1000,
        "call_s": call_s,
        "verify_s": verify_s,
        "packet_bytes": packet_bytes,
        "rss_before_mb": before,
        "rss_peak_mb": peak,
        "verified": report.ok,
    }


def main() -> None:
    """Run the section alone and put it into docs/benchmarks.md in place of the old one."""
    import tempfile  # noqa: PLC0415

    from bench.machine import describe, on_disk_tempdir  # noqa: PLC0415

    tempfile.tempdir = str(on_disk_tempdir())
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="govex-bench-streaming-") as tmp:
        machine = describe(Path(tmp))
        text, line = section(Path(tmp))
    load = (
        "/".join(f"{v:.2f}" for v in load_before)
        + " and "
        + "/".join(f"{v:.2f}" for v in os.getloadavg())
    )
    block = (
        f"{HEADING}\n\n{intro()}\n\n- {line}\n- run alone on {machine['date']}: "
        f"{machine['machine']}; python {machine['python']}; {machine['libraries']}; load "
        f"average (1, 5, 15 min) at start and end: {load}\n\n{text}"
    )
    docs = REPO / "docs" / "benchmarks.md"
    docs.write_text(replace_section(docs.read_text(), block))
    print(block)


HEADING = "## Streaming exports"


def intro() -> str:
    """The module docstring, as the Markdown introduction of the section."""
    import inspect  # noqa: PLC0415
    import re  # noqa: PLC0415

    text = inspect.cleandoc(__doc__ or "").split("\n", 1)[-1].strip()
    text = text.split("\n\nRun alone", 1)[0]
    return re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text).replace("``", "`")


def replace_section(document: str, block: str) -> str:
    """``document`` with its streaming section replaced by ``block`` (appended if absent)."""
    start = document.find(HEADING + "\n")
    if start < 0:
        return document.rstrip("\n") + "\n\n" + block
    end = document.find("\n## ", start + len(HEADING))
    rest = document[end + 1 :] if end >= 0 else ""
    return document[:start] + block + ("\n" + rest if rest else "")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "call":
        print(json.dumps(_call(Path(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))))
    else:
        main()
