"""Recorded answers: the canonical answer of an attempt a cassette answered.

The simulator's answers are canonical by construction (:mod:`harness.canonical`: a fingerprint
and a length give the text). A replayed answer is what the provider really said; the lane that
replays it notes its text in the journal once (a ``recorded_answer`` mark: ``id`` and ``text``)
and the attempt names it (``Attempt.answer``), so checks and attribution judge a truncation of
a recorded answer exactly as they judge one of a simulated answer.

Ids are digests of the (redacted) text, so the small in-process book below can never confuse two
answers; a journal read back from its file teaches the book its marks (:func:`learn`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from .redact import redact_text

__all__ = ["ANSWER_MARK", "answer_id", "learn", "recorded_text", "remember_answer"]

ANSWER_MARK = "recorded_answer"
_MAX = 20_000
_book: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


def answer_id(text: str) -> str:
    """The id of a recorded answer's text: the same text, the same id."""
    return "rec-" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def _put(aid: str, text: str) -> None:
    with _lock:
        _book[aid] = text
        _book.move_to_end(aid)
        while len(_book) > _MAX:
            _book.popitem(last=False)


def remember_answer(text: str) -> str:
    """Put a recorded answer in the book (redacted, as the journal stores a call's text); its id."""
    text = redact_text(text)
    aid = answer_id(text)
    _put(aid, text)
    return aid


def recorded_text(aid: str) -> str | None:
    with _lock:
        return _book.get(aid)


def learn(journal: Any) -> None:
    """Put the recorded answers a journal's marks hold in the book (a journal loaded from a file)."""
    for m in journal.marks(ANSWER_MARK):
        aid, text = m.detail.get("id"), m.detail.get("text")
        if isinstance(aid, str) and isinstance(text, str) and recorded_text(aid) is None:
            _put(aid, text)
