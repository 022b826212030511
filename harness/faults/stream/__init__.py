"""Faults of the stream family: the 200 is committed, then the stream itself misbehaves.

Each fault is one :meth:`~harness.proxy.hooks.Intervention.transform` over the lane's event
batches (reference: provider-wire-formats.md, F14-F23). Every batch a transform yields is one
``resp.write`` on the wire, so a fault controls exactly what the client can read and when; a
:class:`~harness.proxy.hooks.Close` tells the lane how the connection ends and what the journal
says about it.

Events a fault writes itself come from ``ctx.encoder`` (the attempt's dialect), so an Anthropic
lane pings with ``event: ping``, an OpenAI lane errors with ``data: {"error": ...}`` and a Gemini
lane with a bare ``{"error": ...}`` chunk. Content events the simulator grouped (several tokens in
one event) are split at word boundaries when a fault must act between two tokens.

For non-streaming requests the transform is never called. Faults whose non-stream analogue is
plain lateness (``slow_first_token``, ``throughput_collapse``, ``stall``) delay the whole response
instead, in :meth:`after_headers`; the others leave non-streaming requests alone.

One module per fault, each with its one ``@register`` line (as Toxiproxy keeps one toxic per
file), so a fault is read and changed alone; what they share is in :mod:`.events` (splitting,
keep-alives, the family's base class) and :mod:`.tape` (holding a stream and keeping its pace).
Importing the package registers them all, in the catalogue's order (F14 to F23).
"""

# isort: off
# registering is importing: the catalogue's order (F14 to F23), which listings of the faults keep
from . import slow_first_token, throughput_collapse, stream_cut, stall, inband_error  # noqa: F401
from . import malformed_event, split_utf8, no_terminator, linger  # noqa: F401

# isort: on
from .events import OPENROUTER_COMMENT, StreamFault
from .inband_error import InbandError
from .linger import Linger
from .malformed_event import MalformedEvent
from .no_terminator import NoTerminator
from .slow_first_token import SlowFirstToken
from .split_utf8 import SplitUtf8
from .stall import Stall
from .stream_cut import StreamCut
from .throughput_collapse import ThroughputCollapse

__all__ = [
    "OPENROUTER_COMMENT",
    "InbandError",
    "Linger",
    "MalformedEvent",
    "NoTerminator",
    "SlowFirstToken",
    "SplitUtf8",
    "Stall",
    "StreamCut",
    "StreamFault",
    "ThroughputCollapse",
]
