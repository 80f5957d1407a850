"""The API keys file's records by key id, read again whenever the file changes.

A console session names the API key it was opened with (never its token). Each request
looks the key up again here, so ``govex keys revoke`` (or removing or replacing the key)
ends its sessions at once, and a change of roles or tenant applies at the next page. It
follows the file as :class:`service.identity.ApiKeyring` does (device, inode, size,
mtime), and fails closed the same way: while the file cannot be loaded, no key is found.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from service.api_keys import read_keys_file
from service.file_stamp import FileStamp, file_stamp

if TYPE_CHECKING:
    from pathlib import Path

    from service.api_keys import KeyRecord


class KeyRecords:
    """Records of one keys file by key id; thread-safe."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: FileStamp | None = None
        self._loaded = False
        self._by_id: dict[str, KeyRecord] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> KeyRecord | None:
        """The record of ``key_id`` as the file holds it now; None when it holds none.

        Raises ``service.errors.ConfigurationError`` while the file cannot be loaded (fail
        closed: an operator must fix it, and no session can be checked meanwhile).
        """
        stamp = file_stamp(self._path)
        with self._lock:
            if not self._loaded or stamp != self._stamp:
                self._stamp = stamp
                self._loaded = False
                parsed = read_keys_file(self._path)  # ConfigurationError goes up
                self._by_id = {record.key_id: record for record in parsed.keys}
                self._loaded = True
            return self._by_id.get(key_id)
