"""Service settings, read once at the edge (CLI callback or uvicorn factory) and passed down.

Sources, the first that sets a field wins: constructor arguments (command-line options),
``GOVEX_<FIELD>`` environment variables, the configuration file ``govex.toml`` (only when
:mod:`service.config` loads one, through :func:`settings_from_file`), the defaults.
``GOVEX_SOURCES`` is a JSON object mapping source names to SQLite file paths or PostgreSQL
URLs (``service.sources`` tells them apart and keeps a URL's password out of every
message). Nothing here is read at import time; docs/operations.md's table of settings is
generated from the fields below (``service.config.settings_table``).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from catalog.ids import is_entry_id

DEFAULT_LEDGER_URL = "sqlite:///var/ledger.sqlite"
_SQLITE_FILE_PREFIX = "sqlite:///"
# The file source of the Settings being built by settings_from_file; None: no file.
_file_source: ContextVar[TomlConfigSettingsSource | None] = ContextVar(
    "govex_settings_file", default=None
)


def sqlite_file(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL; None for any other URL."""
    if url.startswith(_SQLITE_FILE_PREFIX) and url != _SQLITE_FILE_PREFIX + ":memory:":
        return Path(url.removeprefix(_SQLITE_FILE_PREFIX))
    return None


class Settings(BaseSettings):
    """Everything the runtime needs; frozen once built."""

    model_config = SettingsConfigDict(env_prefix="GOVEX_", frozen=True, extra="forbid")

    catalog_dir: Path = Field(
        description="Catalog directory: `catalog.toml`, the `.sql` files, `catalog.seal.json`."
    )
    sources: Annotated[
        dict[str, str],
        # repr=False: a PostgreSQL URL may hold a password (see service.sources).
        Field(
            description='Source name -> SQLite file or `postgresql://` URL (see "PostgreSQL'
            ' sources"): a `[sources]` table in the file, a JSON object in the environment,'
            ' e.g. `{"demo": "var/demo/demo.sqlite"}`. Every source the catalog names'
            " must be configured.",
            repr=False,
        ),
    ] = {}
    keys_file: Path = Field(
        description="API keys file (`govex.keys/v1`, hashed tokens), followed on change."
    )
    ledger_url: str = Field(
        default=DEFAULT_LEDGER_URL,
        description="SQLAlchemy URL of the ledger database (a SQLite file, or PostgreSQL).",
    )
    packet_root: Path = Field(
        default=Path("var/packets"),
        description="Folder packets are written to (`<packet_id>.zip`; staging in `.staging/`,"
        " records of removed packets in `.removed/`).",
    )
    packet_upload_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        ge=1,
        description="Largest packet zip `POST /v1/packets/verify` accepts (256 MiB); a larger"
        " body gets 413.",
    )
    policies_dir: Path | None = Field(
        default=None,
        description="Cedar schema (`govex.cedarschema`) and policies (`*.cedar`); unset: the"
        " bundled `policies/`.",
    )
    origin: str = Field(
        default="govex.localhost/ledger/dev",
        description="Ledger origin (FORMATS section 3), stable for the life of a ledger; the"
        " name of the ledger key.",
    )
    provisional: bool = Field(
        default=False,
        description="Development override: run an unsealed or edited catalog, stamped provisional.",
    )
    ledger_key_file: Path | None = Field(
        default=None,
        description=(
            "The ledger's C2SP signer key (`PRIVATE+KEY+<origin>+...`) that signs checkpoints;"
            " its name must be the origin. Unset: no checkpoints are signed and their endpoints"
            " answer 503."
        ),
    )
    masking_key_file: Path | None = Field(
        default=None,
        description=(
            "Secret key (hex, 32+ bytes; `govex keys masking`) that masks sensitive columns;"
            " only its key id is ever recorded. Unset: start is refused when an entry lists"
            " `sensitive_columns`."
        ),
    )
    checkpoint_interval_s: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds between periodic checkpoints (with a key); 0 disables them"
        " (on-demand ones remain).",
    )
    # JWT bearer tokens (verified only); service.authenticate checks these go together.
    jwt_jwks_file: Path | None = Field(
        default=None,
        description="JWKS file (RFC 7517) of the JWT issuer's public signing keys; or"
        " `jwt_public_key_file`, not both. Unset (both): API keys only.",
    )
    jwt_public_key_file: Path | None = Field(
        default=None,
        description="One PEM public key for JWTs (its `key_id` is the key's RFC 9278"
        " thumbprint URI).",
    )
    jwt_issuer: str | None = Field(
        default=None, description="The `iss` every JWT must carry; required with a JWT key."
    )
    jwt_audience: str | None = Field(
        default=None,
        description="The `aud` every JWT must carry (or list); required with a JWT key.",
    )
    jwt_algorithms: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None,
        description="JWT algorithm allowlist from `EdDSA`, `ES256`, `ES384`, `PS256`, `RS256`"
        " (an array in the file; comma-separated or a JSON list in the environment); unset:"
        " all of those.",
    )
    jwt_leeway_s: int = Field(
        default=60,
        ge=0,
        le=300,
        description="Clock skew allowed on `exp`, `nbf` and `iat`, 0 to 300 seconds.",
    )
    auth_failure_limit: int = Field(
        default=5,
        ge=1,
        description="Failed authentications from one client within `auth_failure_window_s`"
        " before it gets 429.",
    )
    auth_failure_window_s: float = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="The window of `auth_failure_limit`, in seconds.",
    )

    approval_default_ttl_s: int = Field(
        default=3600, gt=0, description="How long an approval lasts when the approver names no TTL."
    )
    approval_max_ttl_s: int = Field(
        default=86400, gt=0, description="The longest TTL an approver may give an approval."
    )

    call_wait_s: float = Field(
        default=10.0,
        ge=0,
        le=300,
        allow_inf_nan=False,
        description="How long POST /v1/calls waits for a result before answering 202.",
    )
    max_request_bytes: int = Field(
        default=1 << 20,
        ge=4096,
        le=1 << 30,
        description="The largest request body accepted, in bytes; a larger one is refused "
        "(413 request_too_large) before it is read whole.",
    )
    call_workers: int = Field(
        default=8, ge=1, le=256, description="Calls one process runs at once (its thread pool)."
    )
    shutdown_grace_s: float = Field(
        default=30.0,
        ge=0,
        allow_inf_nan=False,
        description="On shutdown, how long running calls may finish before they are cancelled.",
    )

    # Operations (docs/operations.md): retention and metrics.
    packet_retention_days: int = Field(
        default=0,
        ge=0,
        description="Days a packet file is kept after its `packet.issued` entry; older ones are"
        " removed and ledgered (`packet.removed`). 0: kept forever.",
    )
    packet_sweep_interval_s: float = Field(
        default=3600.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds between the server's retention sweeps (with a retention).",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="When set, `GET /metrics` requires `Authorization: Bearer <token>`;"
        " unset: open, like `/healthz`.",
    )

    # The web console (service/console, docs/console.md).
    console_session_key_file: Path | None = Field(
        default=None,
        description="Secret file (at least 32 bytes, e.g. 64 hex digits) that signs the web"
        " console's session cookies; every worker must read the same one. Unset: derived from"
        " `ledger_key_file`; neither set: console sign-in is off (503).",
    )
    console_session_ttl_s: int = Field(
        default=28800,
        ge=60,
        le=7 * 86400,
        description="How long a console session lasts after sign-in, in seconds (never past a"
        " JWT's own `exp`).",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env file is read
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - nor a secrets folder
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then ``GOVEX_*`` variables, then the file (:func:`settings_from_file`)."""
        del settings_cls
        file_source = _file_source.get()
        if file_source is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, file_source)

    @field_validator("sources")
    @classmethod
    def _source_names_are_ids(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not is_entry_id(name):
                raise ValueError(f"source name {name!r} is not a valid identifier")
        return value

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _algorithm_list(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment: "EdDSA,ES256" or a JSON list
            text = value.strip()
            if text.startswith("["):
                return tuple(json.loads(text))
            return tuple(part.strip() for part in text.split(",") if part.strip()) or None
        return value

    @field_validator("origin")
    @classmethod
    def _origin_is_one_line(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError("origin must be non-empty and contain no whitespace")
        return value


def settings_from_file(file_source: TomlConfigSettingsSource | None, **values: Any) -> Settings:  # noqa: ANN401 - field values
    """Settings from ``values``, then ``GOVEX_*`` variables, then ``file_source``'s file.

    Raises pydantic's ``ValidationError`` (and ``pydantic_settings.SettingsError`` for an
    environment variable that does not parse); :mod:`service.config` names their places.
    """
    token = _file_source.set(file_source)
    try:
        return Settings(**values)
    finally:
        _file_source.reset(token)
