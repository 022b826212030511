"""Listening sockets that could not be opened, said plainly: what wanted to listen, and where.

``asyncio`` reports a taken port as ``[Errno 98] error while attempting to bind on address
('127.0.0.1', 8000): address already in use``, which names neither the lane nor the command that
failed. :func:`binding` wraps the start of anything that listens (a lane, the control API, the
Toxiproxy API) and turns those errors into a :class:`PortError` whose message names it; the
command line exits 3 for every one of them.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BIND_ERRNOS", "PortError", "binding"]

#: what ``bind`` fails with: taken, a privileged port, or an address that is not this host's
BIND_ERRNOS = frozenset({errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL})


class PortError(OSError):
    """``what`` could not listen on ``host:port`` (``errno`` kept: EADDRINUSE for a taken port)."""

    def __init__(self, what: str, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror)
        self.what, self.host, self.port = what, host, port

    def __str__(self) -> str:
        if self.errno == errno.EADDRINUSE:
            why = "the port is already in use"
        else:
            why = (self.strerror or "cannot bind").lower()
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return f"{self.what} cannot listen on {where}: {why}"


@contextmanager
def binding(what: str, host: str, port: int) -> Iterator[None]:
    """Run the block that binds ``host:port`` for ``what`` (e.g. ``"lane ultraspeed"``); a bind
    error leaves it as a :class:`PortError` naming both."""
    try:
        yield
    except PortError:
        raise
    except OSError as exc:
        if exc.errno in BIND_ERRNOS:
            raise PortError(what, host, port, exc) from None
        raise
