"""A stateful model of the ledger against the real store, on a SQLite file and on PostgreSQL.

Hypothesis drives appends (refused ones too), checkpoints, inclusion and consistency
proofs, C2SP tlog-proofs, exports and restarts against :class:`~ledger.store.LedgerStore`,
and compares every answer with a model that shares no code with the ledger: the entries as
``rfc8785`` bytes, hashed with ``hashlib``, and the RFC 9162 tree computed from its
definition. Every proof the store hands out must verify with the offline verifier, and
each proof corrupted in a way that matters must be refused with the ledger's own error.

The bounded runs are part of ``make test``; the ``soak`` variants (``make soak``) run many
more examples and longer sequences of steps.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
import rfc8785
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.anchor import verify_anchored
from ledger.checkpoint import open_checkpoint
from ledger.checkpointer import Checkpointer
from ledger.errors import (
    AppendRefused,
    ConsistencyMismatch,
    LedgerError,
    LedgerForked,
    LedgerVerifyError,
    NoteError,
    ProofError,
    RootMismatch,
)
from ledger.export import export_lines
from ledger.keys import SignerKey
from ledger.merkle import verify_consistency, verify_inclusion
from ledger.store import LedgerStore
from ledger.tlog_proof import TlogProof, format_tlog_proof, parse_tlog_proof, verify_tlog_proof
from ledger.verify import export_leaf_inputs, verify_entries

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from ledger.checkpoint import Checkpoint
    from ledger.store import StoredCheckpoint
    from tests.pg_harness import PostgresServer

ORIGIN = "govex.test/ledger/properties"
LOG_KEY = SignerKey.from_seed(ORIGIN, bytes(range(32)))
OTHER_KEY = SignerKey.from_seed(ORIGIN, bytes(range(1, 33)))  # same name, another key
CLOCK = datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)
ZERO_PREV = "0" * 64
SAFE = 2**53 - 1


# --- the model: no ledger code below this line until the machine ----------------------------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data)


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 over leaf hashes, straight from the definition."""
    if not hashes:
        return _sha256(b"")
    if len(hashes) == 1:
        return hashes[0]
    split = 1 << ((len(hashes) - 1).bit_length() - 1)
    return _sha256(b"\x01" + _mth(hashes[:split]) + _mth(hashes[split:]))


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Model:
    """What the ledger must hold: leaf inputs, their hashes, and the roots of every prefix."""

    def __init__(self) -> None:
        self.leaves: list[bytes] = []
        self.hashes: list[bytes] = []

    @property
    def size(self) -> int:
        return len(self.leaves)

    def expected_leaf(self, kind: str, body: dict[str, Any], ts: datetime) -> bytes:
        """The bytes entry ``size`` must have; rfc8785 raises for a body JCS cannot encode."""
        prev = self.hashes[-1].hex() if self.hashes else ZERO_PREV
        document: dict[str, Any] = {
            "v": 1,
            "seq": self.size,
            "ts": _ts(ts),
            "kind": kind,
            "prev": prev,
        }
        return bytes(rfc8785.dumps({**document, "body": body}))

    def add(self, leaf: bytes) -> None:
        self.leaves.append(leaf)
        self.hashes.append(_leaf_hash(leaf))

    def root(self, size: int | None = None) -> bytes:
        return _mth(self.hashes[: self.size if size is None else size])


# --- strategies -------------------------------------------------------------------------------

_ids = st.text(st.sampled_from("ABCDEFGHJKMNPQRSTVWXYZ0123456789_-abcxyz"), min_size=1, max_size=26)
_hex64 = st.binary(min_size=32, max_size=32).map(bytes.hex)
_digest = st.fixed_dictionaries({"sha256": _hex64, "blake3": _hex64})
# JSON values of every kind, including what JCS refuses (lone surrogates, integers past
# 2**53): the store must refuse exactly those, and nothing else.
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-SAFE, SAFE),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
_extra = st.dictionaries(st.text(min_size=1, max_size=8).map(lambda k: f"x_{k}"), _json, max_size=3)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A kind and a body its model accepts (extra fields allowed, values of any JSON)."""
    kind = draw(st.sampled_from(["call.started", "call.denied", "packet.issued"]))
    call_id = draw(_ids)
    if kind == "call.started":
        body: dict[str, Any] = {
            "call_id": call_id,
            "contract": draw(st.dictionaries(st.text(max_size=8), _json, max_size=4)),
        }
    elif kind == "call.denied":
        body = {"call_id": call_id, "reason": draw(st.text(min_size=1, max_size=40))}
    else:
        body = {"call_id": call_id, "packet_id": draw(_ids), "manifest_hash": draw(_digest)}
    return kind, {**body, **draw(_extra)}


_moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2099, 12, 31),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, datetime.now(UTC).astimezone().tzinfo]),
)


# --- the machine ------------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """One fresh ledger database per example, from ``make_url`` (see :func:`_on`)."""

    make_url: ClassVar[Callable[[], str]]

    def __init__(self) -> None:
        super().__init__()
        self.url = type(self).make_url()
        self.store = LedgerStore.open(self.url)
        self.checkpointer = Checkpointer(self.store, LOG_KEY, lambda: CLOCK)
        self.model = Model()
        self.checkpoints: list[StoredCheckpoint] = []

    def teardown(self) -> None:
        self.store.close()

    # -- appends -------------------------------------------------------------------------------

    @initialize(first=bodies(), ts=_moments)
    def start_with_one_entry(self, first: tuple[str, dict[str, Any]], ts: datetime) -> None:
        self.append(first, ts)

    @rule(drawn=bodies(), ts=_moments)
    def append(self, drawn: tuple[str, dict[str, Any]], ts: datetime) -> None:
        kind, body = drawn
        try:
            expected = self.model.expected_leaf(kind, body, ts)
        except rfc8785.CanonicalizationError:
            with pytest.raises(AppendRefused) as refused:
                self.store.append(kind, body, ts)
            assert refused.value.kind == kind
            return
        entry = self.store.append(kind, body, ts)
        assert (entry.seq, entry.kind.value) == (self.model.size, kind)
        assert self.store.get_leaf_input(entry.seq) == expected
        self.model.add(expected)

    @rule(batch=st.lists(st.tuples(bodies(), _moments), min_size=2, max_size=8))
    def append_several(self, batch: list[tuple[tuple[str, dict[str, Any]], datetime]]) -> None:
        for drawn, ts in batch:
            self.append(drawn, ts)

    @rule(
        kind=st.sampled_from(["call.started", "packet.issued", "no.such.kind", "call.finished"]),
        ts=_moments,
    )
    def refused_append_writes_nothing(self, kind: str, ts: datetime) -> None:
        with pytest.raises(AppendRefused) as refused:
            self.store.append(kind, {"call_id": "a/b"}, ts)  # a bad id, or required keys missing
        assert refused.value.kind == kind

    # -- checkpoints ---------------------------------------------------------------------------

    @rule()
    def checkpoint(self) -> None:
        stored = self.checkpointer.checkpoint()
        assert (stored.size, stored.root) == (self.model.size, self.model.root())
        opened = open_checkpoint(stored.note, LOG_KEY.verifier_key)
        assert (opened.origin, opened.size, opened.root) == (ORIGIN, stored.size, stored.root)
        with pytest.raises(NoteError):
            open_checkpoint(stored.note, OTHER_KEY.verifier_key)
        if not self.checkpoints or self.checkpoints[-1].size != stored.size:
            self.checkpoints.append(stored)
        assert self.store.latest_checkpoint() == stored

    # -- proofs --------------------------------------------------------------------------------

    @precondition(lambda self: self.model.size > 0)
    @rule(data=st.data())
    def inclusion_proof(self, data: st.DataObject) -> None:
        size = data.draw(st.integers(1, self.model.size), label="size")
        seq = data.draw(st.integers(0, size - 1), label="seq")
        root = self.model.root(size)
        proof = self.store.inclusion_proof(seq, size)
        verify_inclusion(seq, size, self.model.hashes[seq], proof, root)
        if proof:
            at = data.draw(st.integers(0, len(proof) - 1), label="element")
            bit = data.draw(st.integers(0, 255), label="bit")
            flipped = bytearray(proof[at])
            flipped[bit // 8] ^= 1 << (bit % 8)
            with pytest.raises(RootMismatch):
                verify_inclusion(seq, size, self.model.hashes[seq], [*proof[:at], bytes(flipped),
                                 *proof[at + 1 :]], root)  # fmt: skip
        if size > 1:
            other = data.draw(st.integers(0, size - 1).filter(lambda i: i != seq), label="other")
            with pytest.raises(ProofError):
                verify_inclusion(other, size, self.model.hashes[seq], proof, root)

    @precondition(lambda self: self.model.size > 0)
    @rule(data=st.data())
    def consistency_proof(self, data: st.DataObject) -> None:
        new = data.draw(st.integers(1, self.model.size), label="new")
        old = data.draw(st.integers(1, new), label="old")
        proof = self.store.consistency_proof(old, new)
        old_root, new_root = self.model.root(old), self.model.root(new)
        verify_consistency(old, new, old_root, new_root, proof)
        if proof:
            at = data.draw(st.integers(0, len(proof) - 1), label="element")
            flipped = bytearray(proof[at])
            flipped[data.draw(st.integers(0, 31), label="byte")] ^= 0x01
            tampered = [*proof[:at], bytes(flipped), *proof[at + 1 :]]
            with pytest.raises(ConsistencyMismatch):
                verify_consistency(old, new, old_root, new_root, tampered)
        if old < new:  # an old root the log never had cannot be proven consistent
            with pytest.raises(ConsistencyMismatch):
                verify_consistency(old, new, _sha256(old_root), new_root, proof)

    @precondition(lambda self: bool(self.checkpoints))
    @rule(data=st.data())
    def tlog_proof(self, data: st.DataObject) -> None:
        checkpoint = data.draw(st.sampled_from(self.checkpoints), label="checkpoint")
        if checkpoint.size == 0:
            return
        seq = data.draw(st.integers(0, checkpoint.size - 1), label="seq")
        text = format_tlog_proof(self.store.tlog_proof(seq, checkpoint))
        parsed = parse_tlog_proof(text.encode("utf-8"))
        assert parsed.extra == self.model.leaves[seq]
        verified = verify_tlog_proof(parsed, LOG_KEY.verifier_key)
        assert (verified.size, verified.root) == (checkpoint.size, self.model.root(checkpoint.size))
        with pytest.raises(NoteError):  # signed by the log, but not by the key trusted here
            verify_tlog_proof(parsed, OTHER_KEY.verifier_key)
        if checkpoint.size > 1:  # another entry's bytes at this index: another root
            other = data.draw(st.integers(0, checkpoint.size - 1).filter(lambda i: i != seq))
            with pytest.raises(RootMismatch):
                verify_tlog_proof(parsed, LOG_KEY.verifier_key, self.model.leaves[other])
            moved = TlogProof(parsed.extra, other, parsed.proof, parsed.checkpoint)
            with pytest.raises(ProofError):
                verify_tlog_proof(moved, LOG_KEY.verifier_key)
        _assert_mutation_refused_or_same(text, data, parsed)

    # -- exports and restarts ------------------------------------------------------------------

    @precondition(lambda self: self.model.size > 0)
    @rule(data=st.data())
    def export(self, data: st.DataObject) -> None:
        out = io.BytesIO()
        assert export_lines(self.store, out) == self.model.size
        lines = out.getvalue().splitlines(keepends=True)
        assert lines == [leaf + b"\n" for leaf in self.model.leaves]
        report = verify_entries(lines)
        assert (report.size, report.root) == (self.model.size, self.model.root())
        trusted = [open_checkpoint(c.note, LOG_KEY.verifier_key) for c in self.checkpoints]
        anchored = verify_anchored(export_leaf_inputs(lines), trusted)
        assert anchored.anchored_size == max((c.size for c in trusted), default=0)
        _assert_tampered_export_refused(lines, data, trusted)

    @rule()
    def restart(self) -> None:
        """A new store on the same database (a restarted service) sees the same ledger."""
        self.store.close()
        self.store = LedgerStore.open(self.url)
        self.checkpointer = Checkpointer(self.store, LOG_KEY, lambda: CLOCK)

    @invariant()
    def head_and_chain_match_the_model(self) -> None:
        assert self.store.size() == self.model.size
        assert self.store.tree_head() == (self.model.size, self.model.root())
        report = self.store.verify()
        assert (report.size, report.root) == (self.model.size, self.model.root())


def _assert_mutation_refused_or_same(text: str, data: st.DataObject, original: TlogProof) -> None:
    """Any single-character change is refused by a ledger error, or changes nothing verified."""
    at = data.draw(st.integers(0, len(text) - 1), label="at")
    char = data.draw(st.characters(codec="utf-8"), label="char")
    mutated = text[:at] + char + text[at + 1 :]
    try:
        parsed = parse_tlog_proof(mutated)
        checkpoint = verify_tlog_proof(parsed, LOG_KEY.verifier_key)
    except LedgerError:
        return
    # Accepted: then it proves the same leaf at the same place in the same signed tree.
    assert parsed.extra == original.extra
    assert parsed.index == original.index
    assert parsed.proof == original.proof
    reference = open_checkpoint(original.checkpoint, LOG_KEY.verifier_key)
    assert (checkpoint.size, checkpoint.root) == (reference.size, reference.root)


def _assert_tampered_export_refused(
    lines: list[bytes], data: st.DataObject, trusted: list[Checkpoint]
) -> None:
    """One byte changed in line ``k``: refused at ``k`` (or ``k - 1``: its ``prev`` changed),
    except in the last line, which only a trusted checkpoint covering it can catch."""
    k = data.draw(st.integers(0, len(lines) - 1), label="line")
    line = lines[k]
    at = data.draw(st.integers(0, len(line) - 2), label="byte")
    value = data.draw(st.integers(0x20, 0x7E).filter(lambda v: v != line[at]), label="value")
    tampered = [*lines[:k], line[:at] + bytes([value]) + line[at + 1 :], *lines[k + 1 :]]
    covered = any(c.size > k for c in trusted)
    error = _first_error(tampered)
    if error is not None:
        assert error.seq in {k - 1, k}, (k, error)
        return
    assert k == len(lines) - 1, f"a change in line {k} of {len(lines)} went unnoticed"
    if covered:
        with pytest.raises(LedgerForked):
            verify_anchored(export_leaf_inputs(tampered), trusted)


def _first_error(lines: list[bytes]) -> LedgerVerifyError | None:
    try:
        verify_entries(lines)
    except LedgerVerifyError as exc:
        return exc
    return None


# --- the runs ---------------------------------------------------------------------------------

_BOUNDED = settings(
    max_examples=20,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_SOAK = settings(_BOUNDED, max_examples=400, stateful_step_count=60)


def _on(make_url: Callable[[], str]) -> type[LedgerMachine]:
    """The machine class whose every example opens a fresh database from ``make_url``."""
    return type("LedgerOnDatabase", (LedgerMachine,), {"make_url": staticmethod(make_url)})


def _sqlite(root: Path) -> type[LedgerMachine]:
    return _on(lambda: f"sqlite:///{root / f'ledger-{uuid.uuid4().hex}.db'}")


def _postgresql(server: PostgresServer) -> type[LedgerMachine]:
    return _on(lambda: server.create_database(f"p_{uuid.uuid4().hex[:16]}"))


def test_the_sqlite_store_behaves_like_the_model(tmp_path: Path) -> None:
    run_state_machine_as_test(_sqlite(tmp_path), settings=_BOUNDED)


def test_the_postgresql_store_behaves_like_the_model(postgres: PostgresServer) -> None:
    run_state_machine_as_test(_postgresql(postgres), settings=settings(_BOUNDED, max_examples=5))


@pytest.mark.soak
def test_soak_the_sqlite_store_behaves_like_the_model(tmp_path: Path) -> None:
    run_state_machine_as_test(_sqlite(tmp_path), settings=_SOAK)


@pytest.mark.soak
def test_soak_the_postgresql_store_behaves_like_the_model(postgres: PostgresServer) -> None:
    run_state_machine_as_test(_postgresql(postgres), settings=settings(_SOAK, max_examples=100))


def test_the_model_refuses_what_it_should() -> None:
    """The model itself can fail: a wrong root or a skipped entry is noticed."""
    model = Model()
    leaf = model.expected_leaf("call.denied", {"call_id": "a", "reason": "r"}, CLOCK)
    model.add(leaf)
    assert model.root() == _leaf_hash(leaf)
    assert leaf.startswith(b'{"body":{"call_id":"a","reason":"r"},"kind":"call.denied"')
    second = model.expected_leaf("call.denied", {"call_id": "b", "reason": "r"}, CLOCK)
    assert f'"prev":"{_leaf_hash(leaf).hex()}"'.encode() in second
    assert b'"seq":1' in second
    model.add(second)
    assert model.root() == _sha256(b"\x01" + _leaf_hash(leaf) + _leaf_hash(second))
    assert model.root(0) == _sha256(b"")
