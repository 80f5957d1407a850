"""Call inputs: validate and normalize them against an entry's parameters.

:func:`bind_inputs` is the only way raw inputs (CLI text or JSON) become the
values a runner binds. :func:`is_secret_like` is shared with log redaction:
secret-looking values are refused as inputs and never echoed in messages.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from catalog.errors import InputError, InputErrors
from catalog.model import ParamType

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from catalog.model import CommandEntry, JsonScalar, ParamSpec, QueryEntry

# Integers beyond this cannot be carried exactly through JCS (RFC 8785 / IEEE 754).
MAX_SAFE_INTEGER = 2**53 - 1

_INT_TEXT = re.compile(r"[+-]?\d+")
_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP_TEXT = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})"
)
_BOOL_TEXT = {"true": True, "false": False}
_SHOWN_CHARS = 40

# Secret shapes (see is_secret_like).
_SECRET_PATTERNS = (
    re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),  # JWT / JWS
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),  # GitHub tokens
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    re.compile(r"\b[sr]k_live_[A-Za-z0-9]{10,}"),  # Stripe live keys
    re.compile(
        r"(?i)(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
        r"|private[_-]?key|client[_-]?secret)\b\s*[:=]\s*\S+"
    ),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # credentials inside a URL
)
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")
_HEX_OR_UUID = re.compile(r"[0-9A-Fa-f-]+")
_MIN_CLASSES = 3
_MIN_ENTROPY_BITS = 3.5


class ValueRefused(ValueError):
    """One value refused for a parameter; the message is the reason (never a secret)."""


def is_secret_like(value: str) -> bool:
    """Tell whether ``value`` looks like a credential.

    Recognized: PEM private keys, JWT-shaped tokens, AWS access key ids, a few
    well-known vendor token prefixes, ``password=...`` style assignments,
    ``Bearer ...`` headers, URLs with a password, and runs of 32 or more
    token characters (base64 / base64url alphabet) mixing upper case, lower
    case and digits with high character entropy.

    Deliberately NOT secret-like: runs of hex digits and dashes of any length
    (SHA-256 digests and UUIDs are identifiers here, and are logged and
    ledgered everywhere), words, e-mail addresses, dates and short ids.
    """
    if any(p.search(value) for p in _SECRET_PATTERNS):
        return True
    return any(_high_entropy(m.group()) for m in _TOKEN_RUN.finditer(value))


def _high_entropy(run: str) -> bool:
    if _HEX_OR_UUID.fullmatch(run):
        return False
    classes = sum(
        (
            any(c.islower() for c in run),
            any(c.isupper() for c in run),
            any(c.isdigit() for c in run),
        )
    )
    counts = Counter(run)
    entropy = -sum(n / len(run) * math.log2(n / len(run)) for n in counts.values())
    return classes >= _MIN_CLASSES and entropy >= _MIN_ENTROPY_BITS


def bind_inputs(
    entry: QueryEntry | CommandEntry, raw: Mapping[str, object], *, from_text: bool
) -> dict[str, JsonScalar]:
    """Validate ``raw`` against ``entry.params`` and return normalized values.

    ``from_text`` is true for CLI ``--param name=value`` strings, false for
    JSON values. Every declared parameter is in the result: a missing optional
    one gets its default (or ``None``). Normalized forms: integer -> int,
    number -> finite float, string and enum -> str, boolean -> bool, date ->
    ``YYYY-MM-DD``, timestamp -> RFC 3339 UTC with microseconds and ``Z``.

    Raises :class:`InputErrors` listing every refused parameter (unknown,
    missing, wrong type, out of range, too long, pattern or choice miss,
    secret-like). A secret-like value never appears in any message.
    """
    errors: list[InputError] = []
    bound: dict[str, JsonScalar] = {}
    for name in sorted(set(raw) - set(entry.params)):
        declared = ", ".join(sorted(entry.params)) or "none"
        errors.append(
            InputError(
                entry=entry.id, parameter=name, reason=f"unknown parameter (declared: {declared})"
            )
        )
    for name, spec in entry.params.items():
        value = raw.get(name)
        if value is None:
            if spec.required:
                errors.append(
                    InputError(entry=entry.id, parameter=name, reason="required parameter missing")
                )
            bound[name] = spec.default
            continue
        try:
            bound[name] = coerce_value(spec, value, from_text=from_text)
        except ValueRefused as exc:
            errors.append(InputError(entry=entry.id, parameter=name, reason=str(exc)))
    if errors:
        raise InputErrors(errors)
    return bound


def coerce_value(spec: ParamSpec, value: object, *, from_text: bool) -> JsonScalar:
    """Normalize one ``value`` for ``spec``; raise :class:`ValueRefused` with the reason.

    The reason names the value (shortened) only when it is not secret-like.
    Also used by :mod:`catalog.load` to check defaults (TOML dates and
    datetimes are accepted there, as JSON-mode values).
    """
    if isinstance(value, str) and is_secret_like(value):
        raise ValueRefused("looks like a secret; credentials are never accepted as inputs")
    if from_text and not isinstance(value, str):
        raise ValueRefused(f"expected text, got {type(value).__name__}")
    normalized = _COERCERS[spec.type](value, from_text)
    _check_limits(spec, normalized)
    return normalized


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _integer(value: object, from_text: bool) -> int:
    if from_text and isinstance(value, str) and _INT_TEXT.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueRefused(f"expected an integer, got {_show(value)}")
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueRefused(f"{value} is outside the exactly representable range +-(2**53 - 1)")
    return value


def _number(value: object, from_text: bool) -> float:
    if from_text and isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        value = float(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueRefused(f"expected a number, got {_show(value)}")
    if not math.isfinite(value):
        raise ValueRefused(f"expected a finite number, got {_show(value)}")
    return float(value)


def _string(value: object, _from_text: bool) -> str:
    if not isinstance(value, str):
        raise ValueRefused(f"expected a string, got {_show(value)}")
    return value


def _boolean(value: object, from_text: bool) -> bool:
    if from_text and isinstance(value, str) and value.lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.lower()]
    if not isinstance(value, bool):
        expected = "true or false" if from_text else "a JSON boolean"
        raise ValueRefused(f"expected {expected}, got {_show(value)}")
    return value


def _date(value: object, _from_text: bool) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueRefused(f"not a calendar date: {_show(value)}") from None
    raise ValueRefused(f"expected a date YYYY-MM-DD, got {_show(value)}")


def _timestamp(value: object, _from_text: bool) -> str:
    parsed: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str) and _TIMESTAMP_TEXT.fullmatch(value):
        try:
            parsed = datetime.fromisoformat(value.upper())
        except ValueError:
            raise ValueRefused(f"not a valid timestamp: {_show(value)}") from None
    if parsed is None:
        raise ValueRefused(f"expected an RFC 3339 timestamp with offset, got {_show(value)}")
    if parsed.tzinfo is None:
        raise ValueRefused(f"timestamp needs a time zone offset (Z or +hh:mm): {_show(value)}")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _enum(value: object, _from_text: bool) -> str:
    if not isinstance(value, str):
        raise ValueRefused(f"expected one of the choices, got {_show(value)}")
    return value


_COERCERS: Mapping[ParamType, Callable[[object, bool], JsonScalar]] = MappingProxyType(
    {
        ParamType.integer: _integer,
        ParamType.number: _number,
        ParamType.string: _string,
        ParamType.boolean: _boolean,
        ParamType.date: _date,
        ParamType.timestamp: _timestamp,
        ParamType.enum: _enum,
    }
)


def _check_limits(spec: ParamSpec, value: JsonScalar) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if spec.min is not None and value < spec.min:
            raise ValueRefused(f"{value} is below the minimum {spec.min}")
        if spec.max is not None and value > spec.max:
            raise ValueRefused(f"{value} is above the maximum {spec.max}")
    if isinstance(value, str):
        if spec.max_length is not None and len(value) > spec.max_length:
            raise ValueRefused(f"longer than {spec.max_length} characters ({len(value)})")
        if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
            raise ValueRefused(f"{_show(value)} does not match the pattern {spec.pattern!r}")
        if spec.choices is not None and value not in spec.choices:
            raise ValueRefused(f"{_show(value)} is not one of {', '.join(spec.choices)}")
