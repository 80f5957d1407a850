"""Staging locks: a builder creates its own; a cleaner takes whatever lock file it finds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from service.packets.build import PacketBuilder
from service.packets.staging_lock import StagingLock

if TYPE_CHECKING:
    from pathlib import Path

PACKET_ID = "01JLOCKAAAAAAAAAAAAAAAAAAA"


def test_a_created_lock_is_held_until_released_and_then_gone(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    lock = StagingLock.create(path)
    assert lock is not None
    assert StagingLock.take(path) is None  # held: a cleaner leaves it alone
    assert StagingLock.create(path) is None  # and no second builder gets it
    lock.release()
    assert not path.exists()
    taken = StagingLock.take(path)  # a cleaner's take creates a missing file
    assert taken is not None
    taken.release()


def test_creating_over_a_dead_builders_lock_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.lock"
    path.write_bytes(b"")  # left by a builder that died: unlocked, not yet recovered
    assert StagingLock.create(path) is None
    cleaner = StagingLock.take(path)
    assert cleaner is not None
    cleaner.release()


def test_create_needs_its_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        StagingLock.create(tmp_path / "absent" / "a.lock")


def test_a_builder_makes_the_staging_folder_it_needs_even_if_removed_meanwhile(
    tmp_path: Path,
) -> None:
    first = PacketBuilder(tmp_path, PACKET_ID)
    first.discard()
    (tmp_path / ".staging").rmdir()  # an operator cleared it between two packets
    second = PacketBuilder(tmp_path, PACKET_ID)
    assert (tmp_path / ".staging" / f"{PACKET_ID}.lock").is_file()
    second.discard()
    assert list((tmp_path / ".staging").iterdir()) == []
