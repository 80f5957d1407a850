"""Alembic environment of the ledger tables; run through :mod:`ledger.migrate`, never the CLI."""

from __future__ import annotations

from ledger.migrate import run_environment

run_environment()
