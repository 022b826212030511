"""Fuzz target over journal.jsonl: the reader is total.

Any file of lines: :meth:`Journal.load` returns a journal (a torn last line noted in its warnings),
or raises :class:`JournalError` whose message names the file and the line; never another exception.
The lines start as real records (an attempt, a call, a mark, the header, as a drill writes them)
and are bent: a field dropped or given an awkward value, a line torn, bytes that are not UTF-8,
JSON that is not an object, nested deep, or holding ``NaN``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from harness.journal import Attempt, Call, Journal, JournalError, Mark
from harness.jsonl import dumps

RECORDS: list[dict[str, Any]] = [
    {"type": "journal", "version": 1, "wall0": 1_700_000_000.0},
    Attempt(id="a1", lane="primary", t_start=0.5, wall_start=1_700_000_000.5, status=200, t_end=1.0).to_json(),
    Call(id="c1", t_start=0.4, t_end=1.1, outcome="ok", lane="primary", text="hi").to_json(),
    Mark(t=0.1, kind="fault_added", lane="primary", detail={"fault": "x"}).to_json(),
]
AWKWARD: list[Any] = [
    None,
    True,
    0,
    -1,
    10**400,
    1.5,
    math.nan,
    math.inf,
    "",
    "NaN",
    "Infinity",
    "x" * 300,
    [],
    {},
    [1],
    {"a": None},
    "attempt",
    "\ud800",
    "2024-01-01",
]


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """One journal line as bytes (newline included when it is not the torn last one)."""
    kind = draw(st.integers(0, 9))
    if kind <= 5:  # a real record, perhaps with one field bent
        rec = dict(draw(st.sampled_from(RECORDS)))
        if kind >= 2 and rec:
            key = draw(st.sampled_from([*rec, "type", "extra"]))
            if draw(st.booleans()):
                rec.pop(key, None)
            else:
                rec[key] = draw(st.sampled_from(AWKWARD))
        text = json.dumps(rec, allow_nan=True) if draw(st.booleans()) else dumps(rec)
    elif kind == 6:  # JSON that is not a record
        text = draw(st.sampled_from(["[1]", "1", '"s"', "null", "true", "{}", '{"type": 5}', "[" * 5000 + "]" * 5000]))
    elif kind == 7:
        text = "{" + '"a":' * 3 + "[" * draw(st.integers(100, 3000))
    else:  # not JSON
        return draw(st.binary(max_size=40)).replace(b"\n", b"") + b"\n"
    data = text.encode("utf-8", errors="surrogatepass")
    if draw(st.integers(0, 7)) == 0:
        data = data[: draw(st.integers(0, len(data)))]  # torn
    return data + b"\n"


@st.composite
def journal_files(draw: st.DrawFn) -> bytes:
    body = b"".join(draw(st.lists(lines(), min_size=0, max_size=6)))
    if body and draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]  # the drill was killed mid-write
    return body


class JournalTarget:
    """Writes the bytes to one temp journal.jsonl and loads it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, data: bytes) -> None:
        self.path.write_bytes(data)
        try:
            journal = Journal.load(self.path)
        except JournalError as exc:
            text = str(exc)
            assert text.startswith(f"{self.path}:"), text
            line = text[len(str(self.path)) + 1 :].split(":", 1)[0]
            assert line.isdigit() and 1 <= int(line) <= data.count(b"\n") + 1, text
            assert "Traceback" not in text
            return
        for w in journal.warnings:
            assert w.startswith(str(self.path)), w
        # what was read back is what a check can use: records of the declared types
        for a in journal.attempts():
            assert isinstance(a.id, str) and isinstance(a.t_start, float | int)
