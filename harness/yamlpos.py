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

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from yaml.reader import ReaderError

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

Path_ = tuple[str | int, ...]

#: levels of nesting a profile may have (its deepest real value, a fault's match:, is five)
MAX_DEPTH = 64
#: values a document may hold once its aliases are expanded (the catalogue's largest holds ~150)
MAX_VALUES = 100_000
#: bytes a profile file may have
MAX_BYTES = 1024 * 1024
#: integers a profile may hold are below this in size: larger ones mean nothing here, and past the
#: range of a float they break the first comparison with one (``OverflowError``, not a clear error)
MAX_INT = 2**63


class ProfileError(ValueError):
    """A profile problem, located: ``file:line: field: message``.

    One error, or several (``errors``, in line order) when a profile has more than one problem:
    then ``message``, ``file``, ``line`` and ``field`` are the first one's, and the text lists all,
    one per line, so a person fixes them in one pass instead of one reload per typo.
    """

    def __init__(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        *,
        errors: list[ProfileError] | None = None,
    ):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        self.errors: list[ProfileError] = errors if errors else [self]
        super().__init__(self.render())

    @classmethod
    def combine(cls, errors: list[ProfileError]) -> ProfileError:
        """One error standing for ``errors`` (each flattened), sorted by file and line."""
        flat = [e for err in errors for e in err.errors]
        if len(flat) == 1:
            return flat[0]
        flat.sort(key=lambda e: (e.file or "", e.line if e.line is not None else 0))
        first = flat[0]
        return cls(first.message, first.file, first.line, first.field, errors=flat)

    def render_one(self) -> str:
        where = self.file or "<profile>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def render(self) -> str:
        if len(self.errors) <= 1:
            return self.render_one()
        return f"{len(self.errors)} errors:\n" + "\n".join(e.render_one() for e in self.errors)


class Located:
    """A loaded document and the lines of its values.

    ``origins`` maps a path prefix to the file and the path it really came from, for documents
    merged by ``extends:``: a fault inherited from a base profile is reported in the base file
    with its own index there (``base.yaml:9: faults[0].status``), not as ``faults[0]`` of the
    child at line 1, which would send the reader to the wrong place.
    """

    def __init__(
        self,
        data: Any,
        lines: dict[Path_, int],
        file: str,
        origins: dict[Path_, tuple[str, Path_]] | None = None,
    ) -> None:
        self.data = data
        self.lines = lines
        self.file = file
        self.origins: dict[Path_, tuple[str, Path_]] = origins or {}

    def line_of(self, path: Path_) -> int | None:
        """Line of ``path``, or of its nearest located parent."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get(())

    def origin_of(self, path: Path_) -> tuple[str, Path_]:
        """The file ``path`` was written in and its path there (different after ``extends``)."""
        p = tuple(path)
        for n in range(len(p), 0, -1):
            hit = self.origins.get(p[:n])
            if hit is not None:
                return hit[0], (*hit[1], *p[n:])
        return self.file, p

    def error(self, path: Path_, message: str) -> ProfileError:
        file, shown = self.origin_of(path)
        return ProfileError(message, file, self.line_of(path), render_path(shown) or None)


def render_path(path: Path_) -> str:
    """``("faults", 0, "schedule", "first")`` as ``faults[0].schedule.first``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- reading ----------------------------------------------------------------------------------
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
    builder = _Builder("<probe>", starts=True)
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
    builder = _Builder(file)
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


# -- building values from events --------------------------------------------------------------
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_COLLECTION_TAGS = {None, "!", _CORE + "seq", _CORE + "map"}


class _Frame:
    __slots__ = ("anchor", "key", "key_line", "path", "start", "value")

    def __init__(self, value: Any, path: Path_, anchor: str | None, start: int) -> None:
        self.value = value
        self.path = path
        self.anchor = anchor
        self.start = start  # index of this value's first entry in _Builder.entries
        self.key: str | None = None
        self.key_line = 0


class _Anchored:
    __slots__ = ("depth", "entries", "value")

    def __init__(self, value: Any, entries: list[tuple[Path_, int]], depth: int) -> None:
        self.value = value
        self.entries = entries  # (path relative to the anchored value, line)
        self.depth = depth


class _Builder:
    """Turns PyYAML events into values, with an explicit stack (never recursion)."""

    def __init__(self, file: str, *, starts: bool = False) -> None:
        self.file = file
        #: (path, line, column) of each key and value, kept only when asked (to locate problems)
        self.starts: list[tuple[Path_, int, int]] = []
        self._keep_starts = starts
        self.last_line = 1
        self.stack: list[_Frame] = []
        self.entries: list[tuple[Path_, int]] = []  # (path, line), in document order
        self.anchors: dict[str, _Anchored] = {}
        self.open_anchors: set[str] = set()
        self.values = 0
        self.documents = 0
        self.root: Any = None
        self.done = False
        self.resolver = yaml.resolver.Resolver()
        self.constructor = yaml.constructor.SafeConstructor()

    def error(self, message: str, line: int, path: Path_ | None = None) -> ProfileError:
        return ProfileError(message, self.file, line, render_path(path) if path else None)

    def result(self) -> Located:
        lines = dict(self.entries)
        if not self.done:
            return Located({}, {}, self.file)
        return Located(self.root, lines, self.file)

    # where the next value goes: its path and the line that names it
    def _slot(self, line: int) -> tuple[Path_, int]:
        if not self.stack:
            return (), line
        top = self.stack[-1]
        if isinstance(top.value, list):
            return (*top.path, len(top.value)), line
        assert top.key is not None
        return (*top.path, top.key), top.key_line

    def _count(self, n: int, line: int, path: Path_) -> None:
        self.values += n
        if self.values > MAX_VALUES:
            raise self.error(f"the document holds more than {MAX_VALUES} values (aliases expanded)", line, path)

    def _place(self, value: Any) -> None:
        if not self.stack:
            self.root = value
            self.done = True
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            top.value.append(value)
        else:
            assert top.key is not None
            top.value[top.key] = value
            top.key = None

    def _expecting_key(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1].value, dict) and self.stack[-1].key is None

    def _take_key(self, event: yaml.Event) -> None:
        top = self.stack[-1]
        line = event.start_mark.line + 1
        if not isinstance(event, yaml.ScalarEvent):
            raise self.error("mapping keys must be strings", line, top.path or None)
        key = str(event.value)
        if key in top.value:
            first = dict(self.entries[top.start :]).get((*top.path, key))
            where = f" (first at line {first})" if first else ""
            raise self.error(
                f"duplicate key {key!r}{where}; YAML would silently keep only the last one", line, (*top.path, key)
            )
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchored(key, [((), line)], 0)
        top.key, top.key_line = key, line
        if self._keep_starts:
            self.starts.append(((*top.path, key), line, event.start_mark.column + 1))

    def feed(self, event: yaml.Event) -> None:
        self.last_line = event.start_mark.line + 1
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.error(
                    "a profile is one YAML document; this is a second one (after '---' or '...')",
                    event.start_mark.line + 1,
                )
            return
        if not isinstance(event, yaml.NodeEvent | yaml.CollectionEndEvent):
            return  # stream and document ends
        if isinstance(event, yaml.CollectionEndEvent):
            self._end()
            return
        if self._expecting_key():
            self._take_key(event)
            return
        line = event.start_mark.line + 1
        path, named_at = self._slot(line)
        if self._keep_starts:
            self.starts.append((path, line, event.start_mark.column + 1))
        if isinstance(event, yaml.AliasEvent):
            self._alias(event, path, named_at)
            return
        self._count(1, line, path)
        self.entries.append((path, named_at))
        if isinstance(event, yaml.ScalarEvent):
            value = self._scalar(event, path)
            if event.anchor is not None:
                self.anchors[event.anchor] = _Anchored(value, [((), named_at)], 0)
            self._place(value)
            return
        tag = event.tag
        if tag not in _COLLECTION_TAGS:
            raise self.error(f"YAML tag {tag} is not supported in a profile", line, path or None)
        if len(self.stack) >= MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels", line, path or None)
        container: Any = [] if isinstance(event, yaml.SequenceStartEvent) else {}
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(_Frame(container, path, event.anchor, len(self.entries) - 1))

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            n = len(frame.path)
            sub = [(p[n:], line) for p, line in self.entries[frame.start :]]
            depth = max((len(p) for p, _ in sub), default=0) + 1
            self.anchors[frame.anchor] = _Anchored(frame.value, sub, depth)
        self._place(frame.value)

    def _alias(self, event: yaml.AliasEvent, path: Path_, named_at: int) -> None:
        line = event.start_mark.line + 1
        name = event.anchor
        if name in self.open_anchors:
            raise self.error(f"alias *{name} refers to the value that contains it (a recursive structure)", line, path)
        anchored = self.anchors.get(name)
        if anchored is None:
            raise self.error(f"alias *{name} has no anchor &{name} before it", line, path)
        if len(self.stack) + anchored.depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH} levels (through alias *{name})", line, path)
        self._count(len(anchored.entries), line, path)
        self.entries.append((path, named_at))
        self.entries.extend(((*path, *p), n) for p, n in anchored.entries if p)
        self._place(copy.deepcopy(anchored.value))

    def _scalar(self, event: yaml.ScalarEvent, path: Path_) -> Any:
        line = event.start_mark.line + 1
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag not in _SCALAR_TAGS:
            raise self.error(f"YAML tag {event.tag} is not supported in a profile", line, path or None)
        if tag == _CORE + "str" or tag == _CORE + "timestamp":
            return event.value
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
        what = {"int": "integer", "float": "number", "bool": "boolean", "null": "null"}[tag.rsplit(":", 1)[1]]
        try:
            value = self.constructor.yaml_constructors[tag](self.constructor, node)
        except (ValueError, OverflowError, yaml.YAMLError):
            raise self.error(f"not a usable {what}: {event.value[:40]!r}", line, path or None) from None
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_INT:
            raise self.error(f"integer out of range (beyond 2**63): {event.value[:40]}", line, path or None)
        return value


# -- Python data given directly ---------------------------------------------------------------
def check_plain(data: Any, file: str = "<dict>") -> None:
    """Hold profile data built in code to what YAML could have written: mappings with string
    keys, lists (or tuples), strings, numbers, booleans and null, at most :data:`MAX_DEPTH`
    levels deep; anything else is a :class:`ProfileError` naming the field."""
    stack: list[tuple[Any, Path_, int]] = [(data, (), 0)]
    seen = 0
    while stack:
        value, path, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ProfileError(f"more than {MAX_VALUES} values", file, None, render_path(path) or None)
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_INT:
            raise ProfileError("integer out of range (beyond 2**63)", file, None, render_path(path) or None)
        if isinstance(value, str | bool | int | float) or value is None:
            continue
        if depth >= MAX_DEPTH:
            raise ProfileError(f"nested deeper than {MAX_DEPTH} levels", file, None, render_path(path) or None)
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ProfileError(
                        f"mapping keys must be strings (got {type(key).__name__})",
                        file,
                        None,
                        render_path(path) or None,
                    )
                stack.append((item, (*path, key), depth + 1))
        elif isinstance(value, list | tuple):
            stack.extend((item, (*path, i), depth + 1) for i, item in enumerate(value))
        else:
            raise ProfileError(
                f"must be a string, number, boolean, null, list or mapping (got {type(value).__name__})",
                file,
                None,
                render_path(path) or None,
            )
