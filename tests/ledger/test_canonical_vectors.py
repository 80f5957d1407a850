"""Both JCS encoders against published vectors: cyberphone's testdata and RFC 8785 Appendix B."""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING

import pytest

from ledger.canonical import jcs, jcs_reference
from ledger.errors import CanonicalizationError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from typing import Any

    Encoder = Callable[[Any, str], bytes]

ENCODERS = [pytest.param(jcs, id="jcs"), pytest.param(jcs_reference, id="jcs_reference")]

# RFC 8785 Appendix B, "Number Serialization Samples": IEEE 754 bits -> canonical text.
APPENDIX_B = [
    ("0000000000000000", "0"),  # zero
    ("8000000000000000", "0"),  # minus zero
    ("0000000000000001", "5e-324"),  # min pos number
    ("8000000000000001", "-5e-324"),  # min neg number
    ("7fefffffffffffff", "1.7976931348623157e+308"),  # max pos number
    ("ffefffffffffffff", "-1.7976931348623157e+308"),  # max neg number
    ("4340000000000000", "9007199254740992"),  # max pos int
    ("c340000000000000", "-9007199254740992"),  # max neg int
    ("4430000000000000", "295147905179352830000"),  # ~2**68
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),  # round to even
]
APPENDIX_B_REFUSED = ["7fffffffffffffff", "7ff0000000000000"]  # NaN, Infinity


def _float_from_bits(hex_bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(hex_bits))[0]
    return value


@pytest.mark.parametrize("encode", ENCODERS)
def test_every_jcs_vector_gives_its_exact_bytes(vectors_dir: Path, encode: Encoder) -> None:
    testdata = vectors_dir / "jcs" / "testdata"
    names = sorted(path.name for path in (testdata / "input").glob("*.json"))
    assert names, "no JCS vectors found"
    failures = []
    for name in names:
        document = json.loads((testdata / "input" / name).read_bytes())
        expected = (testdata / "output" / name).read_bytes()
        expected_hex = bytes.fromhex((testdata / "outhex" / name).with_suffix(".txt").read_text())
        assert expected == expected_hex, f"vector {name}: output and outhex disagree"
        for attempt in ("first", "second"):  # the second call meets its keys in the key memo
            actual = encode(document, name)
            if actual != expected:
                failures.append(f"{name} ({attempt} call): got {actual!r}, want {expected!r}")
    assert failures == []


@pytest.mark.parametrize("encode", ENCODERS)
def test_every_appendix_b_number_gives_its_exact_text(encode: Encoder) -> None:
    failures = []
    for hex_bits, expected in APPENDIX_B:
        value = _float_from_bits(hex_bits)
        for document, want in ((value, expected), ([value], f"[{expected}]")):
            actual = encode(document, hex_bits)
            if actual != want.encode():
                failures.append(f"{hex_bits}: got {actual!r}, want {want!r}")
    assert failures == []


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize("hex_bits", APPENDIX_B_REFUSED)
def test_appendix_b_nan_and_infinity_are_refused(encode: Encoder, hex_bits: str) -> None:
    for value in (_float_from_bits(hex_bits), -_float_from_bits(hex_bits)):
        with pytest.raises(CanonicalizationError, match="is not representable in JCS"):
            encode({"x": value}, "/x")
