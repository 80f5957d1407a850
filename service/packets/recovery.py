"""Staging leftovers at start-up: publish what the ledger issued, remove or quarantine the rest.

A builder (:mod:`service.packets.build`) that died, however it died, leaves under
``packet_root/.staging`` some of: its bag folder ``<id>/``, its zip ``<id>.zip`` and its lock
file. Whether the zip is kept follows the ledger, the evidence, never the file alone:

- bag folder: scratch (read into the zip, never relied on), removed;
- zip whose ``packet.issued`` (same packet id) is durable and which verifies in full against
  the manifest hash that entry records: **published** (renamed into the packet root, the
  folders fsynced). The crash came between the ledger entry and the rename; the ledger
  said the packet was issued, so it is made visible, and the ledger stays true;
- zip with no ``packet.issued``, or whose packet a ``packet.removed`` took back: **removed**.
  It was never issued, so never visible and never acknowledged;
- zip that cannot be read (a crash while it was written), or that is issued but does not
  verify against the issued hash: **quarantined**, moved to ``packet_root/.quarantine/``
  and logged. Not published (it is not what the ledger issued), not destroyed (an
  operator decides). A half-written zip was never issued (a zip is fsynced whole before its
  ``packet.issued`` is appended), so nothing false is in the ledger.

A packet whose builder is alive, in this process or another worker, holds its lock
(:mod:`service.packets.staging_lock`) and is left alone. Runs in ``build_runtime``, once
the ledger is open (it replaced ``clean_staging``, which removed every leftover, issued or
not).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from catalog.authority import AuthorityStatus
from catalog.digest import DigestSet
from catalog.ids import is_opaque_id
from service.ledger_scan import entries_after
from service.packets.build import STAGING, fsync_dir, staging_owner
from service.packets.staging_lock import LOCK_SUFFIX, StagingLock
from service.packets.verify import verify_packet_file

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy import Engine

_log = structlog.get_logger("govex.packets")
QUARANTINE = ".quarantine"
_MANIFEST_LIMIT = 16 << 20  # packet.json of a staged zip read for its call seq: bounded


@dataclass(frozen=True)
class Issued:
    """What the ledger says of one packet: the manifest hash it issued; whether it was removed."""

    manifest_hash: DigestSet
    removed: bool


IssuedLookup = Callable[[str, int], Issued | None]
"""``(packet_id, from_seq)`` -> the ledger's word on that packet (entries after ``from_seq``)."""


@dataclass(frozen=True)
class StagingRecovery:
    """What start-up did with the staging leftovers of builders that died (names, sorted)."""

    published: tuple[str, ...] = ()  # packet ids made visible: their packet.issued is durable
    removed: tuple[str, ...] = ()  # staging names removed (bag folders, unissued zips)
    quarantined: tuple[str, ...] = ()  # names moved to .quarantine/


def ledger_lookup(engine: Engine) -> IssuedLookup:
    """An :data:`IssuedLookup` reading the ledger in ``engine``'s database."""

    def issued(packet_id: str, from_seq: int) -> Issued | None:
        found: DigestSet | None = None
        removed = False
        for entry in entries_after(engine, ("packet.issued", "packet.removed"), from_seq):
            if entry.body.get("packet_id") != packet_id:
                continue
            if entry.kind == "packet.issued":
                found = DigestSet.model_validate(entry.body["manifest_hash"])
            else:
                removed = True
        return None if found is None else Issued(found, removed)

    return issued


def recover_staging(packet_root: Path, issued: IssuedLookup) -> StagingRecovery:
    """Settle what builders that died left staged (see the module docstring)."""
    staging = packet_root / STAGING
    if not staging.is_dir():
        return StagingRecovery()
    published: list[str] = []
    removed: list[str] = []
    quarantined: list[str] = []
    for packet_id in sorted({staging_owner(child.name) for child in staging.iterdir()}):
        lock = StagingLock.take(staging / f"{packet_id}{LOCK_SUFFIX}")
        if lock is None:
            continue  # a live builder's
        try:
            bag = staging / packet_id
            if bag.is_dir() and not bag.is_symlink():
                shutil.rmtree(bag)
                removed.append(bag.name)
            elif bag.exists() or bag.is_symlink():
                bag.unlink()
                removed.append(bag.name)
            staged = staging / f"{packet_id}.zip"
            if staged.exists() or staged.is_symlink():
                fate = _settle_zip(packet_root, packet_id, staged, issued)
                if fate == "published":
                    published.append(packet_id)
                elif fate == "removed":
                    removed.append(staged.name)
                else:
                    quarantined.append(staged.name)
        finally:
            lock.release()
    fsync_dir(staging)
    recovery = StagingRecovery(tuple(published), tuple(sorted(removed)), tuple(quarantined))
    if published or quarantined:
        _log.warning(
            "packets.recovered",
            published=recovery.published,
            quarantined=recovery.quarantined,
            removed=len(removed),
        )
    return recovery


def _settle_zip(packet_root: Path, packet_id: str, staged: Path, issued: IssuedLookup) -> str:
    """Private: publish, remove or quarantine one staged zip; which it was."""
    call_seq = _call_seq(staged, packet_id) if is_opaque_id(packet_id) else None
    if call_seq is None:
        _quarantine(packet_root, staged, "the staged zip cannot be read (written partly?)")
        return "quarantined"
    verdict = issued(packet_id, call_seq)
    if verdict is None or verdict.removed:
        staged.unlink()
        return "removed"
    report = verify_packet_file(
        staged,
        expect_manifest_hash=verdict.manifest_hash,
        require_authority=AuthorityStatus.provisional,  # any: the ledger issued it as it was
    )
    if not report.ok:
        _quarantine(packet_root, staged, f"issued, but it does not verify: {report.summary_text}")
        return "quarantined"
    final = packet_root / f"{packet_id}.zip"
    if final.exists():  # a rename that landed cannot leave the source too; keep what is visible
        _quarantine(packet_root, staged, "issued, and a published zip of that id exists")
        return "quarantined"
    staged.replace(final)
    fsync_dir(packet_root)
    return "published"


def _call_seq(staged: Path, packet_id: str) -> int | None:
    """Private: ``ledger.call_seq`` of the staged zip's packet.json; None when unreadable."""
    try:
        with zipfile.ZipFile(staged) as archive:
            info = archive.getinfo(f"{packet_id}/packet.json")
            if info.file_size > _MANIFEST_LIMIT:
                return None
            manifest = json.loads(archive.read(info))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, EOFError):
        return None
    ledger = manifest.get("ledger") if isinstance(manifest, dict) else None
    seq = ledger.get("call_seq") if isinstance(ledger, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 else None


def _quarantine(packet_root: Path, staged: Path, reason: str) -> None:
    """Private: move ``staged`` to ``.quarantine/`` (never over another file) and log why."""
    folder = packet_root / QUARANTINE
    folder.mkdir(exist_ok=True)
    target = folder / staged.name
    number = 1
    while target.exists():
        number += 1
        target = folder / f"{staged.name}.{number}"
    staged.replace(target)
    fsync_dir(folder)
    _log.error("packet.quarantined", name=staged.name, moved_to=str(target), reason=reason)
