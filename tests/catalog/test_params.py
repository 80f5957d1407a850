"""bind_inputs and is_secret_like."""

# ruff: noqa: E501 - case tables read best as one case per line

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.errors import InputError, InputErrors
from catalog.model import ParamSpec, ParamType, QueryEntry
from catalog.params import MAX_SAFE_INTEGER, bind_inputs, is_secret_like

AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)


def _entry(**params: ParamSpec) -> QueryEntry:
    return QueryEntry(
        id="orders.search",
        title="Search",
        source="demo",
        engine="sqlite",
        sql_file="q.sql",
        sql="SELECT 1",
        params=params,
    )


ENTRY = _entry(
    n=ParamSpec(type=ParamType.integer, min=1, max=100),
    ratio=ParamSpec(type=ParamType.number, required=False, min=0, max=1),
    name=ParamSpec(type=ParamType.string, required=False, max_length=5, pattern="[a-z]+"),
    flag=ParamSpec(type=ParamType.boolean, required=False, default=False),
    day=ParamSpec(type=ParamType.date, required=False),
    at=ParamSpec(type=ParamType.timestamp, required=False),
    status=ParamSpec(type=ParamType.enum, required=False, choices=("open", "paid")),
)


def _refusals(raw: dict[str, object], *, from_text: bool) -> dict[str, str]:
    with pytest.raises(InputErrors) as info:
        bind_inputs(ENTRY, raw, from_text=from_text)
    assert all(e.entry == "orders.search" for e in info.value.errors)
    return {e.parameter: e.reason for e in info.value.errors}


def test_text_inputs_are_normalized() -> None:
    bound = bind_inputs(
        ENTRY,
        {
            "n": "7", "ratio": "0.25", "name": "abc", "flag": "TRUE", "day": "2026-02-28",
            "at": "2026-11-23T10:15:02.5+01:00", "status": "paid",
        },
        from_text=True,
    )  # fmt: skip
    assert bound == {
        "n": 7, "ratio": 0.25, "name": "abc", "flag": True, "day": "2026-02-28",
        "at": "2026-11-23T09:15:02.500000Z", "status": "paid",
    }  # fmt: skip
    assert type(bound["ratio"]) is float


def test_json_inputs_are_normalized_and_defaults_filled() -> None:
    bound = bind_inputs(
        ENTRY, {"n": 100, "ratio": 1, "at": "2026-01-01T00:00:00Z"}, from_text=False
    )
    assert bound == {
        "n": 100, "ratio": 1.0, "name": None, "flag": False, "day": None,
        "at": "2026-01-01T00:00:00.000000Z", "status": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "from_text", "parameter", "reason"),
    [
        pytest.param({"n": "1", "x": "1"}, True, "x", "unknown parameter (declared: at, day, flag, n, name, ratio, status)", id="unknown"),
        pytest.param({}, True, "n", "required parameter missing", id="missing"),
        pytest.param({"n": None}, False, "n", "required parameter missing", id="null-required"),
        pytest.param({"n": "seven"}, True, "n", "expected an integer, got 'seven'", id="integer-text"),
        pytest.param({"n": 7.0}, False, "n", "expected an integer, got 7.0", id="integer-float"),
        pytest.param({"n": True}, False, "n", "expected an integer, got True", id="integer-bool"),
        pytest.param({"n": "7"}, False, "n", "expected an integer, got '7'", id="integer-json-string"),
        pytest.param({"n": 0}, False, "n", "0 is below the minimum 1", id="below-min"),
        pytest.param({"n": "101"}, True, "n", "101 is above the maximum 100", id="above-max"),
        pytest.param({"n": "1", "ratio": "nan"}, True, "ratio", "expected a number, got 'nan'", id="number-nan"),
        pytest.param({"n": 1, "ratio": float("inf")}, False, "ratio", "expected a finite number, got inf", id="number-inf"),
        pytest.param({"n": "1", "name": "abcdef"}, True, "name", "longer than 5 characters (6)", id="too-long"),
        pytest.param({"n": "1", "name": "ab1"}, True, "name", "'ab1' does not match the pattern '[a-z]+'", id="pattern"),
        pytest.param({"n": 1, "name": 5}, False, "name", "expected a string, got 5", id="string-type"),
        pytest.param({"n": "1", "flag": "yes"}, True, "flag", "expected true or false, got 'yes'", id="boolean-text"),
        pytest.param({"n": "1", "day": "2026-02-30"}, True, "day", "not a calendar date: '2026-02-30'", id="date-invalid"),
        pytest.param({"n": "1", "day": "20260201"}, True, "day", "expected a date YYYY-MM-DD, got '20260201'", id="date-shape"),
        pytest.param({"n": "1", "at": "2026-01-01T00:00:00"}, True, "at", "expected an RFC 3339 timestamp with offset, got '2026-01-01T00:00:00'", id="timestamp-naive"),
        pytest.param({"n": "1", "status": "lost"}, True, "status", "'lost' is not one of open, paid", id="not-a-choice"),
        pytest.param({"n": 2**53}, False, "n", "9007199254740992 is outside the exactly representable range +-(2**53 - 1)", id="unsafe-integer"),
        pytest.param({"n": 1}, True, "n", "expected text, got int", id="text-mode-needs-text"),
    ],
)  # fmt: skip
def test_refusals_name_the_parameter(
    raw: dict[str, object], from_text: bool, parameter: str, reason: str
) -> None:
    assert _refusals(raw, from_text=from_text) == {parameter: reason}


def test_all_problems_are_collected() -> None:
    refused = _refusals({"ratio": "2", "status": "x", "bogus": "1"}, from_text=True)
    assert sorted(refused) == ["bogus", "n", "ratio", "status"]


def test_secret_input_is_refused_without_echo() -> None:
    with pytest.raises(InputErrors) as info:
        bind_inputs(ENTRY, {"n": "1", "name": AWS_KEY}, from_text=True)
    error = info.value.errors[0]
    assert isinstance(error, InputError)
    assert (error.parameter, error.reason) == (
        "name",
        "looks like a secret; credentials are never accepted as inputs",
    )
    assert AWS_KEY not in str(info.value)
    assert AWS_KEY not in info.value.message


def test_secret_in_integer_slot_is_not_echoed() -> None:
    with pytest.raises(InputErrors) as info:
        bind_inputs(ENTRY, {"n": JWT}, from_text=True)
    assert JWT not in str(info.value)
    assert info.value.errors[0].reason.startswith("looks like a secret")


SECRETS = [
    pytest.param("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----", id="pem"),
    pytest.param("-----BEGIN RSA PRIVATE KEY-----\nabc", id="pem-rsa"),
    pytest.param("-----BEGIN OPENSSH PRIVATE KEY-----", id="pem-openssh"),
    pytest.param(JWT, id="jwt"),
    pytest.param(AWS_KEY, id="aws-access-key"),
    pytest.param("key ASIAY34FZKBOKMUTVV7A in text", id="aws-session-key-embedded"),
    pytest.param("ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", id="github-token"),
    pytest.param("xoxb-123456789012-abcdefghij", id="slack-token"),
    pytest.param("password=hunter2", id="password-assignment"),
    pytest.param("db_password: s3cr3t", id="password-colon"),
    pytest.param("API_KEY = abc123", id="api-key-assignment"),
    pytest.param("client_secret=xyz", id="client-secret"),
    pytest.param("Bearer abcdefghijklmnop1234", id="bearer"),
    pytest.param("postgresql://app:pa55word@db.example.org/prod", id="url-credentials"),
    pytest.param("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", id="aws-secret-key"),
    pytest.param("Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZkdISUpL", id="base64-token"),
    pytest.param("sk_live_4eC39HqLyjWDarjtT1zdp7dc", id="stripe-live"),
]  # fmt: skip

NOT_SECRETS = [
    pytest.param("hello world", id="words"),
    pytest.param("customer", id="word"),
    pytest.param("Antidisestablishmentarianism and internationalization", id="long-words"),
    pytest.param("jane.doe+orders@example.com", id="email"),
    pytest.param("2026-11-23", id="date"),
    pytest.param("2026-11-23T09:15:02.123456Z", id="timestamp"),
    pytest.param("ord_12345", id="short-id"),
    pytest.param("01HZY8K3M4N5P6Q7R8S9T0VWXY", id="ulid"),
    pytest.param("123e4567-e89b-12d3-a456-426614174000", id="uuid"),
    pytest.param("123E4567E89B12D3A456426614174000", id="uuid-no-dashes"),
    pytest.param("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", id="sha256-hex"),
    pytest.param("/home/someone/projects/govex/examples/demo/catalog", id="path"),
    pytest.param("https://example.org/orders?page=2&sort=desc", id="url"),
    pytest.param("the password policy changed", id="word-password-no-assignment"),
    pytest.param("", id="empty"),
    pytest.param("O'Brien & Sons, Ltd. (Dublin)", id="company-name"),
]  # fmt: skip


@pytest.mark.parametrize("value", SECRETS)
def test_secret_like(value: str) -> None:
    assert is_secret_like(value)


@pytest.mark.parametrize("value", NOT_SECRETS)
def test_not_secret_like(value: str) -> None:
    assert not is_secret_like(value)


@given(st.data())
def test_integers_within_bounds_round_trip(data: st.DataObject) -> None:
    low = data.draw(st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER), label="min")
    high = data.draw(st.integers(low, MAX_SAFE_INTEGER), label="max")
    value = data.draw(st.integers(low, high), label="value")
    entry = _entry(v=ParamSpec(type=ParamType.integer, min=low, max=high))
    assert bind_inputs(entry, {"v": str(value)}, from_text=True) == {"v": value}
    assert bind_inputs(entry, {"v": value}, from_text=False) == {"v": value}


@given(st.integers(-MAX_SAFE_INTEGER + 1, MAX_SAFE_INTEGER - 10**6), st.integers(1, 10**6))
def test_integers_outside_bounds_are_refused(low: int, gap: int) -> None:
    entry = _entry(v=ParamSpec(type=ParamType.integer, min=low, max=low + gap))
    with pytest.raises(InputErrors) as info:
        bind_inputs(entry, {"v": low - 1}, from_text=False)
    assert info.value.errors[0].reason == f"{low - 1} is below the minimum {low}"
