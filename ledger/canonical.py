"""The one canonical JSON encoder of the ledger (RFC 8785, JCS).

Every hashed ledger document goes through :func:`jcs`; nothing hashes the
output of ``json.dumps``. (``catalog`` has its own twin: the two packages do
not import each other.)

:func:`jcs` is a fast encoder for the values a ledger entry holds, and
:func:`jcs_reference` is ``rfc8785.dumps``, the reference it must equal. A
document of exact containers, ASCII keys and no floats (a typical entry body)
goes to orjson, whose output for exactly those values is JCS. Otherwise the
Python path handles exact ``None``, ``bool``, ``int``, ``float``, ``str``,
``list``, ``tuple`` and ``dict`` values itself, and hands every other value
(an ``IntEnum``, a ``dict`` subclass, a type JSON lacks) to ``rfc8785``. It
never decides a refusal on its own: when anything goes wrong (a non-finite
float, an integer outside the safe range, a lone surrogate, a non-string key,
a refused type), the whole document is encoded again by the reference, which
raises its own error, in its own traversal order, with its own message. So the
two agree on the bytes, on *whether* a value is refused, and on the message.

The one place they can differ is the interpreter's recursion limit. Where the
fast path runs out of stack first, the reference decides as for any failure;
but ``rfc8785`` spends a few more frames at the leaves (its string and sort
helpers), so a document nested within a few levels of that limit may encode
on the fast path where the reference would run out of stack. A cyclic or
too-deep document is refused by both as a :class:`CanonicalizationError`.
"""

from __future__ import annotations

import math
from json.encoder import encode_basestring
from typing import Any, Final

import orjson
import rfc8785

from ledger.errors import CanonicalizationError

__all__ = ["jcs", "jcs_reference", "parse_json_int"]

# RFC 8785 3.2.2.3 (as rfc8785 implements it): integers must be exact in an IEEE 754 double.
_INT_MAX: Final = 2**53 - 1
_INT_MIN: Final = -_INT_MAX

# Encoded text (`"name":`) of the short ASCII keys seen so far. A pure memo: entries never
# change, and past the cap new keys take the careful path each time (bodies may carry any key).
_KEY_TEXT: dict[str, str] = {}
_KEY_MEMO_CAP: Final = 4096
_KEY_MEMO_MAX_LEN: Final = 128


# orjson writes exactly JCS for the documents _is_plain admits: strings escaped as RFC 8785
# says, integers within 2**53 (it raises beyond), literals, and members sorted by UTF-8
# bytes, which is UTF-16 order for ASCII keys. Property tests pin it to rfc8785.
_ORJSON_JCS: Final = (
    orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class _Deferred(Exception):
    """Private: the fast path declines a value; the reference encodes it or raises."""


def jcs(obj: Any, where: str = "") -> bytes:  # noqa: ANN401 - any JSON value
    """Return the RFC 8785 bytes of ``obj``, byte-equal to :func:`jcs_reference`.

    Raises :class:`CanonicalizationError` naming ``where`` when ``obj`` holds a
    value JCS cannot encode: a non-finite float, an integer outside the IEEE
    754 safe range, a lone surrogate, a non-string key, a non-JSON type, or a
    nesting too deep for the interpreter (a cycle). The error is the one
    :func:`jcs_reference` raises for the same value.
    """
    try:
        if type(obj) is dict and _is_plain(obj):
            return orjson.dumps(obj, option=_ORJSON_JCS)
    except Exception:  # noqa: BLE001, S110 - a big integer, a lone surrogate, deep nesting: below
        pass
    try:
        return _encode_value(obj).encode("utf-8")
    except Exception:  # noqa: BLE001 - every failure is the reference's to decide and report
        return jcs_reference(obj, where)


def parse_json_int(text: str) -> int | float:
    """``json.loads``'s ``parse_int`` hook for re-encoding checks: RFC 8785's number model.

    JCS numbers are IEEE 754 doubles, and a double of magnitude 2**53 or more (below
    1e21) is written as bare digits: ``1e16`` as ``10000000000000000``. Read back as a
    Python int, that is outside the range :func:`jcs` encodes, so an entry the ledger
    wrote would fail its own canonical check; read as the double it was, it encodes to
    the same bytes. Digits that are no double's JCS text still differ once re-encoded.
    Raises ``ValueError`` for a literal longer than the interpreter converts.
    """
    value = int(text)
    return value if _INT_MIN <= value <= _INT_MAX else float(text)


def jcs_reference(obj: Any, where: str = "") -> bytes:  # noqa: ANN401 - any JSON value
    """Return ``rfc8785.dumps(obj)``: the reference :func:`jcs` is tested against.

    Raises :class:`CanonicalizationError` naming ``where`` for every value
    ``rfc8785`` refuses (its message after ``cannot canonicalize <where>:``),
    and for a nesting too deep for the interpreter (a cycle).
    """
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise CanonicalizationError(
            f"cannot canonicalize {where or 'document'}: {exc}", where=where
        ) from exc
    except RecursionError as exc:
        raise CanonicalizationError(
            f"cannot canonicalize {where or 'document'}: nested too deeply (or a cycle)",
            where=where,
        ) from exc


def _is_plain(container: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """Private: whether ``container`` holds only what orjson writes as JCS.

    That is exact ``dict`` (ASCII ``str`` keys), ``list`` and ``tuple``
    containers around exact ``str``, ``int``, ``bool`` and ``None``. Anything
    else (a float, whose text orjson lays out differently; a subclass; a
    non-ASCII key) sends the document to :func:`_encode_value`. A cycle
    recurses until the interpreter's limit: the caller's failure path refuses it.
    """
    if type(container) is dict:
        for key in container:
            if type(key) is not str or not key.isascii():
                return False
        values: Any = container.values()
    else:
        values = container
    for value in values:
        kind = type(value)
        if kind is str or kind is int or value is None or value is True or value is False:
            continue  # an integer beyond 2**53 makes orjson raise (OPT_STRICT_INTEGER)
        if kind is dict or kind is list or kind is tuple:
            if not _is_plain(value):
                return False
        else:
            return False
    return True


def _encode_value(value: Any) -> str:  # noqa: ANN401, PLR0911 - one flat dispatch on exact types
    """Private: the JCS text of ``value``; raises (anything) when the reference must decide."""
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is dict:
        return _encode_object(value)
    if kind is int:
        if _INT_MIN <= value <= _INT_MAX:
            return int.__repr__(value)
        raise _Deferred
    if kind is list or kind is tuple:
        return (
            "["
            + ",".join(
                [encode_basestring(v) if type(v) is str else _encode_value(v) for v in value]
            )
            + "]"
        )
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is float:
        return _format_float(value)
    # Subclasses (IntEnum, StrEnum, OrderedDict, ...) and non-JSON types: rfc8785's own
    # coercions apply, and its output for a value does not depend on where the value sits.
    return rfc8785.dumps(value).decode("utf-8")


def _encode_object(obj: dict[Any, Any]) -> str:
    """Private: the JCS text of an exact ``dict``; members sorted by UTF-16 code units.

    The fast loop trusts a plain ``sorted`` only while every key is an exact
    ``str`` already in the memo, which holds ASCII keys only (ASCII order is
    UTF-16 order). Any other key sends the whole object to the careful path.
    """
    parts: list[str] = []
    append = parts.append
    for key in sorted(obj):  # mixed key types raise TypeError: the reference refuses them
        head = _KEY_TEXT.get(key)
        if head is None or type(key) is not str:
            return _encode_object_carefully(obj)
        value = obj[key]
        kind = type(value)
        if kind is str:
            append(head + encode_basestring(value))
        elif kind is dict:
            append(head + _encode_object(value))
        elif kind is int and _INT_MIN <= value <= _INT_MAX:
            append(head + int.__repr__(value))
        elif value is None:
            append(head + "null")
        else:
            append(head + _encode_value(value))
    return "{" + ",".join(parts) + "}"


def _encode_object_carefully(obj: dict[Any, Any]) -> str:
    """Private: :func:`_encode_object` for keys outside the memo (new, non-ASCII, not str).

    Code-point order is UTF-16 order when no key holds a character at or above
    U+D800 (an astral character sorts by its lead surrogate, below U+E000), so
    only such keys pay for rfc8785's own ``utf-16be`` sort key, which also
    raises for a lone surrogate.
    """
    joined = "".join(obj)  # a TypeError unless every key is a str: the reference refuses
    if any(type(key) is not str for key in obj):  # a str subclass (StrEnum): rfc8785 coerces
        return rfc8785.dumps(obj).decode("utf-8")
    code_point_order = joined.isascii() or max(joined) < "\ud800"
    keys = sorted(obj) if code_point_order else sorted(obj, key=_utf16_units)
    return "{" + ",".join([_key_text(key) + _encode_value(obj[key]) for key in keys]) + "}"


def _utf16_units(key: str) -> bytes:
    """Private: the sort key rfc8785 uses (big-endian UTF-16 code units)."""
    return key.encode("utf-16be")


def _key_text(key: str) -> str:
    """Private: ``"key":`` for an exact str key; memoized when short and ASCII."""
    head = _KEY_TEXT.get(key)
    if head is None:
        head = encode_basestring(key) + ":"
        if key.isascii() and len(key) <= _KEY_MEMO_MAX_LEN and len(_KEY_TEXT) < _KEY_MEMO_CAP:
            _KEY_TEXT[key] = head
    return head


def _format_float(value: float) -> str:
    """Private: ECMAScript Number::toString of a finite float (RFC 8785 3.2.2.3).

    ``repr`` gives the shortest round-trip digits; only the layout differs.
    Python writes fixed notation for 1e-4 <= |x| < 1e16, ECMAScript for
    1e-6 <= |x| < 1e21; ECMAScript drops ``.0``, pads no exponent digits and
    writes -0 as 0. Non-finite values defer to the reference, which refuses them.
    """
    if not math.isfinite(value):
        raise _Deferred
    if value == 0:
        return "0"
    text = repr(value)
    mantissa, e, exponent_text = text.partition("e")
    if not e:
        return text.removesuffix(".0")
    exponent = int(exponent_text)
    sign = ""
    if mantissa[0] == "-":
        sign, mantissa = "-", mantissa[1:]
    digits = mantissa.replace(".", "")
    if 0 < exponent < 21:  # noqa: PLR2004 - ECMAScript's fixed-notation bound, 1e21
        return sign + digits + "0" * (exponent + 1 - len(digits))
    if -7 < exponent < 0:  # noqa: PLR2004 - ECMAScript's fixed-notation bound, 1e-6
        return sign + "0." + "0" * (-exponent - 1) + digits
    return f"{sign}{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"
