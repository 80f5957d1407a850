"""structlog configuration: one labelled place, with redaction before any renderer.

Redaction drops values under credential-like keys and any string value that
``catalog.params.is_secret_like`` flags, the same test the contract applies to
inputs. The ledger, not the log, is the evidence.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from catalog.params import is_secret_like
from service.context import call_id_var, request_id_var

REDACTED = "[redacted]"
_SECRET_KEYS = (
    "authorization",
    "token",
    "password",
    "secret",
    "api_key",
    "apikey",
    "credential",
    "cookie",
)


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_KEYS)


def _redact_value(key: str, value: object) -> object:
    if _is_secret_key(key):
        return REDACTED
    if isinstance(value, str) and is_secret_like(value):
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact_secrets(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: replace credential-like values with ``[redacted]``."""
    for key in list(event_dict):
        if key != "event":
            event_dict[key] = _redact_value(key, event_dict[key])
        elif isinstance(event_dict[key], str) and is_secret_like(event_dict[key]):
            event_dict[key] = REDACTED
    return event_dict


def add_request_context(
    _logger: object, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: the request id and call id of the current context."""
    request_id = request_id_var.get()
    call_id = call_id_var.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    if call_id is not None:
        event_dict.setdefault("call_id", call_id)
    return event_dict


def configure_logging(*, json_logs: bool = True, level: int = logging.INFO) -> None:
    """Configure structlog process-wide. The only place logging state is set."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_request_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write per line (print() writes the line and its newline apart: two syscalls).
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
