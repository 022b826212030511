"""PyYAML's event stream turned into plain values and the line of each, with an explicit stack.

Apart from the reading (:mod:`harness.yamlpos`) because it is the part that must never recurse,
never build what a profile cannot mean (tags, recursive aliases) and stop at the caps as soon as
one is passed: :class:`Builder` is that, and nothing else.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .located import MAX_DEPTH, MAX_INT, MAX_VALUES, Located, Path_, ProfileError, render_path

__all__ = ["Builder"]


_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_COLLECTION_TAGS = {None, "!", _CORE + "seq", _CORE + "map"}


class _Frame:
    __slots__ = ("anchor", "key", "key_line", "path", "start", "value")

    def __init__(self, value: Any, path: Path_, anchor: str | None, start: int) -> None:
        self.value = value
        self.path = path
        self.anchor = anchor
        self.start = start  # index of this value's first entry in Builder.entries
        self.key: str | None = None
        self.key_line = 0


class _Anchored:
    __slots__ = ("depth", "entries", "value")

    def __init__(self, value: Any, entries: list[tuple[Path_, int]], depth: int) -> None:
        self.value = value
        self.entries = entries  # (path relative to the anchored value, line)
        self.depth = depth


class Builder:
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
