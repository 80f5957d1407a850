"""The corpora as data: ``corpus/mutating.toml`` and ``corpus/known_good.toml``, checked on load.

A record with a typo'd key, an unknown engine or rule, or a duplicate id fails the load,
so a corpus edit cannot silently drop a case.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from catalog.sqlcheck import RULES

CORPUS = Path(__file__).resolve().parent / "corpus"
SEAL_VAR = "/var/lib/govex/var"  # what `{var}` reads as when the corpus is sealed
RAN = "ran"

Engine = Literal["postgresql", "sqlite"]
_BOTH: tuple[Engine, ...] = ("postgresql", "sqlite")
_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Mutating(BaseModel):
    """One statement that could change state; refused at seal, harmless at the boundary."""

    model_config = _STRICT

    id: str = Field(pattern=r"^(pg|sq)-[a-z0-9-]+$")
    engine: Engine
    threat: str = Field(min_length=1)
    sql: str = Field(min_length=1)
    rule: str
    detail: str = Field(min_length=1)
    boundary: str = Field(min_length=1)
    boundary_copy: str | None = None  # PostgreSQL's COPY path, where its refusal differs
    soak: bool = False  # at the boundary in `make soak` only: `make test` runs one like it

    @model_validator(mode="after")
    def _known_rule(self) -> Mutating:
        if self.rule not in RULES:
            raise ValueError(f"{self.id}: unknown rule {self.rule!r}")
        if self.id.startswith("pg-") != (self.engine == "postgresql"):
            raise ValueError(f"{self.id}: the id prefix does not match engine {self.engine}")
        return self

    def text(self, var: str) -> str:
        """The SQL, aimed at the folder ``var``."""
        return self.sql.replace("{var}", var)

    def expected(self, *, copy: bool) -> str:
        """What the boundary should say: :data:`RAN`, or a substring of its error."""
        return self.boundary_copy if copy and self.boundary_copy else self.boundary


class KnownGood(BaseModel):
    """One ordinary analytical query: accepted at seal, and correct through the boundary.

    ``sql`` runs on both engines unless ``postgresql`` or ``sqlite`` gives an engine its own
    text (or ``engines`` names one engine only). ``same_rows``: both engines must return the
    same rows. ``expect``: the first rows, as written (an independent oracle).
    """

    model_config = _STRICT

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    feature: str = Field(min_length=1)
    sql: str | None = None
    postgresql: str | None = None
    sqlite: str | None = None
    engines: list[Engine] = Field(default_factory=lambda: list(_BOTH))
    params: dict[str, int | str] = Field(default_factory=dict)
    same_rows: bool = False
    expect: list[list[int | float | str | bool | None]] | None = None

    @model_validator(mode="after")
    def _has_text(self) -> KnownGood:
        for engine in self.engines:
            if self.text(engine) is None:
                raise ValueError(f"{self.id}: no SQL for {engine}")
        if self.same_rows and len(self.engines) != 2:  # both engines
            raise ValueError(f"{self.id}: same_rows needs both engines")
        return self

    def text(self, engine: Engine) -> str | None:
        own = self.postgresql if engine == "postgresql" else self.sqlite
        return own if own is not None else self.sql

    def param_types(self) -> dict[str, str]:
        """Each parameter's catalog type, read off its value: integer, date or string."""
        return {
            name: "integer"
            if isinstance(value, int)
            else "date"
            if _DATE.fullmatch(value)
            else "string"
            for name, value in self.params.items()
        }


class _MutatingFile(BaseModel):
    model_config = _STRICT
    statement: list[Mutating]


class _KnownGoodFile(BaseModel):
    model_config = _STRICT
    query: list[KnownGood]


def _unique(ids: list[str], name: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"{name}: id {i} is used twice")
        seen.add(i)


@cache
def mutating() -> tuple[Mutating, ...]:
    """Every record of ``corpus/mutating.toml``, in file order."""
    doc = tomllib.loads((CORPUS / "mutating.toml").read_text(encoding="utf-8"))
    records = _MutatingFile.model_validate(doc).statement
    _unique([r.id for r in records], "mutating.toml")
    return tuple(records)


@cache
def known_good() -> tuple[KnownGood, ...]:
    """Every record of ``corpus/known_good.toml``, in file order."""
    doc = tomllib.loads((CORPUS / "known_good.toml").read_text(encoding="utf-8"))
    records = _KnownGoodFile.model_validate(doc).query
    _unique([r.id for r in records], "known_good.toml")
    return tuple(records)
