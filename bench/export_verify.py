"""Offline verification of a 1,000,000-entry ledger export: entries/s and peak memory.

The export is generated once, straight from :mod:`ledger.entry` (not through
a store): a ``service.started`` entry, then calls of a ``call.started`` (the
whole Call Contract) and a ``call.finished``, with a valid hash chain. Each
body is canonicalized once per call shape and its call id written into the
canonical bytes (same length, plain ASCII: still canonical), so generating a
million entries takes seconds; the verifier re-derives everything and would
refuse a single wrong byte.

Each verification runs in a fresh process, as the CLI runs it, so its peak
RSS (its own, and the largest of its worker processes) shows that memory does
not grow with the ledger. Modes:

- ``default``: what ``govex ledger verify --export F --checkpoint C --key K``
  runs: the signed checkpoint opened with the verifier key, then
  :func:`ledger.export_scan.scan_export` (the FORMATS section 3 checks: each
  line framed as an entry and its body parsed as JSON, seq, prev, leaf hashes,
  the RFC 9162 root) on every CPU, and :func:`ledger.anchor.anchor_scan`
  (the root at the checkpoint's size must be the signed one);
- ``default-1``: the same in one process (``--jobs 1``);
- ``full``: what ``--full`` adds runs: :func:`ledger.anchor.verify_anchored`,
  one process reading line by line, every check on every line (JSON,
  canonical bytes, entry and body schema, seq, prev) and the signed root.

Run as a script (``python bench/export_verify.py MODE EXPORT [CHECKPOINT KEY]``)
it is that fresh process, and prints its figures as JSON.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.entries import (  # noqa: E402
    VARIANTS,
    call_finished_body,
    call_id,
    call_started_body,
    service_started_body,
)
from ledger.canonical import jcs  # noqa: E402
from ledger.checkpoint import Checkpoint, sign_checkpoint  # noqa: E402
from ledger.entry import ZERO_PREV, Kind, compose_leaf_input, format_ts  # noqa: E402
from ledger.keys import SignerKey  # noqa: E402
from ledger.merkle import RootBuilder, leaf_hash  # noqa: E402

ENTRIES = 1_000_000
TARGET = 250_000  # entries/s of offline verification, 2-core machine
ORIGIN = "bench.localhost/ledger"
_PLACEHOLDER = call_id(0, "01PLACE")


@dataclass(frozen=True)
class Export:
    """A generated export: its file, entries, RFC 9162 root and how long it took to write."""

    path: Path
    size: int
    root: bytes
    seconds: float


def write_export(path: Path, entries: int = ENTRIES) -> Export:
    """Write an ``entries``-entry export with a valid chain to ``path``."""
    t0 = time.perf_counter()
    placeholder = _PLACEHOLDER.encode("ascii")
    started = [jcs(call_started_body(_PLACEHOLDER, v)) for v in range(VARIANTS)]
    finished = [jcs(call_finished_body(_PLACEHOLDER, v)) for v in range(VARIANTS)]
    for body in (*started, *finished):
        if body.count(placeholder) not in (1, 2):
            raise RuntimeError("the call id placeholder is not where the generator expects it")
    base = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    tree = RootBuilder()
    prev = ZERO_PREV
    with path.open("wb", buffering=1 << 20) as out:
        for seq in range(entries):
            if seq == 0:
                kind, body = Kind.service_started, jcs(service_started_body())
            else:
                number, second = divmod(seq - 1, 2)
                variant = number % VARIANTS
                template = finished[variant] if second else started[variant]
                kind = Kind.call_finished if second else Kind.call_started
                body = template.replace(placeholder, call_id(number).encode("ascii"))
            ts = format_ts(base + timedelta(microseconds=seq * 997))
            data = compose_leaf_input(body_jcs=body, kind=kind, prev=prev, seq=seq, ts=ts)
            digest = leaf_hash(data)
            tree.append(digest)
            prev = digest.hex()
            out.write(data)
            out.write(b"\n")
    return Export(path, entries, tree.root(), time.perf_counter() - t0)


@dataclass(frozen=True)
class Verified:
    """One verification of the export in a fresh process."""

    mode: str
    seconds: float
    size: int
    root: bytes
    rss_start_kb: int  # after imports, before reading the export
    rss_peak_kb: int
    rss_workers_kb: int  # the largest worker process (0: none)

    @property
    def rate(self) -> float:
        return self.size / self.seconds


def verify_in_child(mode: str, export: Export, *extra: str) -> Verified:
    """Run ``mode`` over ``export`` in a fresh Python process; its root must be the export's."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__)), mode, str(export.path), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{mode} verification failed: {done.stderr.strip()[-2000:]}")
    out = json.loads(done.stdout)
    result = Verified(
        mode=mode,
        seconds=out["seconds"],
        size=out["size"],
        root=bytes.fromhex(out["root"]),
        rss_start_kb=out["rss_start_kb"],
        rss_peak_kb=out["rss_peak_kb"],
        rss_workers_kb=out["rss_workers_kb"],
    )
    if result.size != export.size or result.root != export.root:
        raise RuntimeError(f"{mode} verification gave {result.size} entries and another root")
    return result


_MODES = (
    (
        "default",
        "ledger.export_scan",
        (
            "`govex ledger verify --export F --checkpoint C --key K`: JSON, seq, prev, leaf hashes and "
            "the signed root (FORMATS section 3), on every CPU"
        ),
    ),
    (
        "default-1",
        "ledger.export_scan",
        "the same with `--jobs 1` (one process)",
    ),
    (
        "full",
        "ledger.anchor",
        "`--full`: also each entry's canonical bytes and schema (one process)",
    ),
)


def section(work: Path, entries: int = ENTRIES) -> tuple[str, str]:
    """Write the export under ``work`` and verify it each way: ``(markdown, verdict line)``."""
    print("offline verification", flush=True)
    export = write_export(work / "ledger-export.jsonl", entries)
    file_bytes = export.path.stat().st_size
    megabytes = file_bytes / 1e6
    signer = SignerKey.generate(ORIGIN)
    checkpoint = work / "checkpoint.txt"
    checkpoint.write_text(sign_checkpoint(Checkpoint(ORIGIN, export.size, export.root), signer))
    rows: list[str] = []
    rates: dict[str, float] = {}
    for mode, module, label in _MODES:
        if importlib.util.find_spec(module) is None:
            rows.append(f"| {label} | skipped: no `{module}` in this tree | | | | |")
            continue
        result = verify_in_child(mode, export, str(checkpoint), signer.verifier_key.text())
        rates[mode] = result.rate
        met = "**met**" if result.rate >= TARGET else "**NOT met**"
        rows.append(
            f"| {label} | {result.rate:,.0f} | {result.seconds:.1f} s "
            f"({megabytes / result.seconds:.0f} MB/s) | {result.rss_start_kb / 1024:.0f} MB "
            f"-> {result.rss_peak_kb / 1024:.0f} MB, workers {result.rss_workers_kb / 1024:.0f} MB"
            f" | >= {TARGET:,}/s: {met} |"
        )
        print(f"  {rows[-1]}", flush=True)
    export.path.unlink()  # about a gigabyte
    text = (
        f"An export of {export.size:,} entries ({megabytes:,.0f} MB, "
        f"{file_bytes / export.size:,.0f} bytes per entry on average), "
        f"written in {export.seconds:.1f} s; each verification in a fresh process, anchored "
        "to a signed checkpoint of the whole export; every one must give the export's own "
        "root.\n\n"
        "| verification | entries/s | time | peak RSS (after imports -> end; largest worker) "
        "| target (2 cores) |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    default = rates.get("default", 0.0)
    figures = ", ".join(f"{mode} {rate:,.0f}/s" for mode, rate in rates.items())
    outcome = "met" if default >= TARGET else "NOT met"
    line = (
        f"offline verification of a {export.size:,}-entry export: {figures}; target "
        f">= {TARGET:,}/s: **{outcome}** by `govex ledger verify --export` (default checks)"
    )
    return text, line


def _child(mode: str, path: Path, extra: list[str]) -> dict[str, object]:
    """The fresh process: verify ``path`` in ``mode`` and measure it."""
    from ledger.anchor import anchor_scan, verify_anchored  # noqa: PLC0415
    from ledger.checkpoint import open_checkpoint  # noqa: PLC0415
    from ledger.export_scan import scan_export  # noqa: PLC0415
    from ledger.keys import parse_verifier_key  # noqa: PLC0415
    from ledger.verify import export_leaf_inputs  # noqa: PLC0415

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    checkpoint_file, key_text = extra
    checkpoint = open_checkpoint(Path(checkpoint_file).read_bytes(), parse_verifier_key(key_text))
    if mode == "full":
        with path.open("rb") as lines:
            anchored = verify_anchored(export_leaf_inputs(lines), [checkpoint])
    elif mode in {"default", "default-1"}:
        jobs = 1 if mode == "default-1" else None
        anchored = anchor_scan(scan_export(path, [checkpoint.size], jobs=jobs), [checkpoint])
    else:
        raise ValueError(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - t0
    if anchored.status != "anchored" or anchored.anchored_size != anchored.size:
        raise RuntimeError(f"not anchored at the full size: {anchored}")
    return {
        "seconds": seconds,
        "size": anchored.size,
        "root": anchored.root.hex(),
        "rss_start_kb": rss_start,
        "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_workers_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    }


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])))
