"""Conversation fingerprints and canonical answers.

A call may be retried on the same lane or sent to another lane that speaks another dialect. To
tie those attempts together, every dialect reduces its request to the same normalised
conversation (system text plus role/text turns) and hashes that: the **fingerprint**. The model
name, the stream flag and sampling parameters are left out on purpose, because a fallback changes
them but it is still the same call.

The simulator answers each fingerprint with a deterministic **canonical answer**, so that a
truncated answer can always be told from a complete one by comparing texts.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "canonical_text",
    "canonical_tokens",
    "estimate_tokens",
    "fingerprint",
    "fingerprints",
    "iter_canonical_tokens",
]

_WORDS = (
    "lane stable route token stream fallback retry budget answer model queue capacity "
    "premium steady signal latency window probe circuit journal evidence graceful "
    "provider request header event delta usage limit bucket refill pacing throughput "
    "agent drill fault schedule check verdict recover heal shrink replay seed café naïve "
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima"
).split()


#: ``json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))``, built once (dumps
#: with options builds an encoder per call, on every request's path)
_FP_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))
#: a string as that encoder writes it (C); skipped for long texts that need no escape (``_plain``)
_encode_string = json.encoder.encode_basestring
_second = operator.itemgetter(1)
_LONG = 4096  # from this many characters a text is first searched for what would need an escape
#: what JSON escapes, the characters real texts hold first (a search stops at the first found)
_ESCAPED = ("\n", '"', "\\", "\t", "\r", *(chr(c) for c in range(32) if chr(c) not in "\n\t\r"))


def _plain(s: str) -> bool:
    """Whether the encoder would write long text ``s`` as it is, in quotes: a long ASCII text with
    nothing to escape (one line of prose, base64), found by one ``memchr`` per escaped character
    instead of the encoder's two passes over every character (0.5 ms for 1 MB against 4)."""
    if not s.isascii():
        return False
    for c in _ESCAPED:
        if c in s:
            return False
    return True


class _Hashing:
    """Writes ``{"system": ..., "turns": [...]}`` as ``_FP_ENCODER`` would, into a hash: short
    pieces gathered and hashed together, a long text hashed on its own (no copy of it joined
    into a copy of the whole)."""

    __slots__ = ("buf", "h")

    def __init__(self) -> None:
        self.h = hashlib.sha256()
        self.buf: list[str] = []

    def flush(self) -> None:
        if self.buf:
            self.h.update("".join(self.buf).encode())
            self.buf.clear()

    def string(self, s: str) -> None:
        if len(s) < _LONG:
            self.buf.append(_encode_string(s))
        elif _plain(s):
            self.buf.append('"')
            self.flush()
            self.h.update(s.encode())
            self.buf.append('"')
        else:
            self.flush()
            self.h.update(_encode_string(s).encode())

    def value(self, v: Any) -> None:
        if type(v) is str:
            self.string(v)
        else:
            self.buf.append(_FP_ENCODER.encode(v))

    def turns(self, turns: Sequence[tuple[Any, ...]], first: bool) -> None:
        """``turns`` as the list's items, after a comma unless they are its ``first``."""
        buf = self.buf
        for t in turns:
            buf.append("[" if first else ",[")
            first = False
            self.value(t[0])
            buf.append(",")
            self.string(t[1].strip())
            if len(t) >= 3:
                buf.append(",[")
                for i, call in enumerate(t[2]):
                    buf.append("[" if i == 0 else ",[")
                    for k, v in enumerate(call):
                        if k:
                            buf.append(",")
                        self.value(v)
                    buf.append("]")
                buf.append("]")
            buf.append("]")

    def digest(self) -> str:
        """The fingerprint of what was written so far, the list closed (writing may go on)."""
        self.flush()
        h = self.h.copy()
        h.update(b"]}")
        return h.hexdigest()[:16]


def fingerprint(system: str, turns: Sequence[tuple[Any, ...]]) -> str:
    """Stable id of a conversation: same across retries, lanes and dialects.

    ``turns`` are ``(role, text)`` with roles normalised to ``user``/``assistant``/``tool``; an
    assistant turn that called tools is ``(role, text, ((name, canonical_arguments), ...))``, so
    each step of an agent loop has its own fingerprint while a plain conversation keeps the one it
    always had. Tool results are ``tool`` turns of their content: provider ids never count.
    """
    system = system.strip()
    norm = [[t[0], t[1].strip()] if len(t) < 3 else [t[0], t[1].strip(), [list(c) for c in t[2]]] for t in turns]
    if len(system) >= _LONG or (norm and max(map(len, map(_second, norm))) >= _LONG):
        return _piecewise(system, turns, None)[0]
    blob = _FP_ENCODER.encode({"system": system, "turns": norm})  # short texts: one call of the C encoder
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def fingerprints(system: str, turns: Sequence[tuple[Any, ...]], parent: int | None = None) -> tuple[str, str | None]:
    """``fingerprint(system, turns)`` and, when ``parent`` is given, ``fingerprint(system,
    turns[:parent])``, from one pass over the conversation: an agent loop's request names its
    parent step, whose conversation is all but its own last turns.

    What is hashed is ``{"system": ..., "turns": [...]}`` as ``_FP_ENCODER`` writes it (keys
    sorted, no spaces, UTF-8), what fingerprints always hashed, so every fingerprint stays what it
    was: it is only written piece by piece into the hash instead of joined first.
    """
    if parent is None or not 0 <= parent <= len(turns):
        return fingerprint(system, turns), None
    return _piecewise(system, turns, parent)


def _piecewise(system: str, turns: Sequence[tuple[Any, ...]], parent: int | None) -> tuple[str, str | None]:
    w = _Hashing()
    w.buf.append('{"system":')
    w.string(system.strip())
    w.buf.append(',"turns":[')
    parent_fp = None
    if parent is not None:
        w.turns(turns[:parent], True)
        parent_fp = w.digest()
        w.turns(turns[parent:], parent == 0)
    else:
        w.turns(turns, True)
    return w.digest(), parent_fp


_TABLE = tuple(" " + _WORDS[b % len(_WORDS)] for b in range(256))


def canonical_tokens(fp: str, n_tokens: int) -> list[str]:
    """The first ``n_tokens`` tokens of the canonical answer for fingerprint ``fp``.

    Every token is a space and a word (the first has no space), so a token count is a word count
    and the text of the first k tokens is a prefix of the full answer (what a truncated stream
    delivers). One table lookup per token: the simulator starts thousands of streams a second.
    """
    out: list[str] = []
    counter = 0
    while len(out) < n_tokens:
        out.extend(map(_TABLE.__getitem__, hashlib.sha256(f"{fp}:{counter}".encode()).digest()))
        counter += 1
    del out[n_tokens:]
    if out:
        out[0] = out[0][1:]
    return out


def iter_canonical_tokens(fp: str) -> Iterator[str]:
    """The canonical answer's tokens one by one, computed as they are needed: a stream of 2000
    tokens should not pay for all of them before its first byte."""
    counter = 0
    first = True
    while True:
        for tok in map(_TABLE.__getitem__, hashlib.sha256(f"{fp}:{counter}".encode()).digest()):
            if first:
                first = False
                yield tok[1:]
            else:
                yield tok
        counter += 1


def canonical_text(fp: str, n_tokens: int) -> str:
    """The canonical answer text of ``n_tokens`` tokens for fingerprint ``fp``."""
    return "".join(canonical_tokens(fp, n_tokens))


def estimate_tokens(text: str) -> int:
    """A provider-agnostic token estimate (about four characters a token), at least 1."""
    return max(1, (len(text) + 3) // 4)
