"""Strict JSON for what the harness reads from the outside: lane request bodies, control requests.

Python's ``json.loads`` accepts things that later break code far from the parser: ``NaN`` and
``Infinity`` (and ``1e999``, which becomes ``inf``) end up written into the journal as bare
``Infinity``, which is not JSON; a lone surrogate (``"\\ud800"``) parses, then fails the first
``encode()``; nesting a few hundred levels deep parses, then overflows the first recursive
walk (100k levels raise ``RecursionError`` in the parser itself). :func:`loads` refuses all of
them with one :class:`JSONError`, a ``ValueError`` whose message says what was wrong, so a
caller's ``except ValueError`` turns any of them into a clean 400.

The checks cost next to nothing on ordinary bodies, large ones included: depth is walked only when
the body has more opening brackets than the limit, and strings are checked for surrogates only
when the body contains a surrogate escape or its UTF-8 form. Both are found with substring
searches (``memchr`` speed), not a regular expression over every character: one alternation over
a 1 MB body cost more than decoding it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_DEPTH", "JSONError", "loads"]

#: deep enough for any tool schema or content-part list a provider accepts, far from the stack limit
MAX_DEPTH = 128
_MAX_INT_DIGITS = 308  # beyond this an integer is outside the range of a float: no use as a number
_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")
_SURROGATE_CHAR = re.compile(r"[\ud800-\udfff]")
_SURROGATE_UTF8 = re.compile(rb"\xed[\xa0-\xbf]")  # U+D800..U+DFFF in UTF-8, as surrogatepass reads it
_COUNT_BELOW = 65536  # below this many characters one str.count is cheaper than a loop of finds


class JSONError(ValueError):
    """The text is not JSON the harness accepts; ``message`` says why, for a 400's body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _constant(name: str) -> Any:
    raise JSONError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONError(f"number {text[:20]} is out of range")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise JSONError(f"number {text[:20]}... is out of range")
    return int(text)


#: one decoder for every call: ``json.loads`` with hooks builds a new one each time (~2 µs)
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_float=_float, parse_int=_int)


def loads(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` as strict JSON: finite numbers, valid Unicode, at most ``max_depth`` levels
    of arrays and objects. Raises :class:`JSONError` (a ``ValueError``) otherwise."""
    raw, encoding = data, None
    try:
        if not isinstance(data, str):  # as json.loads reads bytes (UTF-8, -16 or -32)
            encoding = json.detect_encoding(data)
            data = data.decode(encoding, "surrogatepass")
        obj = _DECODER.decode(data)
    except JSONError:
        raise
    except RecursionError:
        raise JSONError(f"nested deeper than {max_depth} levels") from None
    except UnicodeDecodeError as exc:
        raise JSONError(f"not valid UTF-8 at byte {exc.start}") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise JSONError(str(exc)) from None
    deep = _more_brackets(data, max_depth)
    surrogates = _may_hold_surrogates(data, raw, encoding)
    if deep or surrogates:
        _walk(obj, max_depth if deep else 0, surrogates)
    return obj


def _more_brackets(text: str, limit: int) -> bool:
    """Whether ``text`` has more than ``limit`` opening brackets (an upper bound on its depth);
    a long text stops looking at the one past the limit."""
    if len(text) < _COUNT_BELOW:
        return text.count("[") + text.count("{") > limit
    found = 0
    for bracket in "[{":
        pos = text.find(bracket)
        while pos >= 0:
            found += 1
            if found > limit:
                return True
            pos = text.find(bracket, pos + 1)
    return False


def _may_hold_surrogates(text: str, raw: bytes | bytearray | str, encoding: str | None) -> bool:
    """Whether the parsed strings may hold a lone surrogate: the text escapes one (``\\ud800``),
    or holds one itself (decoded from its UTF-8 form, or given in a ``str``)."""
    if "\\" in text and _SURROGATE_ESCAPE.search(text):  # one byte first: most bodies have no escape
        return True
    if text.isascii():
        return False
    if encoding in ("utf-8", "utf-8-sig"):  # the bytes are shorter to search than the text
        return _SURROGATE_UTF8.search(raw) is not None  # type: ignore[arg-type]
    return _SURROGATE_CHAR.search(text) is not None


def _bad_text(s: str) -> bool:
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _walk(obj: Any, max_depth: int, surrogates: bool) -> None:
    """Check depth (when ``max_depth``) and lone surrogates (when ``surrogates``), iteratively."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if surrogates and _bad_text(node):
                raise JSONError("lone surrogate in a string (not valid Unicode)")
            continue
        if max_depth and depth > max_depth:
            raise JSONError(f"nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                if surrogates and _bad_text(key):
                    raise JSONError("lone surrogate in an object key (not valid Unicode)")
                if isinstance(value, dict | list) or (surrogates and isinstance(value, str)):
                    stack.append((value, depth + 1))
        elif isinstance(node, list):
            for value in node:
                if isinstance(value, dict | list) or (surrogates and isinstance(value, str)):
                    stack.append((value, depth + 1))
