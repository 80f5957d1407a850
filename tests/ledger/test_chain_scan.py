"""The fast integrity scan agrees with the full verifier on every valid export and tamper class."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.anchor import AnchoredReport, anchor_scan, verify_anchored
from ledger.canonical import jcs
from ledger.chain_scan import scan_chain
from ledger.checkpoint import Checkpoint
from ledger.entry import ZERO_PREV, Kind, compose_leaf_input, leaf_hash
from ledger.errors import LedgerForked, LedgerTruncated, LedgerVerifyError
from ledger.merkle import EMPTY_ROOT, root_from_leaf_hashes
from ledger.verify import verify_entries

TS = "2026-11-23T09:15:02.123456Z"


def _export(bodies: list[dict[str, Any]]) -> list[bytes]:
    lines, prev = [], ZERO_PREV
    for seq, body in enumerate(bodies):
        data = compose_leaf_input(
            body_jcs=jcs(body), kind=Kind.call_denied, prev=prev, seq=seq, ts=TS
        )
        lines.append(data + b"\n")
        prev = leaf_hash(data).hex()
    return lines


def _denied(n: int) -> list[bytes]:
    return _export([{"call_id": f"c{i}", "reason": "policy deny"} for i in range(n)])


def _failure(lines: list[bytes], scan: bool) -> tuple[int, str]:
    check = scan_chain if scan else verify_entries
    with pytest.raises(LedgerVerifyError) as caught:
        check(lines)
    return caught.value.seq, caught.value.check


_json_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_bodies = st.lists(
    st.fixed_dictionaries(
        {
            "call_id": st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True),
            "reason": _json_text.filter(bool),
        },
        optional={
            "nested": st.dictionaries(
                st.sampled_from(["kind", "prev", "seq", "v", "x"]),
                st.one_of(_json_text, st.integers(-(2**53) + 1, 2**53 - 1)),
            ),
            "quote": st.just('","kind":"call.denied","prev":"' + "0" * 64 + '"'),
        },
    ),
    max_size=40,
)


@given(_bodies)
def test_scan_gives_the_full_verifiers_size_and_root(bodies: list[dict[str, Any]]) -> None:
    lines = _export(bodies)
    scanned, full = scan_chain(lines), verify_entries(lines)
    assert (scanned.size, scanned.root, scanned.head_leaf_hash) == (
        full.size,
        full.root,
        full.head_leaf_hash,
    )


def test_roots_at_requested_sizes_match_the_rfc_root_of_each_prefix() -> None:
    lines = _denied(13)
    hashes = [leaf_hash(line[:-1]) for line in lines]
    report = scan_chain(lines, root_sizes=[0, 1, 5, 8, 13, 20])
    assert report.roots == {
        0: EMPTY_ROOT,
        **{size: root_from_leaf_hashes(hashes[:size]) for size in (1, 5, 8, 13)},
    }  # 20 is past the end: left out, so the caller sees the truncation


def _edited(lines: list[bytes]) -> list[bytes]:
    return [*lines[:4], lines[4].replace(b"policy deny", b"policy allow"), *lines[5:]]


@pytest.mark.parametrize(
    ("tamper", "place"),
    [
        pytest.param(_edited, (4, "prev"), id="edited"),
        pytest.param(lambda ls: ls[:4] + ls[5:], (4, "seq"), id="deleted"),
        pytest.param(lambda ls: [*ls[:4], ls[2], *ls[4:]], (4, "seq"), id="inserted"),
        pytest.param(lambda ls: [*ls[:4], ls[5], ls[4], *ls[6:]], (4, "seq"), id="reordered"),
        pytest.param(lambda ls: [*ls[:-1], ls[-1][:-1]], (9, "json"), id="cut-line"),
        pytest.param(lambda ls: [*ls[:3], b"{}\n", *ls[4:]], (3, "json"), id="not-an-entry"),
        pytest.param(
            lambda ls: [*ls[:3], ls[3].replace(b'"seq":3', b'"seq":03'), *ls[4:]],
            (3, "json"),
            id="not-canonical",
        ),
        pytest.param(
            lambda ls: [ls[0].replace(b'"prev":"0', b'"prev":"1'), *ls[1:]], (0, "prev"), id="first"
        ),
    ],
)
def test_scan_names_each_tamper_where_the_full_verifier_does(
    tamper: Any,
    place: tuple[int, str],
) -> None:
    lines = tamper(_denied(10))
    assert _failure(lines, scan=True) == place
    seq, check = _failure(lines, scan=False)
    assert seq == place[0]
    # Where the scan sees a line that is not framed as an entry, the full verifier names
    # the finer check (json, canonical or schema) at the same seq.
    assert check == place[1] or (place[1] == "json" and check in {"canonical", "schema"})


def test_a_recomputed_chain_passes_the_scan_but_changes_the_root() -> None:
    honest = _denied(8)
    bodies: list[dict[str, Any]] = [{"call_id": f"c{i}", "reason": "policy deny"} for i in range(8)]
    bodies[3]["reason"] = "forged"
    forged = _export(bodies)
    assert scan_chain(forged).root != scan_chain(honest).root
    assert scan_chain(forged, [3]).roots[3] == scan_chain(honest, [3]).roots[3]


def test_anchoring_a_scan_finds_what_the_full_verification_finds() -> None:
    honest = _denied(9)
    bodies: list[dict[str, Any]] = [{"call_id": f"c{i}", "reason": "policy deny"} for i in range(9)]
    bodies[5]["reason"] = "forged"
    forged = _export(bodies)
    trusted = [
        Checkpoint(origin="o", size=size, root=scan_chain(honest, [size]).roots[size])
        for size in (4, 8)
    ]
    sizes = [c.size for c in trusted]

    def full(lines: list[bytes]) -> AnchoredReport:
        return verify_anchored([line[:-1] for line in lines], trusted)

    def scanned(lines: list[bytes]) -> AnchoredReport:
        return anchor_scan(scan_chain(lines, sizes), trusted)

    for verify in (full, scanned):
        report = verify(honest)
        assert (report.status, report.anchored_size, report.unanchored_tail) == ("anchored", 8, 1)
        with pytest.raises(LedgerForked) as forked:
            verify(forged)
        assert (forked.value.start, forked.value.stop) == (4, 8)
        with pytest.raises(LedgerTruncated):
            verify(honest[:6])


@pytest.mark.parametrize(
    ("body", "offset"),
    [
        # offsets in the line: 8 bytes of {"body": and then the body's own
        pytest.param(b'{"call_id":"c3","reason":"policy deny",}', 8 + 38, id="trailing-comma"),
        pytest.param(b'{"call_id":"c3","reason":"policy \xff"}', 8 + 33, id="not-utf8"),
        pytest.param(b'{"call_id":"c3","reason":NaN}', 8 + 25, id="nan"),
        pytest.param(b'{"call_id":"c3"}{"reason":"x"}', 8 + 16, id="two-objects"),
    ],
)
def test_a_body_that_is_not_one_json_object_is_named_with_its_offset(
    body: bytes, offset: int
) -> None:
    lines = _denied(6)
    tail = lines[3].rindex(b',"kind":"')
    lines[3] = b'{"body":' + body + lines[3][tail:]
    with pytest.raises(LedgerVerifyError) as caught:
        scan_chain(lines)
    assert (caught.value.seq, caught.value.check) == (3, "json")
    assert caught.value.detail.startswith("body is not one JSON object: ")
    assert caught.value.detail.endswith(f"at byte {offset} of the line")


def test_a_duplicate_top_level_member_cannot_hide_in_the_body() -> None:
    # A line that some parsers read with an earlier "prev" (first wins) and others with the
    # tail's (last wins): the body part is no longer one JSON object, so it is refused.
    lines = _denied(4)
    tail = lines[2].rindex(b',"kind":"')
    body_end = lines[2].rindex(b"}", 0, tail)
    forged = lines[2][: body_end + 1] + b',"prev":"' + b"1" * 64 + b'"' + lines[2][tail:]
    with pytest.raises(LedgerVerifyError) as caught:
        scan_chain([*lines[:2], forged, lines[3]])
    assert (caught.value.seq, caught.value.check) == (2, "json")
