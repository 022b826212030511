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
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["canonical_text", "canonical_tokens", "estimate_tokens", "fingerprint", "iter_canonical_tokens"]

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


def fingerprint(system: str, turns: Sequence[tuple[Any, ...]]) -> str:
    """Stable id of a conversation: same across retries, lanes and dialects.

    ``turns`` are ``(role, text)`` with roles normalised to ``user``/``assistant``/``tool``; an
    assistant turn that called tools is ``(role, text, ((name, canonical_arguments), ...))``, so
    each step of an agent loop has its own fingerprint while a plain conversation keeps the one it
    always had. Tool results are ``tool`` turns of their content: provider ids never count.
    """
    norm = {
        "system": system.strip(),
        "turns": [[t[0], t[1].strip()] if len(t) < 3 else [t[0], t[1].strip(), [list(c) for c in t[2]]] for t in turns],
    }
    blob = _FP_ENCODER.encode(norm)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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
