"""Authority status of what a service runs: provisional < sealed < governed."""

from __future__ import annotations

from enum import StrEnum


class AuthorityStatus(StrEnum):
    """FORMATS section 2 authority levels, ordered lowest to highest."""

    provisional = "provisional"
    sealed = "sealed"
    governed = "governed"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, required: AuthorityStatus) -> bool:
        return self.rank >= required.rank


_RANK = {AuthorityStatus.provisional: 0, AuthorityStatus.sealed: 1, AuthorityStatus.governed: 2}
