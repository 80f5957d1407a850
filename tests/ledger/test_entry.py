from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from ledger.entry import (
    BODY_MODELS,
    ZERO_PREV,
    Entry,
    Kind,
    entry_from_leaf_input,
    format_ts,
    leaf_hash,
    leaf_input,
    parse_ts,
)
from ledger.errors import CanonicalizationError, InvalidTimestamp

# The fields FORMATS section 3 says each kind's body carries at least.
FORMATS_BODY_FIELDS = {
    "service.started": {"version", "module_sha256", "catalog_digest", "authority_status"},
    "call.started": {"call_id", "contract"},
    "call.denied": {"call_id", "reason", "contract"},
    "call.finished": {
        "call_id",
        "verdict",
        "exit_code",
        "result_digest",
        "rows",
        "bytes",
        "duration_ms",
    },
    "packet.issued": {"call_id", "packet_id", "manifest_hash"},
    "approval.granted": {
        "approval_id",
        "entry_id",
        "entry_digest",
        "inputs_digest",
        "requester",
        "requester_tenant",
        "tenant_relation",
        "approver",
        "approved_at",
        "expires_at",
        "reason",
        "policy",
    },
    "call.dry_run": {"call_id", "contract", "would_run", "checks"},
    "auth.refused": {"via", "client", "request", "request_id", "code", "reason", "where"},
    "approval.denied": {
        "entry_id",
        "requester",
        "requester_tenant",
        "approver",
        "code",
        "reason",
        "where",
        "determining_policies",
    },
    "call.cancelled": {"call_id", "by", "policy"},
    "packet.removed": {"packet_id", "manifest_hash", "reason", "issued_seq"},
    "replay.started": {"replay_id", "by", "filters", "range", "catalog_digest", "authority_status"},
    "replay.finished": {"replay_id", "started_seq", "calls", "counts", "report_digest"},
    "access.read": {"principal", "read", "request_id", "target"},
}


def _entry(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "v": 1,
        "seq": 0,
        "ts": "2026-11-23T09:15:02.123456Z",
        "kind": "call.denied",
        "prev": ZERO_PREV,
        "body": {"call_id": "01JCALL", "reason": "policy deny"},
    }
    fields.update(overrides)
    return fields


def test_format_ts_is_utc_with_microseconds_and_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_ts(datetime(2026, 11, 23, 11, 15, 2, 123456, tzinfo=plus_two)) == (
        "2026-11-23T09:15:02.123456Z"
    )
    assert format_ts(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    assert format_ts(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000000Z"


def test_format_ts_refuses_a_naive_datetime() -> None:
    with pytest.raises(InvalidTimestamp) as caught:
        format_ts(datetime(2026, 11, 23, 9, 15, 2))  # noqa: DTZ001 - the naive value under test
    assert caught.value.where == "ts"


def test_parse_ts_round_trips_and_refuses_other_forms() -> None:
    moment = datetime(2026, 11, 23, 9, 15, 2, 123456, tzinfo=UTC)
    assert parse_ts(format_ts(moment)) == moment
    for text in [
        "2026-11-23T09:15:02Z",
        "2026-11-23T09:15:02.123456+00:00",
        "2026-11-23 09:15:02.123456Z",
        "2026-13-23T09:15:02.123456Z",
        "2026-11-23T09:15:02.1234567Z",
        " 2026-11-23T09:15:02.123456Z",
    ]:
        with pytest.raises(InvalidTimestamp):
            parse_ts(text)


def test_every_kind_has_a_body_model_with_the_formats_fields() -> None:
    """The FORMATS fields are the required ones; any other field a model names is optional."""
    assert set(BODY_MODELS) == {kind.value for kind in Kind} == set(FORMATS_BODY_FIELDS)
    for kind, model in BODY_MODELS.items():
        fields = model.model_fields
        assert FORMATS_BODY_FIELDS[kind] <= set(fields), kind
        beyond = {name for name in fields if name not in FORMATS_BODY_FIELDS[kind]}
        assert all(not fields[name].is_required() for name in beyond), (kind, beyond)


def test_sample_bodies_are_valid_and_may_carry_more(
    sample_bodies: dict[str, dict[str, Any]],
) -> None:
    for kind, body in sample_bodies.items():
        entry = Entry.model_validate(_entry(kind=kind, body={**body, "extra": [1, "two"]}))
        assert entry.kind == Kind(kind)
        assert entry.body["extra"] == [1, "two"]


@pytest.mark.parametrize(
    ("kind", "drop"),
    [(kind, field) for kind, fields in FORMATS_BODY_FIELDS.items() for field in sorted(fields)],
)
def test_a_body_without_a_formats_field_is_refused_naming_it(
    kind: str, drop: str, sample_bodies: dict[str, dict[str, Any]]
) -> None:
    body = {key: value for key, value in sample_bodies[kind].items() if key != drop}
    if kind == "call.denied" and drop == "contract":
        Entry.model_validate(_entry(kind=kind, body=body))  # "what was known": may be absent
        return
    with pytest.raises(ValidationError) as caught:
        Entry.model_validate(_entry(kind=kind, body=body))
    assert f"body of {kind}" in str(caught.value)
    assert drop in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"v": 2}, "v"),
        ({"v": True}, "v"),
        ({"seq": -1}, "seq"),
        ({"seq": "0"}, "seq"),
        ({"kind": "call.unknown"}, "kind"),
        ({"prev": "0" * 63}, "prev"),
        ({"prev": "A" * 64}, "prev"),
        ({"ts": "2026-11-23T09:15:02Z"}, "ts"),
        ({"ts": "2026-02-30T09:15:02.000000Z"}, "2026-02-30"),
        ({"body": {"call_id": "../etc", "reason": "x"}}, "call_id"),
        ({"body": {"call_id": "c1", "reason": ("not", "json")}}, "reason"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_entries_are_refused_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Entry.model_validate(_entry(**overrides))
    assert field in str(caught.value)


def test_leaf_input_is_the_exact_jcs_bytes() -> None:
    entry = Entry.model_validate(_entry(body={"reason": "é ok", "call_id": "c1", "n": 1.0}))
    assert leaf_input(entry) == (
        b'{"body":{"call_id":"c1","n":1,"reason":"\xc3\xa9 ok"},"kind":"call.denied",'
        b'"prev":"' + b"0" * 64 + b'","seq":0,"ts":"2026-11-23T09:15:02.123456Z","v":1}'
    )


def test_leaf_input_refuses_a_value_jcs_cannot_encode() -> None:
    entry = Entry.model_validate(
        _entry(seq=4, body={"call_id": "c1", "reason": "x", "f": float("inf")})
    )
    with pytest.raises(CanonicalizationError) as caught:
        leaf_input(entry)
    assert caught.value.where == "ledger entry seq 4"


def test_leaf_hash_is_sha256_of_zero_byte_and_leaf_input() -> None:
    data = b'{"v":1}'
    assert leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()


def test_entry_from_leaf_input_round_trips() -> None:
    entry = Entry.model_validate(_entry())
    assert entry_from_leaf_input(leaf_input(entry)) == entry
    with pytest.raises(ValueError, match="Expecting"):
        entry_from_leaf_input(b"{not json")


def test_a_commands_end_in_call_finished_is_checked_by_its_model(
    sample_bodies: dict[str, dict[str, Any]],
) -> None:
    stream = {"bytes": 3, "digest": {"sha256": "a" * 64, "blake3": "b" * 64}, "truncated": False}
    command = {
        "exit_code": None,
        "signal": 9,
        "killed_reason": "timeout",
        "reason": "killed at its deadline",
        "stdout": stream,
        "stderr": stream,
    }
    body = {**sample_bodies["call.finished"], "verdict": "timed_out", "command": command}
    assert Entry.model_validate(_entry(kind="call.finished", body=body)).body["command"] == command
    wrong = {**body, "command": {**command, "killed_reason": "bored"}}
    with pytest.raises(ValidationError) as caught:
        Entry.model_validate(_entry(kind="call.finished", body=wrong))
    assert "command.killed_reason" in str(caught.value)
