"""What the benchmarks ran on, read from the system: CPU, cores, memory, disk, versions."""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

_MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB RAM"
    return "unknown RAM"


def mount_of(path: Path) -> tuple[str, str, str]:
    """``(device, filesystem type, mount point)`` holding ``path`` (the longest mount prefix)."""
    resolved = str(path.resolve())
    best = ("?", "?", "/")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, point, fstype = line.split()[:3]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[2]):
            best = (device, fstype, point)
    return best


def on_disk_tempdir() -> Path:
    """A temporary-files folder on a real disk (not tmpfs): the durability figures need one."""
    for candidate in (Path(tempfile.gettempdir()), Path("/var/tmp")):  # noqa: S108 - mkdtemp makes private folders in it
        if candidate.is_dir() and mount_of(candidate)[1] not in _MEMORY_FILESYSTEMS:
            return candidate
    raise RuntimeError("no temporary folder on a disk: /tmp and /var/tmp are both in memory")


def _block_device(device: str) -> str:
    """Size and kind of the block device behind ``/dev/<name>``, from /sys/block."""
    name = Path(device).name
    sys_block = Path("/sys/block") / name
    if not sys_block.is_dir():
        return device
    size_gib = int((sys_block / "size").read_text()) * 512 / 2**30
    facts = [f"{size_gib:,.0f} GiB"]
    if name.startswith("vd"):
        facts.append("virtio block device")
    model = sys_block / "device" / "model"
    if model.is_file():
        facts.append(model.read_text().strip())
    cache = sys_block / "queue" / "write_cache"
    if cache.is_file():
        facts.append(f"write cache: {cache.read_text().strip()}")
    return f"{device} ({', '.join(facts)})"


def fsync_latency_ms(folder: Path, rounds: int = 200) -> tuple[float, float]:
    """Median and p99 milliseconds of ``fsync`` after a 4 KiB write of a file in ``folder``."""
    path = folder / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    samples: list[float] = []
    try:
        for i in range(rounds):
            os.pwrite(fd, b"x" * 4096, i * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        path.unlink()
    samples.sort()
    return samples[len(samples) // 2] * 1000, samples[int(len(samples) * 0.99)] * 1000


def describe(work: Path) -> dict[str, str]:
    """The machine and library versions, for the top of docs/benchmarks.md."""
    device, fstype, point = mount_of(work)
    fsync_p50, fsync_p99 = fsync_latency_ms(work)
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in (
            "sqlalchemy",
            "psycopg",
            "blake3",
            "rfc8785",
            "orjson",
            "pysimdjson",
            "pydantic",
            "fastapi",
        )
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{_cpu()}, {os.cpu_count()} cores, {_memory()}, {platform.system()} {platform.release()}",
        "disk (benchmark temp files)": (
            f"{_block_device(device)}, {fstype} on {point}; fsync of a 4 KiB write: "
            f"{fsync_p50:.2f} ms median, {fsync_p99:.2f} ms p99"
        ),
        "python": platform.python_version(),
        "sqlite library": sqlite3.sqlite_version,
        "libraries": versions,
    }
