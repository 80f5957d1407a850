"""The ``govex`` command line: ``app`` (typer) and ``main``, the console script.

One module per command group: :mod:`service.cli.app` (the root: catalog,
call, schemas, serve), :mod:`service.cli.ledger`, :mod:`service.cli.packets`,
:mod:`service.cli.keys`, :mod:`service.cli.db`, :mod:`service.cli.packets_admin`
(``packets prune``); :mod:`service.cli.output` turns failures into stderr and exit codes;
:mod:`service.cli.session` reads the settings (``--config``) for the commands that need them.
"""

from service.cli.app import app, main

__all__ = ["app", "main"]
