"""Small governed calls over HTTP against Datasette serving the same query, in the same run.

A SQLite file holds 10,000 rows; the query returns 20 of them. govex serves it as a
sealed catalog entry: each ``POST /v1/calls`` is a fully governed call (authenticated,
contract, policy, ``call.started`` / ``call.finished`` / ``packet.issued`` durable in
the ledger, a packet zip written and published). Datasette (installed by this bench
into its own virtual environment under the work folder, never into govex's) serves the
same SELECT as a canned query on the same file (``GET /data/twenty.json``).

A load generator in its own process keeps 16 connections busy over loopback (HTTP/1.1
keep-alive, asyncio streams) for a fixed time and reports requests/s and latency
percentiles. Configurations: Datasette (one process); govex, one worker, SQLite ledger;
govex, 4 workers, PostgreSQL ledger (a throwaway server from tests/pg_harness.py). The
load visits the three in turn for :data:`ROUNDS` rounds, and each is reported by its
median round (:func:`measure`).

Run alone: ``python bench/small_calls.py``; ``make bench`` runs it with the rest.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal  # noqa: E402
from catalog.seal import compute_seal  # noqa: E402
from service.api_keys import token_hash  # noqa: E402
from tests.pg_harness import PostgresServer  # noqa: E402

CLIENTS = 16
SECONDS = 10.0
ROUNDS = 3
WARMUP_S = 2.0
TOKEN = "gvx-bench-small-calls"  # noqa: S105 - a throwaway key of the bench's own catalog
DATASETTE = "datasette==0.65.5"
SQL = "SELECT id, name, amount FROM items WHERE id <= 20 ORDER BY id"
CATALOG = """
[catalog]
name = "bench-small"
version = "1"

[sources.data]
engine = "sqlite"

[[query]]
id = "bench.twenty"
title = "Twenty rows"
source = "data"
sql = "queries/twenty.sql"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _prepare(work: Path) -> tuple[Path, Path, Path]:
    """The data file, the sealed catalog and the keys file."""
    data = work / "data.sqlite"
    with sqlite3.connect(data) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, amount INTEGER)")
        conn.executemany(
            "INSERT INTO items VALUES (?, ?, ?)",
            ((i, f"item-{i}", i * 7 % 1000) for i in range(1, 10_001)),
        )
    catalog = work / "catalog"
    (catalog / "queries").mkdir(parents=True)
    (catalog / "catalog.toml").write_text(CATALOG)
    (catalog / "queries" / "twenty.sql").write_text(SQL + "\n")
    write_seal(catalog / SEAL_FILE, compute_seal(load_catalog_dir(catalog), datetime.now(UTC)))
    keys = work / "keys.json"
    record = {
        "key_id": "bench",
        "sha256": token_hash(TOKEN),
        "principal": "bench",
        "roles": ["analyst"],
        "tenant": "bench",
    }
    keys.write_text(json.dumps({"format": "govex.keys/v1", "keys": [record]}))
    return data, catalog, keys


def _datasette(work: Path) -> Path:
    """A virtual environment with Datasette, kept under the bench's work folder."""
    env = work / "datasette-venv"
    venv.create(env, with_pip=True)
    subprocess.run(
        [str(env / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", DATASETTE],
        check=True,
    )
    return env / "bin" / "datasette"


def _tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # gone meanwhile
    return total


@contextmanager
def _server(command: list[str], env: dict[str, str], health: str) -> Iterator[int]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", int(health)), timeout=1) as sock:
                    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    if sock.recv(12):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start")
            time.sleep(0.2)
        time.sleep(2.0)  # every worker up
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


# --- the load generator (run in its own process: python bench/small_calls.py load ...) -----


async def _client(port: int, request: bytes, until: float, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    while time.monotonic() < until:
        started = time.perf_counter()
        writer.write(request)
        status_line = await reader.readline()
        length, chunked = 0, False
        while (line := await reader.readline()) not in {b"\r\n", b""}:
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            while size := int((await reader.readline()).split(b";")[0], 16):
                await reader.readexactly(size + 2)  # the chunk and its CRLF
            await reader.readline()  # the CRLF after the last (empty) chunk
        else:
            await reader.readexactly(length)
        if not status_line.startswith((b"HTTP/1.1 200", b"HTTP/1.1 201")):
            errors += 1
        latencies.append(time.perf_counter() - started)
    writer.close()
    return errors


async def _load(port: int, request: bytes, seconds: float) -> dict[str, float]:
    warm: list[float] = []
    await asyncio.gather(
        *(_client(port, request, time.monotonic() + WARMUP_S, warm) for _ in range(CLIENTS))
    )
    latencies: list[float] = []
    t0 = time.monotonic()
    errors = await asyncio.gather(
        *(_client(port, request, t0 + seconds, latencies) for _ in range(CLIENTS))
    )
    elapsed = time.monotonic() - t0
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": float(sum(errors)),
        "requests": float(len(warm) + len(latencies)),
    }


def _run_load(port: int, request: bytes, servers: tuple[int, ...]) -> dict[str, float]:
    """The load's figures, and the CPU the ``servers`` (process trees) spent per request."""
    before = sum(_tree_cpu_s(pid) for pid in servers)
    result = subprocess.run(
        [sys.executable, __file__, "load", str(port), request.decode("latin-1"), str(SECONDS)],
        capture_output=True,
        text=True,
        check=True,
    )
    spent = sum(_tree_cpu_s(pid) for pid in servers) - before
    figures: dict[str, float] = json.loads(result.stdout)
    figures["cpu_ms"] = spent * 1000 / figures.pop("requests")
    figures["cores"] = figures["cpu_ms"] * figures["rps"] / 1000
    return figures


def _requests(port: int) -> tuple[bytes, bytes]:
    body = json.dumps({"entry": "bench.twenty"})
    govex = (
        f"POST /v1/calls HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    datasette = (
        f"GET /data/twenty.json?_shape=array HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    ).encode()
    return govex, datasette


def measure(work: Path, rounds: int = ROUNDS) -> dict[str, dict[str, float]]:
    """Each configuration's median round of ``rounds``, the rounds interleaved.

    The three servers run side by side (the two idle ones do nothing) and the load visits
    them in turn, round after round, so a machine that slows down or speeds up during the
    bench weighs on each configuration alike. Each result is the round with the median
    requests/s, with ``rps_min`` and ``rps_max`` over the rounds.
    """
    work.mkdir(parents=True, exist_ok=True)
    data, catalog, keys = _prepare(work)
    datasette = _datasette(work)
    metadata = work / "metadata.json"
    metadata.write_text(json.dumps({"databases": {"data": {"queries": {"twenty": SQL}}}}))
    govex = str(Path(sys.executable).parent / "govex")
    base_env = {
        **os.environ,
        "GOVEX_CATALOG_DIR": str(catalog),
        "GOVEX_SOURCES": json.dumps({"data": str(data)}),
        "GOVEX_KEYS_FILE": str(keys),
        "GOVEX_ORIGIN": "govex.bench/ledger/small",
        "GOVEX_CHECKPOINT_INTERVAL_S": "0",
    }
    postgres = PostgresServer.start_new()
    try:
        with ExitStack() as stack:
            targets: dict[str, tuple[int, bytes, tuple[int, ...]]] = {}
            port = _free_port()
            command = [str(datasette), "serve", str(data), "-m", str(metadata), "-p", str(port)]
            server = stack.enter_context(
                _server([*command, "-h", "127.0.0.1"], dict(os.environ), str(port))
            )
            targets["Datasette, canned query"] = (port, _requests(port)[1], (server,))
            port = _free_port()
            env = {
                **base_env,
                "GOVEX_LEDGER_URL": f"sqlite:///{work / 'ledger.sqlite'}",
                "GOVEX_PACKET_ROOT": str(work / "packets-1"),
            }
            server = stack.enter_context(
                _server([govex, "serve", "--port", str(port)], env, str(port))
            )
            targets["govex, 1 worker, SQLite ledger"] = (port, _requests(port)[0], (server,))
            port = _free_port()
            env = {
                **base_env,
                "GOVEX_LEDGER_URL": postgres.create_database("bench_small"),
                "GOVEX_PACKET_ROOT": str(work / "packets-4"),
            }
            command = [govex, "serve", "--port", str(port), "--workers", "4"]
            server = stack.enter_context(_server(command, env, str(port)))
            both = (server, postgres.pid)  # the workers' CPU and the ledger database's
            targets["govex, 4 workers, PostgreSQL ledger"] = (port, _requests(port)[0], both)
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for _ in range(rounds):
                for name, (port, request, pids) in targets.items():
                    runs[name].append(_run_load(port, request, pids))
    finally:
        postgres.stop()
    return {name: _median_round(measured) for name, measured in runs.items()}


def _median_round(measured: list[dict[str, float]]) -> dict[str, float]:
    """The round with the median requests/s (the lower one of an even count), and the range."""
    ordered = sorted(measured, key=lambda figures: figures["rps"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median.update(rps_min=ordered[0]["rps"], rps_max=ordered[-1]["rps"], rounds=len(ordered))
    return median


def section(results: dict[str, dict[str, float]]) -> str:
    reference = results["Datasette, canned query"]
    one = results["govex, 1 worker, SQLite ledger"]
    four = results["govex, 4 workers, PostgreSQL ledger"]
    rows = "\n".join(
        f"| {name} | {r['rps']:,.0f} | {r['rps_min']:,.0f} to {r['rps_max']:,.0f} "
        f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']:.0f} "
        f"| {r['cpu_ms']:.2f} | {r['cores']:.2f} |"
        for name, r in results.items()
    )
    rounds = int(reference["rounds"])
    return (
        f"{HEADING}\n\n"
        f"{CLIENTS} concurrent clients over loopback for {SECONDS:.0f} s each (after "
        f"{WARMUP_S:.0f} s of warm-up); each govex request is a fully governed call (ledgered "
        "durably, packet written and published), Datasette serves the same 20-row SELECT as "
        "a canned query on the same SQLite file. Run alone: `python bench/small_calls.py`.\n\n"
        f"{rounds} rounds, the three configurations in turn in each (their servers up side by "
        "side): each row is the configuration's median round by requests/s, with the range "
        "over the rounds (runs of the same code differ by up to a fifth on a shared 2-core "
        "machine).\n\n"
        "CPU ms/request: user + system time of the server's processes (and, for 4 workers, "
        "of the PostgreSQL server) over the load, per request served; cores: that times "
        "requests/s. The load generator runs on the same cores.\n\n"
        "| configuration | requests/s | range | p50 ms | p99 ms | non-2xx | CPU ms/request "
        "| cores |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"- govex 1 worker / Datasette: **{one['rps'] / reference['rps']:.2f}x** requests/s "
        f"(target 1.0x), p99 {one['p99_ms']:.0f} ms vs {reference['p99_ms']:.0f} ms (target: no "
        "worse).\n"
        f"- govex 4 workers (PostgreSQL) / 1 worker: **{four['rps'] / one['rps']:.2f}x** "
        "(target 2.5x).\n"
        f"- CPU per request: govex {one['cpu_ms']:.1f} ms, Datasette {reference['cpu_ms']:.1f} ms "
        f"({one['cpu_ms'] / reference['cpu_ms']:.0f}x). One govex worker keeps "
        f"{one['cores']:.2f} of this machine's {os.cpu_count()} cores busy, so no number of "
        f"workers here can serve more than about {(os.cpu_count() or 1) / one['cores']:.1f}x "
        "its requests/s (less, as the load generator shares the cores).\n"
    )


HEADING = "## Small calls over HTTP (issue 6)"


def main() -> None:
    """Run alone: put the section into docs/benchmarks.md in place of the old one."""
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        port, request, seconds = int(sys.argv[2]), sys.argv[3].encode("latin-1"), float(sys.argv[4])
        sys.stdout.write(json.dumps(asyncio.run(_load(port, request, seconds))))
        return
    from bench.machine import on_disk_tempdir  # noqa: PLC0415
    from bench.sections import replace_section  # noqa: PLC0415

    tempfile.tempdir = str(on_disk_tempdir())
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="govex-bench-small-") as folder:
        results = measure(Path(folder))
    load = " and ".join("/".join(f"{v:.2f}" for v in avg) for avg in (load_before, os.getloadavg()))
    text = section(results) + f"- load average (1, 5, 15 min) at start and end: {load}\n"
    docs = REPO / "docs" / "benchmarks.md"
    docs.write_text(replace_section(docs.read_text(), HEADING, text))
    print(text)


if __name__ == "__main__":
    main()
