"""Offline verification of a 1,000,000-entry ledger export: entries/s and peak memory.

The export is generated once, straight from :mod:`ledger.entry` (not through
a store): a ``service.started`` entry, then calls of a ``call.started`` (the
whole Call Contract) and a ``call.finished``, with a valid hash chain. Each
body is canonicalized once per call shape and its call id written into the
canonical bytes (same length, plain ASCII: still canonical), so generating a
million entries takes seconds; the verifier re-derives everything and would
refuse a single wrong byte.

Each verification runs in a fresh process, reading the file as the CLI does
(``open(path, "rb")``, one line at a time), so its peak RSS shows that memory
does not grow with the ledger. Modes:

- ``full``: :func:`ledger.verify.verify_entries`, every check on every line
  (JSON, canonical bytes, entry schema, seq, prev) plus the RFC 9162 root;
- ``anchored``: what ``govex ledger verify --export F --checkpoint C --key K``
  runs: the signed checkpoint opened with the verifier key, then
  :func:`ledger.anchor.verify_anchored` (the full checks, and the root at the
  checkpoint's size must be the signed one);
- ``scan``: :func:`ledger.chain_scan.scan_chain`, the chain and tree only, on
  the exact bytes without parsing JSON (framing, seq, prev, leaf hashes,
  root); the bodies' JSON and schema are not checked.

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
    )
    if result.size != export.size or result.root != export.root:
        raise RuntimeError(f"{mode} verification gave {result.size} entries and another root")
    return result


_MODES = (
    (
        "full",
        "ledger.verify",
        "`verify_entries`: every check (JSON, canonical bytes, schema, seq, prev) and the root",
    ),
    (
        "anchored",
        "ledger.anchor",
        "against a signed checkpoint: `open_checkpoint` + `verify_anchored` (the full checks, and the root at the checkpoint's size), as `govex ledger verify --checkpoint --key` does",
    ),
    (
        "scan",
        "ledger.chain_scan",
        "`scan_chain`: the chain and tree only, on the bytes (framing, seq, prev, leaf hashes, root); bodies not parsed",
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
        extra = (str(checkpoint), signer.verifier_key.text()) if mode == "anchored" else ()
        result = verify_in_child(mode, export, *extra)
        rates[mode] = result.rate
        met = "**met**" if result.rate >= TARGET else "**NOT met**"
        rows.append(
            f"| {label} | {result.rate:,.0f} | {result.seconds:.1f} s "
            f"({megabytes / result.seconds:.0f} MB/s) | {result.rss_start_kb / 1024:.0f} MB "
            f"-> {result.rss_peak_kb / 1024:.0f} MB | >= {TARGET:,}/s: {met} |"
        )
        print(f"  {rows[-1]}", flush=True)
    export.path.unlink()  # about a gigabyte
    text = (
        f"An export of {export.size:,} entries ({megabytes:,.0f} MB, "
        f"{file_bytes / export.size:,.0f} bytes per entry on average), "
        f"written in {export.seconds:.1f} s; each verification in a fresh process reading "
        "it line by line; every one must give the export's own root.\n\n"
        "| verification | entries/s | time | peak RSS (after imports -> end) | target (2 cores) |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    full = rates.get("full", 0.0)
    figures = ", ".join(f"{mode} {rate:,.0f}/s" for mode, rate in rates.items())
    outcome = "met" if full >= TARGET else "NOT met"
    line = (
        f"offline verification of a {export.size:,}-entry export: {figures}; target "
        f">= {TARGET:,}/s: **{outcome}** by full verification"
    )
    if "scan" in rates:
        scan = "met" if rates["scan"] >= TARGET else "not met"
        line += f" ({scan} by the chain-only scan)"
    return text, line


def _child(mode: str, path: Path, extra: list[str]) -> dict[str, object]:
    """The fresh process: verify ``path`` in ``mode`` and measure it."""
    from ledger.anchor import verify_anchored  # noqa: PLC0415
    from ledger.chain_scan import scan_chain  # noqa: PLC0415
    from ledger.checkpoint import open_checkpoint  # noqa: PLC0415
    from ledger.keys import parse_verifier_key  # noqa: PLC0415
    from ledger.verify import export_leaf_inputs, verify_entries  # noqa: PLC0415

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with path.open("rb") as lines:
        if mode == "full":
            report = verify_entries(lines)
            size, root = report.size, report.root
        elif mode == "scan":
            scanned = scan_chain(lines)
            size, root = scanned.size, scanned.root
        elif mode == "anchored":
            checkpoint_file, key_text = extra
            checkpoint = open_checkpoint(
                Path(checkpoint_file).read_bytes(), parse_verifier_key(key_text)
            )
            anchored = verify_anchored(export_leaf_inputs(lines), [checkpoint])
            if anchored.status != "anchored" or anchored.anchored_size != anchored.size:
                raise RuntimeError(f"not anchored at the full size: {anchored}")
            size, root = anchored.size, anchored.root
        else:
            raise ValueError(f"unknown mode {mode!r}")
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "size": size,
        "root": root.hex(),
        "rss_start_kb": rss_start,
        "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])))
