"""YAML with positions: load a document and remember the line of every value.

A profile error must name the file, line and field. This module reads PyYAML's event stream
(not its composer) and builds plain Python values plus a map from each value's path
(``("lanes", "ultraspeed", "simulator", "slots")``) to its 1-based line.

It builds the values itself, iteratively, because what PyYAML's composer and constructor do
with hostile input is not a clear error: a self-referencing alias (``a: &x [*x]``) or a list
nested a few thousand levels deep overflows the stack, a 5000-digit integer raises Python's own
``ValueError``, a control character or a byte that is not UTF-8 is reported with no line, and
tags such as ``!!python/object`` or ``!!binary`` make values no profile means. Here every one of
them is a :class:`ProfileError` with file, line and field:

- nesting is capped at :data:`MAX_DEPTH` levels and the document (aliases expanded) at
  :data:`MAX_VALUES` values, and a file at :data:`MAX_BYTES`: the parser is stopped as soon as a
  cap is passed (PyYAML's scanner is quadratic in nesting depth, so it must not read on);
- aliases are expanded (a copy of the anchored value, with the anchor's own lines, so an error
  inside it names where it is written); an alias to an anchor still open is refused as recursive;
- scalars are the YAML core types only (string, integer, float, boolean, null; a date stays the
  text it was written as); any other tag is refused;
- control characters and undecodable bytes are located by line, and the field written on that
  line is named (found by reading the document with the offending characters blanked out).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.reader import ReaderError

from .located import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_INT,
    MAX_VALUES,
    Located,
    Path_,
    ProfileError,
    check_plain,
    render_path,
)
from .yamlevents import Builder

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_VALUES",
    "Located",
    "ProfileError",
    "check_plain",
    "load_located",
    "read_located",
    "render_path",
]


def read_located(path: str | Path) -> Located:
    """Read and parse a profile file: undecodable bytes and oversized files are profile errors."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ProfileError(f"cannot read profile: {exc.strerror or exc}", str(p)) from None
    if len(data) > MAX_BYTES:
        raise ProfileError(f"a profile is at most {MAX_BYTES} bytes; this file is larger", str(p), 1)
    return load_located(_decode(data, str(p)), str(p))


def _decode(data: bytes, file: str) -> str:
    encoding = "utf-8-sig"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"  # YAML allows it, and an editor on Windows may save so
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = data[exc.start : exc.end].hex(" ")
        text = data.decode(encoding, errors="replace")
        raise ProfileError(
            f"not valid {encoding.split('-sig')[0].upper()}: byte {bad} at column {column}; save the file as UTF-8",
            file,
            line,
            _field_at(text, line, column),
        ) from None


_BIG_ESCAPE = re.compile(r"\\U(?:0*[1-9A-Fa-f][0-9A-Fa-f]{6}|[2-9A-Fa-f][0-9A-Fa-f]{7}|1[1-9A-Fa-f][0-9A-Fa-f]{6})")
_UNPRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _field_at(text: str, line: int, column: int) -> str | None:
    """The field a problem at ``line``:``column`` (1-based) of ``text`` sits in: the value (or
    key) that starts last at or before it, in the document read with unprintable characters
    blanked out; if that does not parse, in the lines before the problem's line, naming the value
    whose block holds it (by indentation). ``None`` when neither names one."""
    clean = _BIG_ESCAPE.sub(lambda m: " " * len(m.group()), _UNPRINTABLE.sub(" ", text))
    lines = clean.splitlines(keepends=True)
    here = (line, column)
    for upto in (None, line - 1):
        probe = clean if upto is None else "".join(lines[: max(upto, 0)])
        starts = [s for s in _starts(probe) if s[0]]  # the document itself is no field
        if not starts:
            continue
        if upto is None:
            before = [s for s in starts if (s[1], s[2]) <= here]
            if before:
                return render_path(max(before, key=lambda s: (s[1], s[2], len(s[0])))[0])
            after = [s for s in starts if s[1] == line]
            return render_path(min(after, key=lambda s: s[2])[0]) if after else None
        # the problem's line did not parse: the innermost value opened above it, less indented
        text_line = lines[line - 1] if 0 < line <= len(lines) else ""
        indent = len(text_line) - len(text_line.lstrip(" ")) + 1
        path, _, _ = starts[-1]
        columns = {p: c for p, _, c in starts}
        while path and columns.get(path, 0) >= indent:
            path = path[:-1]
        return render_path(path) if path else None
    return None


def _starts(text: str) -> list[tuple[Path_, int, int]]:
    """Where each value and key of ``text`` starts: (path, line, column), in document order;
    empty if ``text`` is not a profile document that parses."""
    builder = Builder("<probe>", starts=True)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            builder.feed(event)
    except (yaml.YAMLError, ValueError, OverflowError):  # ProfileError is a ValueError
        return []
    return builder.starts


def load_located(text: str, file: str = "<profile>") -> Located:
    """Parse ``text`` into values and their lines; every problem is a :class:`ProfileError`."""
    if len(text) > MAX_BYTES:
        raise ProfileError(f"a profile is at most {MAX_BYTES} bytes; this text is larger", file, 1)
    builder = Builder(file)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            builder.feed(event)
    except ReaderError as exc:
        pos = exc.position
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        what = f"control character {exc.character!r}" if isinstance(exc.character, str) else "character"
        if isinstance(exc.character, int):
            what = f"control character U+{exc.character:04X}"
        raise ProfileError(
            f"invalid YAML: {what} at column {column} (YAML allows no control characters but tab and newline; "
            'write it as an escape in a double-quoted string, e.g. "\\x01")',
            file,
            line,
            _field_at(text, line, column),
        ) from None
    except ProfileError:
        raise
    except (ValueError, OverflowError):  # PyYAML's scanner: chr() of an escape beyond Unicode
        bad = _BIG_ESCAPE.search(text)
        line = text.count("\n", 0, bad.start()) + 1 if bad else builder.last_line
        raise ProfileError(
            "invalid YAML: an escape in a double-quoted string is beyond Unicode (at most \\U0010FFFF)",
            file,
            line,
            _field_at(text, line, bad.start() - text.rfind("\n", 0, bad.start()) if bad else 1),
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and cmark is not None and (mark is None or cmark.line != mark.line):
            problem += f" ({context} at line {cmark.line + 1})"
        line = mark.line + 1 if mark else 1
        field = _field_at(text, line, mark.column + 1 if mark else 1)
        raise ProfileError(f"invalid YAML: {problem}", file, line, field) from None
    return builder.result()
