"""The web console: read-only pages over the API's core, for auditors and operators.

``service.console.mount.mount_console`` adds it to the app; docs/console.md says what
each page shows. Nothing here decides policy, runs a call or reads evidence itself: the
view builders call the same core as the HTTP routes (``service.reads``, ``service.calls``,
``service.dry_run``, ``service.proofs``), so a console read is ledgered exactly as an API
read is.
"""
