"""The fast JCS encoder equals rfc8785 byte for byte, and refuses exactly what it refuses."""

from __future__ import annotations

import enum
import math
import struct
import sys
from collections import OrderedDict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import canonical
from ledger.canonical import jcs, jcs_reference
from ledger.errors import CanonicalizationError

if TYPE_CHECKING:
    from collections.abc import Callable

    Encoder = Callable[[Any, str], bytes]

ENCODERS = [pytest.param(jcs, id="jcs"), pytest.param(jcs_reference, id="jcs_reference")]
SAFE = 2**53 - 1


class Color(enum.IntEnum):
    red = 1


class Word(enum.StrEnum):
    hello = "hél\x01lo"


class Ratio(float):
    pass


class Name(str):
    __slots__ = ()


class Items(list[Any]):
    pass


# Values that are not exact JSON types: subclasses rfc8785 coerces, and types it refuses.
ODD_VALUES: list[Any] = [
    Color.red,
    Word.hello,
    Ratio(2.5),
    Ratio(float("nan")),
    Name("n\u2028ame"),
    OrderedDict([("b", 1), ("a", [2])]),
    Items([1, "x"]),
    b"bytes",
    {1, 2},
    Decimal("1.5"),
    object(),
    1 + 2j,
]
ODD_KEYS: list[Any] = [0, -1, 2.5, None, True, b"k", (1, 2), Word.hello, Name("zz")]


def _reference(value: Any) -> bytes | Exception:
    """rfc8785 itself: its bytes, or the exception it raises."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        return exc


def _assert_same_as_rfc8785(encode: Encoder, value: Any) -> None:
    """``encode`` gives rfc8785's bytes, or refuses with rfc8785's message naming the place."""
    expected = _reference(value)
    if isinstance(expected, bytes):
        assert encode(value, "/here") == expected
        return
    with pytest.raises(CanonicalizationError) as caught:
        encode(value, "/here")
    assert caught.value.where == "/here"
    assert str(caught.value) == f"cannot canonicalize /here: {expected}"


# Text: any code point, ASCII with its controls, and a mix of the characters that decide
# escaping (controls, quote, backslash) and ordering (U+E000..U+FFFF against astral ones,
# whose UTF-16 lead surrogate sorts below them), lone surrogates included.
_TRICKY = st.sampled_from(
    [
        *["a", "b", "\x00", "\x1f", "\x7f", '"', "\\", "/", "\n", "\u00e9", "\u2028"],
        *["\ud7ff", "\ue000", "\ufb33", "\uffff", "\U00010000", "\U0001f602", "\U0010ffff"],
        *["\ud800", "\udbff", "\udc00", "\udfff"],
    ]
)
texts = st.one_of(
    st.text(max_size=10),
    st.text(st.characters(max_codepoint=0x7F), max_size=8),
    st.text(_TRICKY, max_size=6),
    st.text(st.characters(exclude_categories=()), max_size=4),
)
integers = st.one_of(
    st.integers(-SAFE, SAFE),
    st.integers(-SAFE - 3, -SAFE + 3),
    st.integers(SAFE - 3, SAFE + 3),
    st.integers(),
    st.sampled_from([2**63, -(2**64), 10**300]),
)
floats = st.one_of(
    st.floats(),  # nan, infinities, -0.0, subnormals
    st.integers(0, 2**64 - 1).map(lambda bits: struct.unpack("<d", struct.pack("<Q", bits))[0]),
    st.integers(-340, 340).map(lambda exponent: float(f"1e{exponent}")),  # inf past 1e308
    st.sampled_from([1e-7, 1e-6, 1e-5, 1e-4, 1e15, 1e16, 1e20, 1e21, 2.0**53, -0.0, 5e-324]),
)
keys = st.one_of(texts, _TRICKY)  # single tricky characters: keys that collide interestingly
scalars = st.one_of(st.none(), st.booleans(), integers, floats, texts)
odd_values = st.sampled_from(ODD_VALUES)
odd_keys = st.sampled_from(ODD_KEYS)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=6),
        st.dictionaries(st.one_of(keys, odd_keys), children, max_size=3),
    )


json_values = st.recursive(scalars, _containers, max_leaves=30)
unusual_values = st.recursive(st.one_of(scalars, odd_values), _containers, max_leaves=20)


@st.composite
def deep_values(draw: st.DrawFn) -> Any:
    """A leaf wrapped in up to 300 levels of lists, tuples and one-key dicts."""
    value: Any = draw(st.one_of(scalars, st.just({})))
    for layer in draw(st.lists(st.sampled_from(["list", "tuple", "dict", "pair"]), max_size=300)):
        if layer == "list":
            value = [value]
        elif layer == "tuple":
            value = (value,)
        elif layer == "dict":
            value = {draw(texts): value}
        else:
            value = {"\U0001f602": None, draw(texts): value, "z": [1.5]}
    return value


@settings(max_examples=600)
@given(value=json_values)
def test_jcs_equals_rfc8785_on_json_values(value: Any) -> None:
    _assert_same_as_rfc8785(jcs, value)
    _assert_same_as_rfc8785(jcs, value)  # again, now with its keys in the key memo
    _assert_same_as_rfc8785(jcs_reference, value)


# Documents of the orjson path: exact containers, no floats, ASCII keys; any text (lone
# surrogates too) and any integer, so orjson's own refusals are exercised as well.
plain_keys = st.one_of(
    st.text(st.characters(max_codepoint=0x7F), max_size=8), st.sampled_from("ab\x00\x7f")
)
plain_values = st.recursive(
    st.one_of(st.none(), st.booleans(), integers, texts),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(plain_keys, children, max_size=6),
    ),
    max_leaves=40,
)


@settings(max_examples=600)
@given(value=st.dictionaries(plain_keys, plain_values, max_size=8))
def test_plain_documents_take_the_orjson_path_and_equal_rfc8785(value: dict[str, Any]) -> None:
    assert canonical._is_plain(value)
    _assert_same_as_rfc8785(jcs, value)


def test_a_float_or_a_non_ascii_key_leaves_the_orjson_path() -> None:
    assert not canonical._is_plain({"a": [1, {"b": 1.0}]})
    assert not canonical._is_plain({"a": {"\u00e9": 1}})
    assert not canonical._is_plain({"a": [Name("x")]})
    assert jcs({"a": [1, {"b": 1.0}], "\u00e9": 1e21}) == b'{"a":[1,{"b":1}],"\xc3\xa9":1e+21}'


@settings(max_examples=300)
@given(value=unusual_values)
def test_jcs_equals_rfc8785_on_subclasses_odd_keys_and_non_json_types(value: Any) -> None:
    _assert_same_as_rfc8785(jcs, value)
    _assert_same_as_rfc8785(jcs, value)
    _assert_same_as_rfc8785(jcs_reference, value)


@settings(max_examples=150)
@given(value=deep_values())
def test_jcs_equals_rfc8785_on_deep_values(value: Any) -> None:
    _assert_same_as_rfc8785(jcs, value)
    _assert_same_as_rfc8785(jcs_reference, value)


@settings(max_examples=200)
@given(value=json_values)
def test_jcs_equals_rfc8785_when_the_key_memo_is_off(value: Any) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(canonical, "_KEY_TEXT", {})
        patch.setattr(canonical, "_KEY_MEMO_CAP", 0)
        _assert_same_as_rfc8785(jcs, value)
        assert canonical._KEY_TEXT == {}


@settings(max_examples=1000)
@given(value=floats)
def test_floats_equal_rfc8785_and_ecmascript(value: Any) -> None:
    _assert_same_as_rfc8785(jcs, value)
    if math.isfinite(value):
        text = jcs(value).decode()
        assert text == _ecmascript_number(value)
        assert float(text) == value


def _ecmascript_number(value: float) -> str:  # noqa: PLR0911 - one return per spec case
    """ECMA-262 Number::toString(x) written from the spec's steps, as an independent oracle.

    The shortest digits ``s`` (``k`` of them) and ``n`` with ``x = s * 10**(n - k)``
    come from Python's shortest round-trip repr; the layout below is the spec's.
    """
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _ecmascript_number(-value)
    _, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    s = "".join(map(str, digit_tuple))
    k = len(s)
    n = exponent + k
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + s
    sign = "+" if n - 1 >= 0 else "-"
    if k == 1:
        return f"{s}e{sign}{abs(n - 1)}"
    return f"{s[0]}.{s[1:]}e{sign}{abs(n - 1)}"


@pytest.mark.parametrize("encode", ENCODERS)
def test_every_code_point_but_surrogates_is_escaped_as_rfc8785_says(encode: Encoder) -> None:
    # RFC 8785 3.2.2.2: the two-character escapes, \u00xx (lowercase) for other controls,
    # everything else (DEL, U+2028, astral characters) as its UTF-8 bytes.
    short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r"}
    short["\t"] = "\\t"
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    expected = "".join(
        short.get(char, f"\\u{ord(char):04x}" if char < " " else char) for char in everything
    )
    assert encode(everything, "") == f'"{expected}"'.encode()
    assert encode({"k": everything}, "") == rfc8785.dumps({"k": everything})


@pytest.mark.parametrize("encode", ENCODERS)
def test_keys_sort_by_utf16_code_units_not_code_points(encode: Encoder) -> None:
    # U+1F602 is D83D DE02 in UTF-16, below U+E000 and U+FB33; by code point it is above them.
    document = {"\ufb33": 1, "\U0001f602": 2, "\ue000": 3, "\u00f6": 4, "a": 5, "": 6}
    assert encode(document, "") == (
        '{"":6,"a":5,"\u00f6":4,"\U0001f602":2,"\ue000":3,"\ufb33":1}'.encode()
    )


@pytest.mark.parametrize("encode", ENCODERS)
@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param({"body": {"x": float("nan")}}, "nan is not representable", id="nan"),
        pytest.param({"body": {"x": float("-inf")}}, "-inf is not representable", id="-inf"),
        pytest.param({"body": {"x": 2**53}}, "exceeds safe integer domain", id="2**53"),
        pytest.param({"body": {"x": -(2**53)}}, "exceeds safe integer domain", id="-2**53"),
        pytest.param({"body": {"x": 10**4400}}, "integer string conversion", id="huge int"),
        pytest.param({"body": {1: "value"}}, "object keys must be strings", id="int key"),
        pytest.param({"body": {None: 1, "a": 2}}, "object keys must be strings", id="mixed"),
        pytest.param({"body": {"x": "\ud800"}}, "non-UTF-8 codepoints", id="surrogate value"),
        pytest.param({"body": {"\udfff": 1}}, "surrogates not allowed", id="surrogate key"),
        pytest.param({"body": {"x": object()}}, "unsupported type", id="object"),
        pytest.param({"body": {"x": {1, 2}}}, "unsupported type: <class 'set'>", id="set"),
    ],
)
def test_values_jcs_cannot_encode_are_refused_naming_the_place(
    encode: Encoder, value: Any, reason: str
) -> None:
    with pytest.raises(CanonicalizationError) as caught:
        encode(value, "/body/x")
    assert caught.value.where == "/body/x"
    assert str(caught.value).startswith("cannot canonicalize /body/x: ")
    assert reason in str(caught.value)


def test_the_first_refusal_in_rfc8785_order_is_the_one_reported() -> None:
    # Keys sort "a" < "b": the surrogate under "a" comes first, though the fast path meets
    # the string before it could tell (surrogates surface only when the text is encoded).
    document = {"b": float("nan"), "a": ["\ud800"], "c": 2**60}
    with pytest.raises(CanonicalizationError, match="non-UTF-8 codepoints"):
        jcs(document, "doc")
    with pytest.raises(CanonicalizationError, match="object keys must be strings"):
        jcs({"b": {"x": float("nan")}, "a": {"y": 1, 2: 3}}, "doc")


@pytest.mark.parametrize("encode", ENCODERS)
def test_subclasses_encode_as_rfc8785_coerces_them(encode: Encoder) -> None:
    document = {
        "color": Color.red,
        Word.hello: Name("x"),
        "ordered": OrderedDict([("b", Ratio(0.5)), ("a", Items([True]))]),
    }
    assert encode(document, "") == (
        b'{"color":1,"h\xc3\xa9l\\u0001lo":"x","ordered":{"a":[true],"b":0.5}}'
    )


class Backwards(str):
    """A str whose UTF-16 form (rfc8785's sort key) runs in reverse code-point order."""

    __slots__ = ()

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return bytes(255 - unit for unit in str(self).encode(encoding, errors))


def test_a_str_subclass_key_follows_rfc8785_even_when_its_text_is_memoized() -> None:
    jcs({"a": 1, "b": 2})  # puts "a" and "b" in the key memo
    document: dict[Any, Any] = {Backwards("a"): 1, Backwards("b"): 2}
    assert rfc8785.dumps(document) == b'{"b":2,"a":1}'
    assert jcs(document) == b'{"b":2,"a":1}'


@pytest.mark.parametrize("encode", ENCODERS)
def test_a_cycle_is_refused_naming_the_place(encode: Encoder) -> None:
    cycle: list[Any] = []
    cycle.append({"again": cycle})
    with pytest.raises(CanonicalizationError, match="nested too deeply") as caught:
        encode(cycle, "/body")
    assert caught.value.where == "/body"


@pytest.mark.parametrize("encode", ENCODERS)
def test_nesting_past_the_recursion_limit_is_refused(encode: Encoder) -> None:
    deep: Any = 1
    for _ in range(sys.getrecursionlimit() + 10):
        deep = {"d": [deep]}
    with pytest.raises(CanonicalizationError, match="nested too deeply"):
        encode(deep, "/body")


def test_nesting_a_few_hundred_levels_deep_encodes_as_rfc8785_does() -> None:
    deep: Any = [1.5, "\U0001f602"]
    for level in range(300):
        deep = {f"k{level}": deep, "\ue000": None} if level % 2 else [deep]
    assert jcs(deep) == rfc8785.dumps(deep)


def test_output_is_sorted_compact_utf8() -> None:
    assert (
        jcs({"b": 1, "a": "é", "c": [1.0, True, None]})
        == '{"a":"é","b":1,"c":[1,true,null]}'.encode()
    )


def test_a_typical_call_started_entry_encodes_as_rfc8785_does() -> None:
    digest = {"sha256": "a" * 64, "blake3": "b" * 64}
    entry: dict[str, Any] = {
        "v": 1,
        "seq": 7,
        "ts": "2026-11-23T09:15:02.123456Z",
        "kind": "call.started",
        "prev": "c" * 64,
        "body": {
            "call_id": "01JCALL",
            "contract": {
                "identity": {"subject": "alice", "tenant": "acme", "roles": ["analyst"]},
                "entry": {"id": "orders.by_customer", "entry_digest": digest},
                "inputs": {"customer_id": "C-1", "limit": 100, "ratio": 0.25, "all": False},
                "timeout_ms": 30000,
                "lease": None,
            },
        },
    }
    for _ in range(2):
        assert jcs(entry, "entry") == rfc8785.dumps(entry)
