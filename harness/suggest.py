"""Suggestions ("did you mean ...?") for names a person types: profiles, faults, checks, lanes.

One helper so every error that rejects a name suggests the same way (difflib's ratio, the
closest few above 0.6), and an error message never has to list forty names to be useful.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean"]


def did_you_mean(word: str, choices: Iterable[str], *, n: int = 3) -> str:
    """``"did you mean 'x'?"`` (or ``"did you mean 'x' or 'y'?"``) for the closest choices, else ``""``."""
    close = difflib.get_close_matches(str(word), list(dict.fromkeys(choices)), n=n, cutoff=0.6)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"
