"""The lane proxy: server, upstreams, and the hooks faults plug into."""

from .hooks import AttemptContext, Close, CloseMode, ConnectionAction, FaultHook, Intervention
from .server import Lane
from .upstream import HttpUpstream, SimulatorUpstream, UpstreamResponse

__all__ = [
    "AttemptContext",
    "Close",
    "CloseMode",
    "ConnectionAction",
    "FaultHook",
    "HttpUpstream",
    "Intervention",
    "Lane",
    "SimulatorUpstream",
    "UpstreamResponse",
]
