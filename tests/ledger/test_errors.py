from __future__ import annotations

import inspect
import re

import ledger.errors as errors_module
from ledger.errors import (
    AppendRefused,
    CorruptEntry,
    EntryNotFound,
    LedgerError,
    LedgerVerifyError,
    ProofError,
    RootMismatch,
)


def _docstring_tree() -> dict[str, str | None]:
    """Class name -> parent name, read from the drawing in the module docstring."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors_module.__doc__ or "").splitlines():
        match = re.match(r"^((?:[│ ]   )*(?:[├└]── )?)([A-Z][A-Za-z]+) {2,}", line)
        if match is None:
            continue
        depth, name = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def test_docstring_tree_names_every_error_with_its_real_parent() -> None:
    tree = _docstring_tree()
    classes = {
        name: obj
        for name, obj in vars(errors_module).items()
        if inspect.isclass(obj) and issubclass(obj, LedgerError)
    }
    assert set(tree) == set(classes)
    for name, parent in tree.items():
        base = classes[name].__bases__[0]
        assert base.__name__ == (parent or "Exception"), name


def test_verify_error_carries_seq_check_and_detail() -> None:
    error = LedgerVerifyError(seq=7, check="prev", detail="entry 8 has prev x")
    assert (error.seq, error.check, error.detail, error.where) == (
        7,
        "prev",
        "entry 8 has prev x",
        "seq 7",
    )
    assert str(error) == "ledger entry seq 7: check prev failed: entry 8 has prev x"


def test_place_is_a_constructor_argument() -> None:
    assert AppendRefused("no", kind="call.nope").kind == "call.nope"
    assert EntryNotFound(3).seq == 3
    assert CorruptEntry(seq=4, detail="bad").where == "seq 4"
    proof_error = ProofError("short", index=2, size=5)
    assert (proof_error.index, proof_error.size) == (2, 5)


def test_root_mismatch_shows_both_roots() -> None:
    error = RootMismatch(index=1, size=4, expected=b"\x01" * 32, calculated=b"\x02" * 32)
    assert isinstance(error, ProofError)
    assert error.expected == b"\x01" * 32
    assert error.calculated == b"\x02" * 32
    assert ("01" * 32) in str(error)
    assert ("02" * 32) in str(error)
