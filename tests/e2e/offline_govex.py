"""Run the ``govex`` command line with the network disabled (a test wrapper, not a test).

    python tests/e2e/offline_govex.py ARGS...          govex ARGS..., offline
    python tests/e2e/offline_govex.py --self-check PORT  exit 0 if a connect to 127.0.0.1:PORT
                                                         and a DNS lookup are refused

Before anything else is imported, every way to open a network connection raises
:class:`NetworkDisabledError`: creating an IPv4/IPv6 socket, ``connect``/``connect_ex``,
``create_connection``, ``getaddrinfo`` and ``gethostbyname``. A command that passes here
opened no connection (an attempt would have failed it).
"""

from __future__ import annotations

import socket
import sys
from typing import Any


class NetworkDisabledError(OSError):
    """Raised by every network entry point while this wrapper runs."""


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise NetworkDisabledError("network disabled by tests/e2e/offline_govex.py")


_INET = {socket.AF_INET, socket.AF_INET6}
_socket_init = socket.socket.__init__


def _init(self: socket.socket, family: Any = -1, *args: Any, **kwargs: Any) -> None:
    if family in _INET or family == -1:  # -1: the default family, AF_INET
        _refuse()
    _socket_init(self, family, *args, **kwargs)


def disable_network() -> None:
    """Make every network entry point of :mod:`socket` raise."""
    socket.socket.__init__ = _init  # type: ignore[method-assign]
    socket.socket.connect = _refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
    socket.gethostbyname = _refuse


def _self_check(port: int) -> int:
    """0 when a loopback connect and a lookup are refused, 3 when either got through."""
    for attempt in (
        lambda: socket.create_connection(("127.0.0.1", port), timeout=2),
        lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
        lambda: socket.getaddrinfo("localhost", port),
    ):
        try:
            attempt()
        except NetworkDisabledError:
            continue
        return 3
    return 0


def main(argv: list[str]) -> int:
    disable_network()
    if argv[:1] == ["--self-check"]:
        return _self_check(int(argv[1]))
    from service.cli import app  # noqa: PLC0415 - imported only once the network is off

    app(argv, prog_name="govex")  # exits with the command's code
    return 2  # pragma: no cover - typer always exits


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
