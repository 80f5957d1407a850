"""What the console holds for the life of the app: its keys, the keys file, the templates.

Built once by :func:`service.console.mount.mount_console` (when the app is built, never at
import) and kept on ``app.state.console``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.console.errors import ConsoleUnavailable

if TYPE_CHECKING:
    from service.console.key_records import KeyRecords
    from service.console.render import Renderer
    from service.console.session_key import SessionKeys


@dataclass(frozen=True)
class ConsoleState:
    """The session keys (None: sign-in is off, ``off_reason`` says why) and the rest."""

    keys: SessionKeys | None
    off_reason: str
    off_where: str
    records: KeyRecords
    ttl_s: int
    renderer: Renderer

    def require_keys(self) -> SessionKeys:
        """The session keys; :class:`ConsoleUnavailable` (503) when sign-in is off."""
        if self.keys is None:
            raise ConsoleUnavailable(self.off_reason, where=self.off_where)
        return self.keys
