"""The ``govex`` command line: ``app`` (typer) and ``main``, the console script.

One module per command group: :mod:`service.cli.app` (the root: catalog,
call, packet, schemas, serve), :mod:`service.cli.ledger`,
:mod:`service.cli.keys`, :mod:`service.cli.db`; :mod:`service.cli.output`
turns failures into stderr and exit codes.
"""

from service.cli.app import app, main

__all__ = ["app", "main"]
