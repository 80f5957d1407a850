"""Functions that do more than read, and what each does: the table ``side_effect_function`` uses.

:func:`side_effect` answers for one function name, :func:`side_effect_table` for a name used
as a table (SQLite's table-valued ``pragma_*`` functions). Names are matched
case-insensitively on the bare name (a schema qualification is dropped by the caller), exact
names first, then prefixes. Both engines share the table: a PostgreSQL name in SQLite (or
the reverse) simply does not exist there, so listing it costs nothing.

The reasons are what a catalog author reads in a refusal (``function ts_stat() has side
effects: it runs the SQL text it is given``), so each says what the call would do. The list
was grown from the adversarial corpus (``tests/hardening/corpus/mutating.toml``); the run
boundary (a read-only transaction, the reader role, a fresh connection) holds behind it.
"""

from __future__ import annotations

import re

_LOCK = "takes or releases an advisory lock"
_LARGE_OBJECT = "creates, changes or reads large objects, or server files through them"
_SERVER_FILES = "reads the server's files"
_RUNS_SQL = "runs the SQL text it is given"
_WAL = "writes to the write-ahead log"

_NAMES: dict[str, str] = {
    "nextval": "advances a sequence",
    "setval": "sets a sequence",
    "currval": "reads the session's sequence state",
    "lastval": "reads the session's sequence state",
    "set_config": "changes a setting",
    "setseed": "reseeds the session's random()",
    "pg_terminate_backend": "ends another session",
    "pg_cancel_backend": "cancels another session's statement",
    "pg_reload_conf": "reloads the server configuration",
    "pg_rotate_logfile": "rotates the server log",
    "pg_rotate_logfile_old": "rotates the server log",
    "pg_promote": "promotes a standby server",
    "pg_current_xact_id": "assigns a transaction id",
    "pg_notify": "sends a notification",
    "pg_logical_emit_message": _WAL,
    "pg_log_standby_snapshot": _WAL,
    "pg_log_backend_memory_contexts": "writes to the server log",
    "pg_import_system_collations": "creates collations",
    "pg_export_snapshot": "exports a snapshot to a server file",
    "pg_nextoid": "advances the OID counter",
    "pg_stat_file": _SERVER_FILES,
    "pg_logdir_ls": _SERVER_FILES,
    "pg_prewarm": "loads relations into the buffer cache",
    "pg_truncate_visibility_map": "truncates a visibility map",
    "pg_stat_statements_reset": "resets statistics",
    "gin_clean_pending_list": "rewrites an index",
    "ts_stat": _RUNS_SQL,
    "loread": _LARGE_OBJECT,
    "lowrite": _LARGE_OBJECT,
    # SQLite (and its common loadable extensions)
    "load_extension": "loads native code into the engine",
    "writefile": "writes a file",
    "readfile": "reads a file",
    "edit": "runs an editor",
    "fts3_tokenizer": "registers a tokenizer by native pointer",
    "fsdir": "reads the file system",
    "zipfile": "reads files",
    "sqlite_dbpage": "reads or writes raw database pages",
    "sqlite_log": "writes to the engine's error log",
}

_PREFIXES: tuple[tuple[str, str], ...] = (
    ("pg_advisory_", _LOCK),
    ("pg_try_advisory_", _LOCK),
    ("dblink", "connects to another database"),
    ("postgres_fdw_", "manages connections to foreign servers"),
    ("lo_", _LARGE_OBJECT),
    ("pg_read_", _SERVER_FILES),
    ("pg_ls_", _SERVER_FILES),
    ("pg_file_", "writes, renames or removes the server's files"),
    ("pg_sleep", "holds the session idle"),
    ("pg_stat_reset", "resets statistics"),
    ("pg_create_", "creates a restore point or a replication slot"),
    ("pg_drop_", "drops a replication slot"),
    ("pg_copy_", "copies a replication slot"),
    ("pg_replication_", "changes replication state"),
    ("pg_logical_slot_", "consumes or reads a replication slot"),
    ("pg_wal_replay_", "pauses or resumes recovery"),
    ("pg_switch_", "switches the write-ahead log file"),
    ("pg_backup_", "starts or stops a backup"),
    ("pg_start_backup", "starts a backup"),
    ("pg_stop_backup", "stops a backup"),
    ("txid_current", "assigns a transaction id"),
    ("brin_summarize_", "rewrites an index"),
    ("brin_desummarize_", "rewrites an index"),
    ("binary_upgrade_", "changes the server's upgrade state"),
    ("query_to_xml", _RUNS_SQL),
    ("cursor_to_xml", "reads a cursor of the session"),
    ("table_to_xml", _RUNS_SQL),
    ("schema_to_xml", _RUNS_SQL),
    ("database_to_xml", _RUNS_SQL),
)

# Listed only with this many arguments: ts_rewrite(query, 'SELECT ...') runs SQL; the
# three-argument ts_rewrite(query, target, substitute) only rewrites.
_NAMES_BY_ARITY: dict[tuple[str, int], str] = {("ts_rewrite", 2): _RUNS_SQL}

# SQLite's table-valued pragma functions run their pragma; these do more than read.
_TABLES: dict[str, str] = {"pragma_optimize": "runs PRAGMA optimize, which may run ANALYZE"}

_PG_UNICODE_ESCAPE = re.compile(r"\\(\\|\+[0-9A-Fa-f]{6}|[0-9A-Fa-f]{4})")


def side_effect(name: str, arity: int) -> str | None:
    """What calling ``name`` with ``arity`` arguments does beyond reading; ``None``: it reads."""
    bare = name.lower()
    if bare in _NAMES:
        return _NAMES[bare]
    if (bare, arity) in _NAMES_BY_ARITY:
        return _NAMES_BY_ARITY[bare, arity]
    if bare in _TABLES:  # pragma_optimize() written as a call
        return _TABLES[bare]
    for prefix, why in _PREFIXES:
        if bare.startswith(prefix):
            return why
    return None


def side_effect_table(name: str) -> str | None:
    """What reading the table-valued function ``name`` does beyond reading, or ``None``."""
    return _TABLES.get(name.lower())


def unescape_pg_unicode(name: str) -> str:
    r"""``name`` with PostgreSQL's ``U&"..."`` escapes (``\0073``, ``\+000073``) decoded.

    The SQL parser reads ``U&"\0073et_config"`` as ``U & "\0073et_config"``: decoding the
    quoted part gives the name PostgreSQL resolves. A backslash in a plain quoted name is
    decoded too, which can only make the check refuse more.
    """

    def decode(match: re.Match[str]) -> str:
        code = match.group(1)
        if code == "\\":
            return "\\"
        try:
            return chr(int(code.lstrip("+"), 16))
        except ValueError:  # beyond U+10FFFF: PostgreSQL refuses it too
            return match.group(0)

    return _PG_UNICODE_ESCAPE.sub(decode, name)
