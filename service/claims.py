"""How one run judges its entry's claim: a verdict, and why when it proves nothing (pure).

A claim (``catalog.model.Claim``) states what a query finds, ``expect``: ``"empty"`` (no
row) or a row-count bound (``min_rows``, ``max_rows``), over a ``surface``: ``exhaustive``
(the query reads everything the claim is about) or ``scoped`` (part of it). The verdict
is one of FORMATS section 4's three:

- ``EVIDENCE_PRESENT``: ``expect = "empty"`` and the packet holds rows. Rows in hand are
  evidence whatever the surface, completeness or snapshot.
- ``ABSENT``: what the claim rules out is proven absent: no row (``empty``), or a row
  count inside the bound. Only a proving run gives it: exhaustive surface, ``ran_clean``
  with its packet, complete (no row or byte limit cut it), on a read-only snapshot with
  nothing hidden by row security.
- ``NOT_EVIDENCED``: neither, with a ``reason``.

The rules, in order; the first that applies decides:

1. no packet (the run did not end ``ran_clean``): ``timed_out`` when it stopped at its
   deadline; ``row_security`` when PostgreSQL refused the statement because row security
   would filter rows of a table it reads (``row_security = off`` makes that an error
   rather than fewer rows); ``error`` otherwise (an engine error, a cancellation);
2. more rows than the claim allows (``max_rows``; ``empty`` allows none):
   ``EVIDENCE_PRESENT`` for ``empty``, ``NOT_EVIDENCED``/``bound_exceeded`` for a bound
   (a bound tolerates rows, so rows are not evidence against it until they pass it);
3. ``scoped_surface``: the entry reads part of what the claim is about;
4. ``truncated``: ``max_rows`` or ``max_bytes`` cut the result;
5. ``row_security``: a PostgreSQL run without ``row_security_off`` in its boundary, where
   a policy could hide rows silently;
6. ``no_snapshot``: the boundary states no read-only snapshot (see :func:`is_snapshot`);
7. ``bound_not_met``: fewer rows than ``min_rows``;
8. otherwise ``ABSENT``.

Deny by default: a run that is not shown to prove the claim does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.packets.manifest import Claim as ClaimVerdictRecord
from service.packets.manifest import ClaimBound
from service.verdicts import Verdict

if TYPE_CHECKING:
    from collections.abc import Callable

    from catalog.model import Claim
    from service.packets.manifest import ClaimReason, ClaimVerdict

POSTGRES_SNAPSHOT = frozenset({"read_only_transaction", "serializable_deferrable"})
"""Boundary controls of a PostgreSQL run on one serializable read-only snapshot."""
SQLITE_SNAPSHOT = frozenset({"mode=ro", "query_only", "read_transaction"})
"""Boundary controls of a SQLite run on one snapshot: a read-only connection whose one
statement runs inside one read transaction (SQLite gives a read transaction one view of
the database from its first read to its end: no write commits in between)."""


@dataclass(frozen=True)
class RunFacts:
    """What a run gives its claim to judge.

    ``rows`` counts the rows of the packet's result file; ``None`` when no packet is
    issued. ``engine`` and ``controls`` are the contract's boundary. ``row_security``
    says the engine refused the statement because row security would filter rows.
    """

    verdict: Verdict
    rows: int | None
    complete: bool
    engine: str
    controls: tuple[str, ...]
    row_security: bool = False


def is_snapshot(engine: str, controls: tuple[str, ...]) -> bool:
    """Whether a run with this boundary read one read-only snapshot (no other engine does)."""
    if engine == "postgresql":
        return set(controls) >= POSTGRES_SNAPSHOT
    if engine == "sqlite":
        return set(controls) >= SQLITE_SNAPSHOT
    return False


def judge_claim(claim: Claim, facts: RunFacts) -> ClaimVerdictRecord:
    """The verdict ``facts`` give ``claim``, with its reason (the module's rules, in order)."""
    verdict, reason = _decide(claim, facts)
    expect = claim.expect if isinstance(claim.expect, str) else ClaimBound.of(claim.expect)
    return ClaimVerdictRecord(expect=expect, surface=claim.surface, verdict=verdict, reason=reason)


@dataclass(frozen=True)
class _Case:
    """Private: the run's facts and the claim's bounds, as the rules read them."""

    facts: RunFacts
    surface: str
    empty: bool  # expect = "empty": no row allowed
    max_rows: int | None
    min_rows: int | None

    @property
    def issued(self) -> bool:
        """A packet holds the result of a run that ended ``ran_clean``."""
        return self.facts.rows is not None and self.facts.verdict is Verdict.ran_clean

    @property
    def rows(self) -> int:
        return self.facts.rows or 0

    @property
    def over(self) -> bool:
        """More rows than the claim allows (seen in the packet)."""
        return self.issued and self.max_rows is not None and self.rows > self.max_rows


_Rule = tuple["Callable[[_Case], bool]", "ClaimVerdict", "ClaimReason | None"]
# The module docstring's rules, in order: the first whose test holds decides.
_RULES: tuple[_Rule, ...] = (
    (lambda c: not c.issued and c.facts.verdict is Verdict.timed_out, "NOT_EVIDENCED", "timed_out"),
    (lambda c: not c.issued and c.facts.row_security, "NOT_EVIDENCED", "row_security"),
    (lambda c: not c.issued, "NOT_EVIDENCED", "error"),
    (lambda c: c.over and c.empty, "EVIDENCE_PRESENT", None),
    (lambda c: c.over, "NOT_EVIDENCED", "bound_exceeded"),
    (lambda c: c.surface != "exhaustive", "NOT_EVIDENCED", "scoped_surface"),
    (lambda c: not c.facts.complete, "NOT_EVIDENCED", "truncated"),
    (
        lambda c: c.facts.engine == "postgresql" and "row_security_off" not in c.facts.controls,
        "NOT_EVIDENCED",
        "row_security",
    ),
    (lambda c: not is_snapshot(c.facts.engine, c.facts.controls), "NOT_EVIDENCED", "no_snapshot"),
    (
        lambda c: c.min_rows is not None and c.rows < c.min_rows,
        "NOT_EVIDENCED",
        "bound_not_met",
    ),
)


REASONS: frozenset[ClaimReason] = frozenset(reason for _, _, reason in _RULES if reason)
"""Every reason a verdict can carry: exactly the rules' (``ClaimReason``; a test holds them
equal, and docs/formats.md documents each)."""


def _decide(claim: Claim, facts: RunFacts) -> tuple[ClaimVerdict, ClaimReason | None]:
    """Private: the first rule that holds; when none does, the run proves the claim."""
    bound = None if isinstance(claim.expect, str) else claim.expect
    case = _Case(
        facts=facts,
        surface=claim.surface,
        empty=bound is None,
        max_rows=0 if bound is None else bound.max_rows,
        min_rows=None if bound is None else bound.min_rows,
    )
    for test, verdict, reason in _RULES:
        if test(case):
            return verdict, reason
    return "ABSENT", None
