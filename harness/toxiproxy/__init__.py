"""Network faults (toxics) through Toxiproxy's API: an embedded server and a client for any server.

``ToxiproxyServer`` is a Toxiproxy-compatible server on asyncio; ``ToxiproxyClient`` (and its async
twin) speak the same API to it or to a real Toxiproxy.
"""

from .client import (
    AsyncToxiproxyClient,
    BadRequest,
    Conflict,
    NotFound,
    Proxy,
    Toxic,
    ToxiproxyClient,
    ToxiproxyError,
    ToxiproxyUnavailable,
)
from .server import ThreadedToxiproxyServer, ToxiproxyServer, main, serve_forever
from .toxics import TOXICS

__all__ = [
    "TOXICS",
    "AsyncToxiproxyClient",
    "BadRequest",
    "Conflict",
    "NotFound",
    "Proxy",
    "ThreadedToxiproxyServer",
    "Toxic",
    "ToxiproxyClient",
    "ToxiproxyError",
    "ToxiproxyServer",
    "ToxiproxyUnavailable",
    "main",
    "serve_forever",
]
