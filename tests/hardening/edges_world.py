"""A service world for the hostile-input tests: every parameter type, every kind of credential.

:func:`build_edge_world` writes a sealed catalog over a SQLite source and a real PostgreSQL
source (the corpus shop, through the documented reader role), with a query per engine that
echoes one parameter of each type back, lookups whose string parameter reaches a WHERE
clause, a masked entry, an entry on a PostgreSQL source that cannot be reached, and two
commands that print their argv. Credentials are all set, each a recognisable **canary**
(:class:`Canaries`): an API key, a JWT, the PostgreSQL password in both source URLs, the
masking key, the ledger signing key and the metrics token. The canary test runs the world
and looks for them everywhere they must never be.
"""

from __future__ import annotations

import base64
import json
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from catalog.load import SEAL_FILE, load_catalog_dir, write_seal
from catalog.seal import compute_seal
from ledger.keys import SignerKey
from service.api_keys import token_hash
from service.masking import MaskingKey
from service.settings import Settings
from tests.e2e.conftest import write_source
from tests.hardening.corpus_world import PgShop
from tests.jwt_issuer import AUDIENCE, ISSUER, Issuer
from tests.pg_harness import PostgresServer

ORIGIN = "govex.test/ledger/edges"
KID = "edge-ed-1"
ECHO_PARAMS: dict[str, dict[str, object]] = {
    "s": {"type": "string", "max_length": 4000},
    "n": {"type": "integer", "min": -1000, "max": 1000},
    "x": {"type": "number"},
    "b": {"type": "boolean"},
    "d": {"type": "date"},
    "ts": {"type": "timestamp"},
    "e": {"type": "enum", "choices": ["red", "green"]},
}
GOOD_ECHO = {
    "s": "plain",
    "n": 7,
    "x": 0.5,
    "b": True,
    "d": "2024-02-29",
    "ts": "2024-02-29T12:00:00Z",
    "e": "red",
}
TOKENS = {"mallory": "tok-mallory", "bob": "tok-bob", "carol": "tok-carol"}
_ECHO_SQL = "VALUES (:s, :n, :x, :b, :d, :ts, :e)\n"
_ARGV_SCRIPT = """
    import json, sys
    print(json.dumps(sys.argv[1:]))
"""


@dataclass(frozen=True)
class Canaries:
    """Secret values the world is configured with, each recognisable wherever it lands.

    ``forms`` are every spelling that would count as a leak: the value, and for binary
    keys their hex and base64 forms.
    """

    api_key: str = "canary-apikey-5b1f0e9d2c7a4b8e"
    pg_password: str = "canary-pgpass-3e8d1c7b"
    metrics_token: str = "canary-metrics-9a6c2f41"
    masking_key_hex: str = "ca11ab1e" * 5 + "5eedf00d" * 4  # 36 bytes
    jwt: str = ""
    ledger_key: str = ""

    def forms(self) -> dict[str, list[bytes]]:
        """Each canary's name and the byte strings whose presence would be a leak."""
        masking = bytes.fromhex(self.masking_key_hex)
        # PRIVATE+KEY+<name>+<hash>+<base64 key>: the key's base64 may itself hold a "+"
        # (one key in 64 ends with one), so it is what follows the fourth "+".
        ledger_secret = self.ledger_key.split("+", 4)[-1]
        jwt_signature = self.jwt.rsplit(".", 1)[-1]
        return {
            "api_key": [self.api_key.encode()],
            "pg_password": [self.pg_password.encode()],
            "metrics_token": [self.metrics_token.encode()],
            "masking_key": [
                self.masking_key_hex.encode(),
                self.masking_key_hex.upper().encode(),
                base64.b64encode(masking).rstrip(b"="),
                base64.urlsafe_b64encode(masking).rstrip(b"="),
            ],
            "jwt": [self.jwt.encode(), jwt_signature.encode()],
            "ledger_key": [self.ledger_key.encode(), ledger_secret.encode()],
        }


@dataclass(frozen=True)
class EdgeWorld:
    """Settings, canaries, the PostgreSQL shop and the issuer that signs JWTs."""

    settings: Settings
    canaries: Canaries
    shop: PgShop
    issuer: Issuer
    root: Path

    def bearer(self, name: str) -> dict[str, str]:
        """The Authorization header of ``alice`` (the canary API key) or another principal."""
        token = self.canaries.api_key if name == "alice" else TOKENS[name]
        return {"Authorization": f"Bearer {token}"}


def _toml_value(value: object) -> str:
    return json.dumps(value)


def _params_toml(params: dict[str, dict[str, object]]) -> str:
    lines = []
    for name, spec in params.items():
        lines.append(f"[query.params.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in spec.items()]
        lines.append("required = true")
    return "\n".join(lines) + "\n"


def _catalog_toml(bin_dir: Path) -> str:
    echo_params = _params_toml(ECHO_PARAMS)
    return f"""
[catalog]
name = "edges"
version = "1"

[sources.items]
engine = "sqlite"

[sources.shop]
engine = "postgresql"

[sources.down]
engine = "postgresql"

[[query]]
id = "edge.echo"
title = "One value of each parameter type, echoed (SQLite)"
source = "items"
sql = "queries/echo.sql"
{echo_params}
[[query]]
id = "edge.echo_pg"
title = "One value of each parameter type, echoed (PostgreSQL)"
source = "shop"
sql = "queries/echo.sql"
{echo_params}
[[query]]
id = "edge.lookup"
title = "Items by name (SQLite)"
source = "items"
sql = "queries/lookup.sql"
[query.params.name]
type = "string"
required = true

[[query]]
id = "edge.lookup_pg"
title = "Customers by name (PostgreSQL)"
source = "shop"
sql = "queries/lookup_pg.sql"
[query.params.name]
type = "string"
required = true

[[query]]
id = "edge.masked"
title = "Items with their names masked"
source = "items"
sql = "queries/masked.sql"
sensitive_columns = ["name"]

[[query]]
id = "edge.down"
title = "A PostgreSQL source that cannot be reached"
source = "down"
sql = "queries/down.sql"

[[command]]
id = "edge.args"
title = "Print the arguments"
argv = ["{bin_dir}/argv", "{{word}}"]
mutating = false
[command.params.word]
type = "string"
required = true

[[command]]
id = "edge.args_after_dashes"
title = "Print the arguments, options ended"
argv = ["{bin_dir}/argv", "--", "{{word}}"]
mutating = false
[command.params.word]
type = "string"
required = true
"""


_QUERIES = {
    "echo.sql": _ECHO_SQL,
    "lookup.sql": "SELECT id, name FROM items WHERE name = :name ORDER BY id\n",
    "lookup_pg.sql": "SELECT id, name FROM customers WHERE name = :name ORDER BY id\n",
    "masked.sql": "SELECT id, name FROM items WHERE id < 5 ORDER BY id\n",
    "down.sql": "SELECT count(*) AS n FROM customers\n",
}


def _write_keys(path: Path, canaries: Canaries) -> Path:
    people = [
        ("alice", canaries.api_key, ["analyst"], "acme"),
        ("mallory", TOKENS["mallory"], ["analyst"], "acme"),
        ("bob", TOKENS["bob"], ["auditor"], "globex"),
        ("carol", TOKENS["carol"], ["operator"], "*"),
    ]
    keys = [
        {
            "key_id": f"k-{name}",
            "principal": name,
            "roles": roles,
            "tenant": tenant,
            "sha256": token_hash(token),
            "expires_at": None,
        }
        for name, token, roles, tenant in people
    ]
    path.write_text(json.dumps({"format": "govex.keys/v1", "keys": keys}), encoding="utf-8")
    return path


def build_edge_world(server: PostgresServer, root: Path) -> EdgeWorld:
    """Write the world under ``root`` and return it (nothing is started)."""
    issuer = Issuer.generate(KID)
    signer = SignerKey.generate(ORIGIN)
    canaries = Canaries(jwt=issuer.token(), ledger_key=signer.text())
    shop = PgShop.create(server, root / "pg-var", password=canaries.pg_password)
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "argv"
    script.write_text(f"#!{sys.executable} -I\n" + textwrap.dedent(_ARGV_SCRIPT), "utf-8")
    script.chmod(0o755)
    catalog = root / "catalog"
    (catalog / "queries").mkdir(parents=True)
    (catalog / "catalog.toml").write_text(_catalog_toml(bin_dir), encoding="utf-8")
    for name, text in _QUERIES.items():
        (catalog / "queries" / name).write_text(text, encoding="utf-8")
    write_seal(catalog / SEAL_FILE, compute_seal(load_catalog_dir(catalog), datetime.now(UTC)))
    secrets = root / "secrets"
    secrets.mkdir()
    (secrets / "ledger.key").write_text(signer.text() + "\n", encoding="utf-8")
    masking = MaskingKey.from_text(canaries.masking_key_hex)
    (secrets / "masking.key").write_text(masking.text() + "\n", encoding="utf-8")
    down = server.url("no_such_database", "govex_down", canaries.pg_password)
    settings = Settings(
        catalog_dir=catalog,
        sources={
            "items": str(write_source(_folder(root / "source") / "items.sqlite", rows=50)),
            "shop": shop.source.conninfo,
            "down": down,
        },
        keys_file=_write_keys(root / "keys.json", canaries),
        ledger_url=f"sqlite:///{root / 'var' / 'ledger.sqlite'}",
        packet_root=root / "var" / "packets",
        origin=ORIGIN,
        ledger_key_file=secrets / "ledger.key",
        masking_key_file=secrets / "masking.key",
        checkpoint_interval_s=0,
        jwt_jwks_file=issuer.write_jwks(secrets / "jwks.json"),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        auth_failure_limit=10_000,
        packet_upload_max_bytes=1_000_000,
        metrics_token=canaries.metrics_token,
    )
    return EdgeWorld(settings, canaries, shop, issuer, root)


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
