"""Canonical JSON and digests survive a real write and re-read, through every verifier.

The writers (the ledger store, the packet builder) hash ``ledger.canonical.jcs`` bytes;
the readers (``ledger.verify``, the packet verifier's ``schema`` check) parse those bytes
and re-encode them, the packet verifier with ``catalog.canonical.jcs``. So the two
encoders must agree, and whatever a writer accepts must re-encode to the same bytes
after parsing. Integral doubles of 2**53 and more are the trap: JCS writes ``1e16`` as
bare digits, which Python parses as an integer that ``rfc8785`` refuses to encode.

Digests: one-shot equals streamed in any chunks, and the text and JSON forms round-trip.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import canonical as catalog_canonical
from catalog.authority import AuthorityStatus
from catalog.digest import DigestSet, StreamingDigest, digest_bytes
from catalog.errors import CanonicalizationError as CatalogCanonicalizationError
from ledger import canonical as ledger_canonical
from ledger.entry import ZERO_PREV, Kind, compose_leaf_input
from ledger.errors import CanonicalizationError as LedgerCanonicalizationError
from ledger.verify import parse_leaf_input
from service.packets.build import PacketBuilder
from service.packets.manifest import CatalogRef, EntryRef, LedgerRef, ServiceRef
from service.packets.options import digest_matches, parse_pin
from service.packets.verify import verify_packet_file

SAFE = 2**53 - 1
CLOCK = datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)
PACKET_ID = "01JPACKETPROPERTIESAAAAAAA"
TS = "2026-11-23T09:15:02.123456Z"

# Doubles of every kind, with weight on the integral ones JCS writes as bare digits.
big_doubles = st.one_of(
    st.floats(min_value=2.0**53, max_value=1e21, exclude_max=True),
    st.integers(53, 69).map(lambda e: float(2**e)),
    st.sampled_from([1e16, 1e20, 123456789012345678.0, 2.0**53, 2.0**53 + 2]),
).flatmap(lambda x: st.sampled_from([x, -x]))
numbers = st.one_of(
    st.integers(-SAFE, SAFE), st.floats(allow_nan=False, allow_infinity=False), big_doubles
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=10))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=15,
)
# And what JCS refuses: integers past 2**53, non-finite floats, lone surrogates, odd keys.
hostile = st.recursive(
    st.one_of(
        scalars,
        st.integers(),
        st.floats(),
        st.text(st.characters(codec=None, categories=["Cs"]), min_size=1, max_size=2),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 3)), children, max_size=3),
    ),
    max_leaves=8,
)


def _encode(encoder: Any, value: Any) -> bytes | type[Exception]:
    try:
        return bytes(encoder(value, "value"))
    except (LedgerCanonicalizationError, CatalogCanonicalizationError):
        return Exception


@settings(max_examples=250)
@given(value=st.one_of(json_values, hostile))
def test_catalog_and_ledger_encoders_agree_on_bytes_and_on_refusals(value: Any) -> None:
    """Packets are hashed with the ledger's encoder and re-checked with the catalog's."""
    assert _encode(ledger_canonical.jcs, value) == _encode(catalog_canonical.jcs, value)


@settings(max_examples=250)
@given(value=json_values)
def test_a_body_the_store_writes_passes_the_ledger_verifier(value: Any) -> None:
    """Every value JCS accepts in a body reads back as a valid, canonical entry."""
    body = ledger_canonical.jcs({"call_id": "c", "contract": {"value": value}}, "body")
    data = compose_leaf_input(body_jcs=body, kind=Kind.call_started, prev=ZERO_PREV, seq=0, ts=TS)
    entry = parse_leaf_input(data, seq=0)  # json, canonical and schema checks
    assert ledger_canonical.jcs(entry.to_json_dict()) == data


@settings(max_examples=200)
@given(value=json_values)
def test_canonical_bytes_reparse_to_the_same_bytes_with_either_encoder(value: Any) -> None:
    data = ledger_canonical.jcs(value)
    parsed = json.loads(data, parse_int=ledger_canonical.parse_json_int)
    assert ledger_canonical.jcs(parsed) == data
    assert catalog_canonical.jcs(parsed) == data


def test_digits_that_are_no_doubles_jcs_text_still_fail_the_canonical_check() -> None:
    """Reading big digits as a double must not make a forged number canonical."""
    for text in (b"9007199254740993", b"10000000000000001", b"-0"):
        parsed = json.loads(text, parse_int=ledger_canonical.parse_json_int)
        assert ledger_canonical.jcs(parsed) != text
    body = b'{"call_id":"c","contract":{"n":9007199254740993}}'
    data = compose_leaf_input(body_jcs=body, kind=Kind.call_started, prev=ZERO_PREV, seq=0, ts=TS)
    with pytest.raises(Exception, match="check canonical failed"):
        parse_leaf_input(data, seq=0)


def _packet(root: Path, inputs: dict[str, Any]) -> tuple[Path, DigestSet]:
    builder = PacketBuilder(root / "packets", PACKET_ID, chunk_bytes=256)
    builder.write_table(path="data/r.csv", fmt="csv", columns=["a"], rows=[(1,)], max_bytes=None)
    staged = builder.finish(
        created_at=CLOCK,
        authority_status=AuthorityStatus.sealed,
        catalog=CatalogRef(name="demo", version="1", catalog_digest=digest_bytes(b"catalog")),
        entry=EntryRef(id="orders.large", kind="query", entry_digest=digest_bytes(b"entry")),
        contract={"mode": "run", "inputs": inputs},
        complete=True,
        claim=None,
        ledger=LedgerRef(origin="govex.test/ledger", call_seq=4),
        service=ServiceRef(version="0.1.0", module_sha256="ab" * 32),
    )
    return builder.publish(staged), staged.manifest_hash


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=st.dictionaries(st.text(min_size=1, max_size=8), scalars, max_size=4))
def test_a_packet_built_with_any_inputs_passes_the_verifier(inputs: dict[str, Any]) -> None:
    """Contract inputs (a `number` parameter may be 1e16) go into packet.json as JCS."""
    with tempfile.TemporaryDirectory() as folder:
        path, manifest_hash = _packet(Path(folder), inputs)
        report = verify_packet_file(path, expect_manifest_hash=manifest_hash)
    assert report.ok, report.summary()


def test_a_packet_with_a_number_input_of_1e16_verifies(tmp_path: Path) -> None:
    """The regression the properties found: the schema check refused its own writer."""
    path, manifest_hash = _packet(tmp_path, {"min_total": 1e16})
    report = verify_packet_file(path, expect_manifest_hash=manifest_hash)
    assert report.check("schema").status == "pass", report.summary()
    assert report.ok


@settings(max_examples=300)
@given(
    data=st.binary(max_size=4096),
    cuts=st.lists(st.integers(0, 4096), max_size=8),
)
def test_a_streamed_digest_equals_the_one_shot_digest_in_any_chunks(
    data: bytes, cuts: list[int]
) -> None:
    streaming = StreamingDigest()
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    for start, stop in itertools.pairwise(bounds):
        streaming.update(data[start:stop])
    assert streaming.finish() == digest_bytes(data)
    assert streaming.bytes == len(data)


@settings(max_examples=200)
@given(data=st.binary(max_size=256), other=st.binary(max_size=256))
def test_digest_text_and_json_forms_round_trip_and_pin_only_their_bytes(
    data: bytes, other: bytes
) -> None:
    digest = digest_bytes(data)
    assert DigestSet.model_validate_json(digest.model_dump_json()) == digest
    assert DigestSet.model_validate_json(catalog_canonical.jcs(digest.model_dump())) == digest
    for algorithm in ("sha256", "blake3"):
        text = digest.text(algorithm)
        assert parse_pin(text) == text
        assert parse_pin(text.upper().replace(algorithm.upper(), algorithm)) == text
        assert digest_matches(text, digest)
        assert digest_matches(text, digest_bytes(other)) == (data == other)
    assert digest_matches(digest, digest)
    assert digest_matches(digest, digest_bytes(other)) == (data == other)


# --- the soak twins (`make soak`): the same properties, many more examples --------------------


@pytest.mark.soak
@settings(max_examples=20_000)
@given(value=st.one_of(json_values, hostile))
def test_soak_catalog_and_ledger_encoders_agree(value: Any) -> None:
    assert _encode(ledger_canonical.jcs, value) == _encode(catalog_canonical.jcs, value)


@pytest.mark.soak
@settings(max_examples=20_000)
@given(value=json_values)
def test_soak_canonical_bytes_reparse_to_the_same_bytes(value: Any) -> None:
    data = ledger_canonical.jcs(value)
    parsed = json.loads(data, parse_int=ledger_canonical.parse_json_int)
    assert ledger_canonical.jcs(parsed) == data
    assert catalog_canonical.jcs(parsed) == data
    body = ledger_canonical.jcs({"call_id": "c", "contract": {"value": value}}, "body")
    leaf = compose_leaf_input(body_jcs=body, kind=Kind.call_started, prev=ZERO_PREV, seq=0, ts=TS)
    parse_leaf_input(leaf, seq=0)


@pytest.mark.soak
@settings(max_examples=1_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=st.dictionaries(st.text(min_size=1, max_size=8), scalars, max_size=4))
def test_soak_a_packet_built_with_any_inputs_passes_the_verifier(inputs: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path, manifest_hash = _packet(Path(folder), inputs)
        report = verify_packet_file(path, expect_manifest_hash=manifest_hash)
    assert report.ok, report.summary()
