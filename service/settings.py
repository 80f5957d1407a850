"""Service settings, read once at the edge (CLI callback or uvicorn factory) and passed down.

Environment variables are ``GOVEX_<FIELD>``; ``GOVEX_SOURCES`` is a JSON object mapping
source names to SQLite file paths or PostgreSQL URLs (``service.sources`` tells them apart
and keeps a URL's password out of every message). Nothing here is read at import time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from catalog.ids import is_entry_id

DEFAULT_LEDGER_URL = "sqlite:///var/ledger.sqlite"
_SQLITE_FILE_PREFIX = "sqlite:///"


def sqlite_file(url: str) -> Path | None:
    """The database file of a file-backed SQLite URL; None for any other URL."""
    if url.startswith(_SQLITE_FILE_PREFIX) and url != _SQLITE_FILE_PREFIX + ":memory:":
        return Path(url.removeprefix(_SQLITE_FILE_PREFIX))
    return None


class Settings(BaseSettings):
    """Everything the runtime needs; frozen once built."""

    model_config = SettingsConfigDict(env_prefix="GOVEX_", frozen=True, extra="forbid")

    catalog_dir: Path = Field(description="Directory holding catalog.toml and catalog.seal.json.")
    sources: Annotated[
        dict[str, str],
        # repr=False: a PostgreSQL URL may hold a password (see service.sources).
        Field(description="Source name -> SQLite file path or postgresql:// URL.", repr=False),
    ] = {}
    keys_file: Path = Field(description="API keys file (hashed tokens), govex.keys/v1.")
    ledger_url: str = Field(default=DEFAULT_LEDGER_URL, description="SQLAlchemy URL of the ledger.")
    packet_root: Path = Field(default=Path("var/packets"), description="Where packets are written.")
    policies_dir: Path | None = Field(
        default=None, description="Cedar schema and policies; the bundled defaults when unset."
    )
    origin: str = Field(
        default="govex.localhost/ledger/dev",
        description="Ledger origin (FORMATS section 3); stable for the life of a ledger.",
    )
    provisional: bool = Field(
        default=False,
        description="Development override: run an unsealed or edited catalog, stamped provisional.",
    )
    ledger_key_file: Path | None = Field(
        default=None,
        description=(
            "C2SP signer key (PRIVATE+KEY+<origin>+...) that signs checkpoints; its name must be"
            " the origin. Unset: no checkpoints are signed and their endpoints answer 503."
        ),
    )
    masking_key_file: Path | None = Field(
        default=None,
        description=(
            "Secret key (hex, 32+ bytes) that masks sensitive columns ('govex keys masking');"
            " required when an entry lists sensitive_columns."
        ),
    )
    checkpoint_interval_s: float = Field(
        default=60.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds between periodic checkpoints (with a key); 0 disables them.",
    )
    # JWT bearer tokens (verified only); service.authenticate checks these go together.
    jwt_jwks_file: Path | None = Field(
        default=None, description="JWKS file of the JWT issuer's keys (or jwt_public_key_file)."
    )
    jwt_public_key_file: Path | None = Field(
        default=None, description="One PEM public key for JWTs (or jwt_jwks_file)."
    )
    jwt_issuer: str | None = Field(default=None, description="Required JWT iss (with a JWT key).")
    jwt_audience: str | None = Field(default=None, description="Required JWT aud (with a JWT key).")
    jwt_algorithms: Annotated[tuple[str, ...] | None, NoDecode] = Field(
        default=None,
        description="JWT algorithm allowlist, comma-separated; every supported one when unset.",
    )
    jwt_leeway_s: int = Field(default=60, ge=0, le=300, description="JWT clock skew allowed.")
    auth_failure_limit: int = Field(
        default=5, ge=1, description="Failed authentications per client before 429."
    )
    auth_failure_window_s: float = Field(
        default=60.0, gt=0, allow_inf_nan=False, description="Window of auth_failure_limit."
    )

    approval_default_ttl_s: int = Field(
        default=3600, gt=0, description="How long an approval lasts when the approver names no TTL."
    )
    approval_max_ttl_s: int = Field(
        default=86400, gt=0, description="The longest TTL an approver may give an approval."
    )

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
