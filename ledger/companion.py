"""Companion writes: a caller's own row write that commits in the same transaction as its entries.

The service keeps tables beside the ledger (the call index) whose rows follow ledger
entries: a call's row says ``created`` once ``call.started`` is durable, ``completed``
once ``call.finished`` is. Written in a transaction of their own, they cost a commit
(an fsync) each, and a crash between the two leaves them apart. A :class:`Companion`
rides the append instead: its statement runs after the batch's rows are inserted and
before the commit, with values that may use the seqs its entries were given. Both land,
or neither does; and when a companion write fails, its whole batch fails (nothing of a
failed batch is acknowledged), so companions are for the service's own, well-formed
writes, never for input a client shaped.

Statements are written with SQLite's named parameters (``:name``); the appender passes
them to psycopg as ``%(name)s``. The ledger never looks inside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ledger.entry import Entry

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Companion:
    """A write that commits with the entries of one submission (``append``, ``append_many``).

    ``statement`` uses ``:name`` parameters; ``values(entries)`` gives them, called with
    the submission's entries as stored (seqs assigned) inside the append transaction: it
    must be quick and must not raise.
    """

    statement: str
    values: Callable[[Sequence[Entry]], Mapping[str, Any]]


@lru_cache(maxsize=64)
def pyformat(statement: str) -> str:
    """``statement`` with psycopg's ``%(name)s`` parameters in place of ``:name`` ones."""
    return _NAMED.sub(r"%(\1)s", statement.replace("%", "%%"))
