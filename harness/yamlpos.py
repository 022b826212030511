"""YAML with positions: load a document and remember the line of every value.

A profile error must name the file, line and field. PyYAML's composer keeps a mark on every
node; this module turns the node tree into plain Python values plus a map from each value's path
(``("lanes", "ultraspeed", "simulator", "slots")``) to its 1-based line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["Located", "ProfileError", "load_located", "read_located", "render_path"]

Path_ = tuple[str | int, ...]


class ProfileError(ValueError):
    """A profile problem, located: ``file:line: field: message``."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None, field: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(self.render())

    def render(self) -> str:
        where = self.file or "<profile>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


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


def load_located(text: str, file: str = "<profile>") -> Located:
    """Parse ``text``; YAML syntax errors become :class:`ProfileError` with the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context, cmark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and cmark is not None and (mark is None or cmark.line != mark.line):
            problem += f" ({context} at line {cmark.line + 1})"
        raise ProfileError(f"invalid YAML: {problem}", file, mark.line + 1 if mark else None) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return Located({}, lines, file)
    return Located(_convert(node, (), lines, file), lines, file)


def _convert(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ProfileError("mapping keys must be strings", file, key_node.start_mark.line + 1)
            key = str(key_node.value)
            if key in out:
                first = lines.get((*path, key))
                where = f" (first at line {first})" if first else ""
                raise ProfileError(
                    f"duplicate key {key!r}{where}; YAML would silently keep only the last one",
                    file,
                    key_node.start_mark.line + 1,
                    render_path((*path, key)),
                )
            out[key] = _convert(value_node, (*path, key), lines, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), lines, file) for i, item in enumerate(node.value)]
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    finally:
        loader.dispose()


def read_located(path: str | Path) -> Located:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read profile: {exc.strerror}", str(p)) from None
    return load_located(text, str(p))
