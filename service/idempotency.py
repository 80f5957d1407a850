"""``Idempotency-Key`` on ``POST /v1/calls``: a retried request gets the call it started.

A key is a principal's own (two principals may use the same key). The first request
with a key binds it to the call it starts and to the digest of the request (JCS of
entry, params, mode and format), in ``govex_idempotency`` (inserted and read only). A
later request with the key and the same digest gets that call back instead of running
again; with another digest it is refused (``idempotency_key_reused``, 422). The binding
is made after every check passed and just before ``call.started``, so a refused request
binds nothing and two racing requests start one call: the loser of the insert gets the
winner's call.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from catalog.canonical import jcs
from ledger.sql_session import WRITE_OPTION, storage_error
from service.errors import IdempotencyKeyReused, InvalidIdempotencyKey

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from service.contract import CallRequest

_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, as HTTP header tokens are

_metadata = MetaData()
idempotency_table = Table(
    "govex_idempotency",
    _metadata,
    Column("principal", String(200), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    Column("call_id", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
)


@dataclass(frozen=True)
class IdempotentRequest:
    """A principal's key and the digest of the request it came with."""

    principal: str
    key: str
    request_sha256: str

    @classmethod
    def of(cls, principal: str, key: str, request: CallRequest) -> IdempotentRequest:
        """Raises :class:`InvalidIdempotencyKey` for an empty, long or non-ASCII key."""
        if not _KEY.fullmatch(key):
            raise InvalidIdempotencyKey(
                "Idempotency-Key must be 1 to 200 visible ASCII characters", where="Idempotency-Key"
            )
        digest = hashlib.sha256(jcs(request.model_dump(mode="json"), "request")).hexdigest()
        return cls(principal, key, digest)


class IdempotencyKeys:
    """Bindings of (principal, key) to a call, in the ledger's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})

    def bound_call(self, request: IdempotentRequest) -> str | None:
        """The call ``request``'s key started, or None; refuses a key reused for another request.

        Raises :class:`IdempotencyKeyReused` when the key is bound to a different request.
        """
        table = idempotency_table
        statement = select(table.c.request_sha256, table.c.call_id).where(
            table.c.principal == request.principal, table.c.idempotency_key == request.key
        )
        try:
            with self._engine.connect() as conn:
                row = conn.execute(statement).first()
        except DBAPIError as exc:
            raise storage_error(exc, "idempotency keys") from exc
        if row is None:
            return None
        if row.request_sha256 != request.request_sha256:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {request.key!r} was used for a different request (call "
                f"{row.call_id}); use a new key for a new request",
                where="Idempotency-Key",
            )
        return str(row.call_id)

    def bind(self, request: IdempotentRequest, call_id: str, created_at: str) -> str:
        """Bind the key to ``call_id``; returns the call the key is bound to (another on a race)."""
        values = {
            "principal": request.principal,
            "idempotency_key": request.key,
            "request_sha256": request.request_sha256,
            "call_id": call_id,
            "created_at": created_at,
        }
        try:
            with self._writer.begin() as conn:
                conn.execute(insert(idempotency_table).values(**values))
        except IntegrityError:
            bound = self.bound_call(request)
            if bound is None:  # pragma: no cover - a conflicting row cannot vanish
                raise
            return bound
        except DBAPIError as exc:
            raise storage_error(exc, "idempotency keys") from exc
        return call_id
