"""The ledger's SQL store (I/O): append-only rows of exact entry bytes, and checkpoints.

Tables (created by :mod:`ledger.migrate`): ``ledger_entries(seq, kind, ts,
leaf_input, leaf_hash)`` and ``ledger_checkpoints(size, root, note,
created_at)``. The database itself refuses UPDATE, DELETE and TRUNCATE
(triggers), and a deployment's service role is granted INSERT and SELECT only.

Order is decided inside the database, never in process memory: an append
transaction takes the database's append lock (:mod:`ledger.sql_session`),
reads the head and inserts its successors. Concurrent appends in one process
share that transaction (:mod:`ledger.group_commit`): one commit, one fsync,
for a whole batch. An append is durable when :meth:`LedgerStore.append`
returns; when the transaction fails, every append of the batch fails with
:class:`~ledger.errors.LedgerUnavailable` and none is acknowledged.

Proofs come from a :class:`~ledger.merkle.MerkleTree` of the stored leaf hashes
kept in memory and brought up to date from the database when asked, so
entries appended by other processes are included.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Self

from pydantic import JsonValue, TypeAdapter, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledger.appender import Appender, EntryRow, Head, Write
from ledger.canonical import jcs
from ledger.chain import LedgerReport
from ledger.entry import (
    BODY_MODELS,
    ZERO_PREV,
    Entry,
    Kind,
    compose_leaf_input,
    entry_from_leaf_input,
    explain,
    format_ts,
)
from ledger.errors import (
    AppendRefused,
    CanonicalizationError,
    CheckpointRefused,
    CorruptEntry,
    EntryNotFound,
    LedgerVerifyError,
    ProofError,
    SchemaNotCurrent,
)
from ledger.faults import crash_point
from ledger.group_commit import GroupCommitter
from ledger.merkle import leaf_hash
from ledger.migrate import LEDGER_SCHEMA, check_current, head_revision, upgrade
from ledger.sql_session import WRITE_OPTION, prepare_engine, storage_error
from ledger.tlog_proof import TlogProof
from ledger.tree import MerkleTree
from ledger.verify import ChainVerifier

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import datetime
    from types import TracebackType

    from ledger.companion import Companion

_BATCH = 1000  # rows per read transaction when streaming
_log = logging.getLogger("govex.ledger")
_JSON_OBJECT: TypeAdapter[dict[str, JsonValue]] = TypeAdapter(dict[str, JsonValue])
MAX_GROUP = 1000  # appends per group commit

# Table descriptions for queries; the DDL lives in ledger/migrations.
_metadata = MetaData()
ledger_entries = Table(
    "ledger_entries",
    _metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", Text, nullable=False),
    Column("ts", Text, nullable=False),
    Column("leaf_input", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
)
ledger_checkpoints = Table(
    "ledger_checkpoints",
    _metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint as stored: tree size, root, the signed note text, when it was made."""

    size: int
    root: bytes
    note: str
    created_at: str


@dataclass(frozen=True)
class _Draft:
    """Private: an append validated and encoded in its caller's thread, awaiting seq and prev."""

    kind: Kind
    ts: str
    body: dict[str, Any]
    body_jcs: bytes
    companion: Companion | None = None  # on the last draft of its submission
    group: int = 1  # drafts in its submission, itself the last (seqs follow in order)


class LedgerStore:
    """An append-only ledger in one SQLite or PostgreSQL database.

    ``LedgerStore(engine)`` wraps a fresh engine (it installs the dialect's
    hooks, so give it one that no connection was taken from yet) on a
    migrated database; :meth:`open` builds the engine from a URL and migrates
    (or, with ``migrate=False``, checks the schema revision). Safe to share
    between threads; several processes may each open a store on one database.
    """

    def __init__(self, engine: Engine) -> None:
        prepare_engine(engine)
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._group: GroupCommitter[_Draft, Entry] = GroupCommitter(
            self._commit_batch, max_batch=MAX_GROUP
        )
        self._appender = Appender(engine)
        self._tree = MerkleTree()
        self._tree_lock = threading.Lock()
        self._observers: tuple[Callable[[Entry], None], ...] = ()

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Self:
        """Open the ledger at SQLAlchemy ``url``: migrate it to head, or only check it.

        Migrating a database already at head only reads its version table, so
        a service role without DDL rights may open with ``migrate=True``.
        Raises :class:`~ledger.errors.SchemaNotCurrent` (``migrate=False``) or
        :class:`~ledger.errors.LedgerUnavailable` when the database cannot be reached.
        """
        engine = create_engine(url)
        store = cls(engine)
        try:
            if migrate:
                try:
                    upgrade(store._writer, LEDGER_SCHEMA)
                except DBAPIError as exc:
                    # Typically a service role without DDL rights on a database not yet at head.
                    raise SchemaNotCurrent(
                        f"ledger schema is not at revision {head_revision(LEDGER_SCHEMA)} and "
                        f"migrating it failed ({storage_error(exc, 'migrate').message}): "
                        "run `govex db upgrade` as the database owner",
                        schema=LEDGER_SCHEMA.name,
                    ) from exc
            else:
                check_current(engine, LEDGER_SCHEMA)
        except DBAPIError as exc:
            store.close()
            raise storage_error(exc, "open") from exc
        except BaseException:
            store.close()
            raise
        return store

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def group_commits(self) -> int:
        """How many append transactions this store committed (appends / this = batch size)."""
        return self._group.batches

    def close(self) -> None:
        """Finish queued appends, then close every pooled connection."""
        self._group.close()
        self._appender.close()
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- appending -------------------------------------------------------------------------

    def observe(self, observer: Callable[[Entry], None]) -> None:
        """Call ``observer`` with every entry this store appends, once it is durable.

        For counters (``service.metrics``): an observer runs in the committing thread,
        must be quick, and cannot fail an append (what it raises is logged and dropped).
        Entries other processes append are not seen.
        """
        self._observers = (*self._observers, observer)

    def append(
        self,
        kind: str,
        body: Mapping[str, Any],
        ts: datetime,
        *,
        companion: Companion | None = None,
    ) -> Entry:
        """Append an entry of ``kind`` and return it as stored; durable when this returns.

        ``companion`` (:mod:`ledger.companion`) is a write of the caller's committed in the
        same transaction, with the entry's seq at hand.

        Raises :class:`AppendRefused` (nothing written) for an unknown kind, a
        body its kind's model refuses, or a body value JCS cannot encode;
        :class:`ledger.errors.InvalidTimestamp` for a naive ``ts``; and
        :class:`~ledger.errors.LedgerUnavailable` (or its ``LedgerStorageFull``)
        when the database could not commit it: then it is not in the ledger.
        """
        # Validated and encoded by the caller, while the committer waits for the database.
        draft = _draft(kind, body, ts)
        if companion is not None:
            draft = replace(draft, companion=companion)
        return self._group.submit(draft)

    def append_many(
        self,
        entries: Sequence[tuple[str, Mapping[str, Any], datetime]],
        *,
        companion: Companion | None = None,
    ) -> list[Entry]:
        """Append ``(kind, body, ts)`` entries in order; durable when this returns.

        They are queued together and commit in one transaction (one fsync), taking
        consecutive seqs in this order; ``companion`` commits with them and sees them all.
        Raises as :meth:`append` does: a body refused before anything is queued; a failed
        commit appends none of them.
        """
        drafts = [_draft(kind, body, ts) for kind, body, ts in entries]
        if drafts:
            drafts[-1] = replace(drafts[-1], companion=companion, group=len(drafts))
        return self._group.submit_many(drafts)

    async def append_async(self, kind: str, body: Mapping[str, Any], ts: datetime) -> Entry:
        """:meth:`append` for coroutines: same checks, same durability, no thread per caller."""
        return await self._group.submit_async(_draft(kind, body, ts))

    def _commit_batch(self, drafts: Sequence[_Draft]) -> list[Entry]:
        """Private: one transaction appending ``drafts`` after the database's head, in order."""
        entries: list[Entry] = []

        def build(head: Head) -> list[EntryRow]:
            entries.clear()  # a retried build starts over
            seq, prev = (0, ZERO_PREV) if head is None else (head[0] + 1, head[1].hex())
            rows: list[EntryRow] = []
            for draft in drafts:
                kind = draft.kind
                data = compose_leaf_input(
                    body_jcs=draft.body_jcs, kind=kind, prev=prev, seq=seq, ts=draft.ts
                )
                digest = leaf_hash(data)
                rows.append((seq, kind.value, draft.ts, data, digest))
                entries.append(
                    Entry.model_construct(
                        v=1, seq=seq, ts=draft.ts, kind=kind, prev=prev, body=draft.body
                    )
                )
                seq, prev = seq + 1, digest.hex()
            return rows

        def writes() -> list[Write]:
            # Called once the rows are final: each companion sees its submission's entries.
            return [
                (companion.statement, companion.values(entries[i - draft.group + 1 : i + 1]))
                for i, draft in enumerate(drafts)
                if (companion := draft.companion) is not None
            ]

        has_companions = any(draft.companion is not None for draft in drafts)
        try:
            rows = self._appender.append(build, writes if has_companions else None)
        except DBAPIError as exc:
            raise storage_error(exc, "append") from exc
        with self._tree_lock:
            if rows and self._tree.size == rows[0][0]:  # extend the cache with what is durable
                self._tree.extend([row[4] for row in rows])
        for observer in self._observers:
            for entry in entries:
                try:
                    observer(entry)
                except Exception:  # noqa: BLE001 - an observer never fails a durable append
                    _log.exception("ledger observer failed on seq %d", entry.seq)
        return entries

    # -- reading ---------------------------------------------------------------------------

    def size(self) -> int:
        """Return the number of entries: one past the highest stored seq."""
        with self._engine.connect() as conn:
            highest = conn.execute(select(func.max(ledger_entries.c.seq))).scalar_one()
        return 0 if highest is None else int(highest) + 1

    def _rows(self, start: int, stop: int) -> Iterator[tuple[int, bytes, bytes]]:
        """Private: ``(seq, leaf_input, leaf_hash)`` of stored rows in ``[start, stop)``, by seq.

        Streams in batches, one short read transaction each, so neither memory
        nor a held transaction grows with the ledger. Missing rows are skipped:
        callers that care compare the seq column.
        """
        cursor = start
        while cursor < stop:
            with self._engine.connect() as conn:
                batch = conn.execute(
                    select(
                        ledger_entries.c.seq,
                        ledger_entries.c.leaf_input,
                        ledger_entries.c.leaf_hash,
                    )
                    .where(ledger_entries.c.seq >= cursor, ledger_entries.c.seq < stop)
                    .order_by(ledger_entries.c.seq)
                    .limit(_BATCH)
                ).all()
            if not batch:
                return
            for row in batch:
                yield int(row.seq), bytes(row.leaf_input), bytes(row.leaf_hash)
            cursor = int(batch[-1].seq) + 1

    def iter_leaf_inputs(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Stream the stored bytes of entries ``[start, stop)`` (``stop`` defaults to the size)."""
        end = self.size() if stop is None else stop
        for _, data, _ in self._rows(start, end):
            yield data

    def get(self, seq: int) -> Entry:
        """Return the entry at ``seq``; raise :class:`EntryNotFound` or :class:`CorruptEntry`."""
        return _parse(seq, self.get_leaf_input(seq))

    def get_leaf_input(self, seq: int) -> bytes:
        """Return the stored bytes of entry ``seq``; raise :class:`EntryNotFound`."""
        with self._engine.connect() as conn:
            data = conn.execute(
                select(ledger_entries.c.leaf_input).where(ledger_entries.c.seq == seq)
            ).scalar_one_or_none()
        if data is None:
            raise EntryNotFound(seq)
        return bytes(data)

    def list_entries(self, start: int, limit: int) -> list[Entry]:
        """Up to ``limit`` entries from ``start`` on, in seq order."""
        if start < 0 or limit < 0:
            raise ValueError(f"start and limit must not be negative, got {start} and {limit}")
        return [_parse(seq, data) for seq, data, _ in self._rows(start, start + limit)]

    # -- the tree and its proofs -----------------------------------------------------------

    def _synced_tree(self) -> MerkleTree:
        """Private (call with ``_tree_lock`` held): the cached tree, extended to the stored size."""
        tree = self._tree
        while True:
            with self._engine.connect() as conn:
                batch = conn.execute(
                    select(ledger_entries.c.seq, ledger_entries.c.leaf_hash)
                    .where(ledger_entries.c.seq >= tree.size)
                    .order_by(ledger_entries.c.seq)
                    .limit(_BATCH * 10)
                ).all()
            for row in batch:
                if row.seq != tree.size:
                    raise LedgerVerifyError(
                        seq=tree.size,
                        check="seq",
                        detail=f"no row at seq {tree.size}; next is {row.seq}",
                    )
                tree.append(bytes(row.leaf_hash))
            if len(batch) < _BATCH * 10:
                return tree

    def tree_head(self) -> tuple[int, bytes]:
        """``(size, root)`` of the ledger as stored now."""
        with self._tree_lock:
            tree = self._synced_tree()
            return tree.size, tree.root()

    def root(self, size: int) -> bytes:
        """The RFC 9162 root of the first ``size`` entries; :class:`ProofError` past the end."""
        with self._tree_lock:
            tree = self._synced_tree()
            _within(size, tree.size)
            return tree.root(size)

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``seq`` in the tree of the first ``size`` entries."""
        with self._tree_lock:
            tree = self._synced_tree()
            _within(size, tree.size)
            return tree.inclusion_proof(seq, size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 consistency proof between the trees of the first ``old_size``/``new_size``."""
        with self._tree_lock:
            tree = self._synced_tree()
            _within(new_size, tree.size)
            return tree.consistency_proof(old_size, new_size)

    def tlog_proof(self, seq: int, checkpoint: StoredCheckpoint) -> TlogProof:
        """The C2SP tlog-proof of entry ``seq`` in ``checkpoint``'s tree (its bytes as extra)."""
        return TlogProof(
            extra=self.get_leaf_input(seq),
            index=seq,
            proof=tuple(self.inclusion_proof(seq, checkpoint.size)),
            checkpoint=checkpoint.note,
        )

    # -- checkpoints -----------------------------------------------------------------------

    def add_checkpoint(
        self, size: int, root: bytes, note: str, created_at: datetime
    ) -> StoredCheckpoint:
        """Store a signed checkpoint; an identical one stored concurrently is returned instead.

        Raises :class:`CheckpointRefused` when a checkpoint of that size with
        another root is already stored (two trees of one size: a fork).
        """
        record = StoredCheckpoint(size=size, root=root, note=note, created_at=format_ts(created_at))
        try:
            with self._writer.begin() as conn:
                conn.execute(
                    insert(ledger_checkpoints).values(
                        size=size, root=root, note=note, created_at=record.created_at
                    )
                )
                crash_point("checkpoint.insert")
        except IntegrityError:
            existing = self.checkpoint_at(size)
            if existing is None or existing.root != root:
                raise CheckpointRefused(
                    f"a checkpoint of size {size} with another root is already stored",
                    size=size,
                ) from None
            return existing
        except DBAPIError as exc:
            raise storage_error(exc, "checkpoint") from exc
        crash_point("checkpoint.commit")
        return record

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        """The stored checkpoint of the largest tree, if any."""
        return self._checkpoint(
            select(ledger_checkpoints).order_by(ledger_checkpoints.c.size.desc())
        )

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        """The stored checkpoint of tree size ``size``, if any."""
        return self._checkpoint(select(ledger_checkpoints).where(ledger_checkpoints.c.size == size))

    def recent_checkpoints(self, count: int) -> list[StoredCheckpoint]:
        """The ``count`` stored checkpoints of the largest trees, smallest tree first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(ledger_checkpoints).order_by(ledger_checkpoints.c.size.desc()).limit(count)
            ).all()
        return [_stored(row) for row in reversed(rows)]

    def checkpoint_count(self) -> int:
        """How many checkpoints are stored."""
        with self._engine.connect() as conn:
            return int(
                conn.execute(select(func.count()).select_from(ledger_checkpoints)).scalar_one()
            )

    def checkpoints(self) -> list[StoredCheckpoint]:
        """Every stored checkpoint, smallest tree first."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(ledger_checkpoints).order_by(ledger_checkpoints.c.size)
            ).all()
        return [_stored(row) for row in rows]

    def _checkpoint(self, query: Any) -> StoredCheckpoint | None:  # noqa: ANN401 - a Select
        with self._engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
        return None if row is None else _stored(row)

    # -- verification ----------------------------------------------------------------------

    def verify(self) -> LedgerReport:
        """Verify every stored entry as ``verify_entries`` does, plus the stored columns.

        Beyond the checks of :mod:`ledger.verify`, each row's ``seq`` column
        must be its position (check ``seq``: a missing row), its stored
        ``leaf_hash`` must hash its bytes (check ``leaf_hash``), so a row
        edited behind the triggers' back is named at its own seq, and the
        root at every stored checkpoint's size must be that checkpoint's
        (check ``checkpoint``). Raises :class:`LedgerVerifyError` at the first
        bad row.
        """
        verifier = ChainVerifier()
        pending = self.checkpoints()
        size = self.size()
        for checkpoint in pending:
            if checkpoint.size > size:
                raise LedgerVerifyError(
                    seq=size,
                    check="checkpoint",
                    detail=(
                        f"a stored checkpoint covers {checkpoint.size} entries but the ledger "
                        f"has {size}: entries from seq {size} on were removed"
                    ),
                )
        _check_stored_checkpoints(pending, verifier)
        for seq, data, stored_hash in self._rows(0, size):
            position = verifier.size
            if seq != position:
                raise LedgerVerifyError(
                    seq=position, check="seq", detail=f"no row at seq {position}; next is {seq}"
                )
            computed = leaf_hash(data)
            if stored_hash != computed:
                raise LedgerVerifyError(
                    seq=position,
                    check="leaf_hash",
                    detail=(
                        f"stored leaf_hash {stored_hash.hex()} but the stored bytes hash to "
                        f"{computed.hex()}: the row was changed after it was appended"
                    ),
                )
            verifier.feed(data)
            _check_stored_checkpoints(pending, verifier)
        if verifier.size != size:
            raise LedgerVerifyError(
                seq=verifier.size,
                check="seq",
                detail=f"no row at seq {verifier.size}; the highest seq is {size - 1}",
            )
        return verifier.report()


def _check_stored_checkpoints(pending: list[StoredCheckpoint], verifier: ChainVerifier) -> None:
    """Private: compare (and drop) the checkpoints of the size ``verifier`` has reached."""
    while pending and pending[0].size == verifier.size:
        checkpoint = pending.pop(0)
        computed = verifier.report().root  # EMPTY_ROOT for size 0
        if computed != checkpoint.root:
            raise LedgerVerifyError(
                seq=max(checkpoint.size - 1, 0),
                check="checkpoint",
                detail=(
                    f"stored checkpoint of size {checkpoint.size} has root "
                    f"{checkpoint.root.hex()} but the entries give {computed.hex()}: an entry "
                    f"before seq {checkpoint.size} was changed and the chain recomputed"
                ),
            )


def _within(size: int, stored: int) -> None:
    """Private: refuse a tree size past the stored ledger."""
    if not 0 <= size <= stored:
        raise ProofError(f"the ledger has {stored} entries, not {size}", index=size, size=stored)


def _stored(row: Any) -> StoredCheckpoint:  # noqa: ANN401 - a SQLAlchemy row
    return StoredCheckpoint(
        size=int(row.size), root=bytes(row.root), note=str(row.note), created_at=str(row.created_at)
    )


def _draft(kind: str, body: Mapping[str, Any], ts: datetime) -> _Draft:
    """Private: validate and encode an append before it is queued (what ``Entry`` would check).

    ``v``, ``seq``, ``prev`` and ``ts`` are built here; the body must fit its
    kind's model and be JSON that JCS encodes (non-JSON values, non-finite
    floats, integers beyond 2**53). The JSON-value model runs only to name the
    field of a body that JCS refused.
    """
    ts_text = format_ts(ts)
    try:
        model_kind = Kind(kind)
    except ValueError:
        raise AppendRefused(f"unknown ledger entry kind {kind!r}", kind=kind) from None
    try:
        BODY_MODELS[model_kind.value].model_validate(body)
        plain = dict(body)
        body_jcs = jcs(plain, where="body")
    except ValidationError as exc:
        raise AppendRefused(f"{kind} entry refused: {explain(exc)}", kind=kind) from exc
    except CanonicalizationError as exc:
        try:
            _JSON_OBJECT.validate_python(body, strict=True)
        except ValidationError as named:
            raise AppendRefused(f"{kind} entry refused: {explain(named)}", kind=kind) from exc
        raise AppendRefused(f"{kind} entry refused: {exc.message}", kind=kind) from exc
    return _Draft(kind=model_kind, ts=ts_text, body=plain, body_jcs=body_jcs)


def _parse(seq: int, data: bytes) -> Entry:
    """Private: stored bytes to an entry, or :class:`CorruptEntry` at ``seq``."""
    try:
        return entry_from_leaf_input(data)
    except ValueError as exc:
        raise CorruptEntry(seq=seq, detail=str(exc)) from exc
