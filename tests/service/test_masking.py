"""Masking: the keyed digest of a value, the key id, the key file, and lazy row streaming."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from service.errors import StartupRefused
from service.masking import (
    MaskingKey,
    SensitiveColumnMissing,
    load_masking_key,
    mask_positions,
    mask_rows,
)
from service.packets.errors import UnsupportedValueError
from service.packets.tables import RowValue

KEY = MaskingKey(bytes(range(32)))


def _oracle(data: bytes) -> str:
    """An independent computation of the mask of JCS bytes ``data``."""
    return "hmac-sha256:" + hmac.new(bytes(range(32)), data, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("value", "jcs"),
    [
        pytest.param("alice@example.com", b'"alice@example.com"', id="string"),
        pytest.param("é\n", '"é\\n"'.encode(), id="string-escapes"),
        pytest.param(42, b"42", id="integer"),
        pytest.param(2**63 + 1, str(2**63 + 1).encode(), id="big-integer"),
        pytest.param(1.5, b"1.5", id="float"),
        pytest.param(True, b"true", id="boolean"),
        pytest.param(b"\x00\x01", b'"AAE="', id="bytes-as-base64"),
    ],
)
def test_the_mask_is_hmac_sha256_of_the_jcs_value(value: RowValue, jcs: bytes) -> None:
    assert KEY.mask(value) == _oracle(jcs)


def test_same_value_same_mask_other_key_other_mask() -> None:
    other = MaskingKey(bytes(range(1, 33)))
    assert KEY.mask("x") == KEY.mask("x")
    assert KEY.mask("x") != KEY.mask("y")
    assert KEY.mask("x") != other.mask("x")
    assert KEY.mask(1) != KEY.mask("1")  # the type is part of the value
    assert KEY.mask(value=True) != KEY.mask(1)


def test_null_stays_null() -> None:
    assert KEY.mask(None) is None


@pytest.mark.parametrize(
    "value",
    [pytest.param(float("nan"), id="nan"), pytest.param(object(), id="object")],
)
def test_values_a_packet_cannot_hold_are_refused(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by value
        KEY.mask(value)  # type: ignore[arg-type]


def test_key_id_is_the_sha256_prefix_and_the_key_is_never_shown() -> None:
    assert KEY.key_id == hashlib.sha256(bytes(range(32))).hexdigest()[:16]
    for text in (repr(KEY), str(KEY)):
        assert KEY.text() not in text
        assert KEY.key_id in str(KEY)


def test_a_key_is_at_least_32_bytes() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        MaskingKey(b"\x00" * 31)
    assert len(MaskingKey.generate().secret) == 32


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("00" * 31, "at least 32 bytes", id="short"),
        pytest.param("zz" * 32, "as hex digits", id="not-hex"),
        pytest.param("0" * 65, "as hex digits", id="odd-length"),
    ],
)
def test_a_bad_key_file_refuses_start_naming_the_file_not_its_contents(
    tmp_path: Path, text: str, match: str
) -> None:
    path = tmp_path / "masking.key"
    path.write_text(text)
    with pytest.raises(StartupRefused, match=match) as refused:
        load_masking_key(path)
    assert str(path) in str(refused.value)
    assert text not in str(refused.value)


def test_a_key_file_round_trips_and_a_missing_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "masking.key"
    path.write_text(KEY.text() + "\n")
    assert load_masking_key(path) == KEY
    with pytest.raises(StartupRefused, match="cannot be read"):
        load_masking_key(tmp_path / "absent.key")


def test_positions_match_by_name_and_a_missing_column_is_named() -> None:
    assert mask_positions(("id", "email", "name"), ("name", "email")) == (1, 2)
    with pytest.raises(SensitiveColumnMissing, match="phone, fax"):
        mask_positions(("id", "email"), ("phone", "email", "fax"))


def test_mask_rows_masks_only_the_positions() -> None:
    rows = [(1, "a", None), (2, "b", "c")]
    out = list(mask_rows(rows, (1, 2), KEY, columns=("id", "x", "y"), path="data/r.jsonl"))
    assert out == [[1, KEY.mask("a"), None], [2, KEY.mask("b"), KEY.mask("c")]]


def test_mask_rows_is_lazy_and_closes_its_source() -> None:
    """Rows are pulled one at a time as they are written; never all at once."""
    pulled: list[int] = []
    closed: list[bool] = []

    def source() -> Iterator[Sequence[RowValue]]:
        try:
            for i in range(10**9):  # far more than memory could hold
                pulled.append(i)
                yield (i, f"v{i}")
        finally:
            closed.append(True)

    masked = mask_rows(source(), (1,), KEY, columns=("id", "v"), path="data/r.jsonl")
    assert pulled == []  # nothing read before the writer asks
    first = next(masked)
    assert pulled == [0]
    assert first == [0, KEY.mask("v0")]
    next(masked)
    assert pulled == [0, 1]
    masked.close()  # what the packet writer does when a limit stops it
    assert closed == [True]


def test_an_unmaskable_value_names_row_and_column() -> None:
    rows: list[tuple[int, RowValue]] = [(1, "a"), (2, float("inf"))]
    with pytest.raises(UnsupportedValueError) as refused:
        list(mask_rows(rows, (1,), KEY, columns=("id", "v"), path="data/r.jsonl"))
    assert (refused.value.row, refused.value.column) == (1, "v")
