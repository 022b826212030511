"""The lane settings of record and replay, declared once: the loader and the JSON Schema both read them.

```yaml
lanes:
  live:
    dialect: openai
    upstream: https://api.openai.com
    record: cassettes/openai.jsonl          # every exchange of this lane, written to a new cassette
  primary:
    dialect: openai
    replay: cassettes/openai.jsonl          # the cassette is this lane's upstream
  patient:
    dialect: anthropic
    replay: {cassette: a.jsonl, pace: 40, fallthrough: simulator}
```

Relative paths are read from the profile file's directory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RECORD_SCHEMA", "REPLAY_KEYS", "REPLAY_SCHEMA", "ReplaySpec", "parse_record", "parse_replay"]

Fail = Callable[[tuple[str, ...], str], Exception]

#: key -> what it means (the schema's descriptions and the loader's "expected one of")
REPLAY_KEYS: dict[str, str] = {
    "cassette": "the cassette file (JSON Lines, see docs/cassettes.md) whose exchanges answer this lane",
    "pace": "'recorded' (default: each event at its recorded offset times time_scale) or tokens per second",
    "fallthrough": "'error' (default: an unmatched request gets a 400 naming the nearest recording) or 'simulator'",
}


@dataclass(frozen=True, slots=True)
class ReplaySpec:
    cassette: str
    pace: float | None = None  # None: the recorded timing
    fallthrough: str = "error"


def _path(value: Any, base: str | None) -> str:
    p = Path(value).expanduser()
    if not p.is_absolute() and base:
        b = Path(base)
        if b.is_file():
            p = b.parent / p
    return str(p)


def parse_record(value: Any, base: str | None, fail: Fail) -> str:
    """``record: PATH``: where this lane writes its cassette."""
    if not isinstance(value, str) or not value.strip():
        raise fail((), "must be the path of a new cassette file")
    return _path(value, base)


def parse_replay(value: Any, base: str | None, fail: Fail) -> ReplaySpec:
    """``replay: PATH`` or ``replay: {cassette: PATH, pace: ..., fallthrough: ...}``."""
    if isinstance(value, str):
        value = {"cassette": value}
    if not isinstance(value, Mapping):
        raise fail((), "must be a cassette path, or a mapping with cassette:, pace:, fallthrough:")
    for key in value:
        if key not in REPLAY_KEYS:
            raise fail((str(key),), f"unknown replay setting; expected one of {', '.join(REPLAY_KEYS)}")
    cassette = value.get("cassette")
    if not isinstance(cassette, str) or not cassette.strip():
        raise fail(("cassette",), "required: the path of a cassette file")
    path = _path(cassette, base)
    if not Path(path).is_file():
        raise fail(("cassette",), f"no cassette at {path}")
    pace_raw = value.get("pace", "recorded")
    pace: float | None = None
    if pace_raw != "recorded":
        ok = isinstance(pace_raw, int | float) and not isinstance(pace_raw, bool) and math.isfinite(pace_raw)
        if not ok or pace_raw <= 0:
            raise fail(("pace",), "must be 'recorded' or a number of tokens per second > 0")
        pace = float(pace_raw)
    fallthrough = value.get("fallthrough", "error")
    if fallthrough not in ("error", "simulator"):
        raise fail(("fallthrough",), "must be 'error' or 'simulator'")
    return ReplaySpec(path, pace, fallthrough)


RECORD_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "description": "write every exchange with this lane's upstream to this new cassette file (needs upstream:)",
}
REPLAY_SCHEMA: dict[str, Any] = {
    "description": "answer this lane from a cassette instead of an upstream (a path, or the settings below)",
    "anyOf": [
        {"type": "string", "minLength": 1},
        {
            "type": "object",
            "required": ["cassette"],
            "additionalProperties": False,
            "properties": {
                "cassette": {"type": "string", "minLength": 1, "description": REPLAY_KEYS["cassette"]},
                "pace": {
                    "anyOf": [{"const": "recorded"}, {"type": "number", "exclusiveMinimum": 0}],
                    "default": "recorded",
                    "description": REPLAY_KEYS["pace"],
                },
                "fallthrough": {
                    "enum": ["error", "simulator"],
                    "default": "error",
                    "description": REPLAY_KEYS["fallthrough"],
                },
            },
        },
    ],
}
