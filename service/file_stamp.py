"""What changes when a followed file (API keys, JWT keys) is replaced or rewritten."""

from __future__ import annotations

from pathlib import Path

FileStamp = tuple[int, int, int, int]


def file_stamp(path: Path) -> FileStamp | None:
    """Device, inode, size and mtime (ns) of ``path``; None when it is gone or unreadable."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
