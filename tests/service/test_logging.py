"""Logs never carry credentials: redaction runs before any renderer."""

from __future__ import annotations

import structlog

from service.logging import REDACTED, redact_secrets


def test_credential_keys_and_secret_like_values_are_redacted() -> None:
    event = {
        "event": "request",
        "authorization": "Bearer gvx-demo-alice",
        "params": {"tenant": "acme", "note": "-----BEGIN PRIVATE KEY-----abc"},
        "aws": "AKIAIOSFODNN7EXAMPLE",
        "entry": "orders.by_customer",
    }
    out = redact_secrets(None, "info", dict(event))
    assert out["authorization"] == REDACTED
    assert out["params"] == {"tenant": "acme", "note": REDACTED}
    assert out["aws"] == REDACTED
    assert out["entry"] == "orders.by_customer"


def test_capture_logs_shows_no_credential_from_a_configured_chain() -> None:
    capture = structlog.testing.LogCapture()
    structlog.configure(processors=[redact_secrets, capture])
    structlog.get_logger().info("login", api_key="gvx-demo-alice", user="alice")
    assert capture.entries == [
        {"event": "login", "api_key": REDACTED, "user": "alice", "log_level": "info"}
    ]
