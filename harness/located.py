"""Located values: a loaded document with the line of every value, and the error that points into
one (:class:`ProfileError`, with file, line and field), plus the caps every profile is held to.

The types the YAML reader (:mod:`harness.yamlpos`), its event builder (:mod:`harness.yamlevents`)
and the profile loader share, apart from the reading so that each may import them without an
import circle; :func:`check_plain` holds data built in code to the same caps. Import them from
:mod:`harness.yamlpos`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_VALUES",
    "Located",
    "Path_",
    "ProfileError",
    "check_plain",
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
