"""Alembic environment of the service tables (the call index); run through :mod:`ledger.migrate`."""

from __future__ import annotations

from ledger.migrate import run_environment

run_environment()
