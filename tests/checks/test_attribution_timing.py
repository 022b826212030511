"""Identical prompts from concurrent calls: only timing ties attempts to calls, and it must do so
for the whole set at once. Hand-made journals in virtual time (the shape a loaded machine made:
threads queue before they send, so call windows nest and overlap)."""

from __future__ import annotations

from collections import Counter

from harness.attribution import Basis, attribute
from harness.canonical import canonical_text

from .builder import JB

FP = "fp-same-question"
WHOLE = 48
KEPT = 12


def _kept() -> str:
    return " ".join(canonical_text(FP, WHOLE).split()[:KEPT])


def test_every_call_that_kept_a_cut_answer_gets_a_cut_attempt_when_windows_nest() -> None:
    """Three calls each kept a 12-token cut answer; three cut attempts. Giving each call in turn
    the latest cut attempt before its end hands the first two calls the two later attempts and
    leaves the third, which started after the earliest attempt, with none (a call counted as
    having made no attempt, another as having made two). A matching of the whole set gives each
    call one."""
    jb = JB()
    for call, t0, t1 in (("c-a", 2.034, 2.275), ("c-b", 2.095, 2.307), ("c-c", 2.122, 2.317)):
        jb.call(call, t0, t1, fingerprint=None, text=_kept(), source="drill")
    for t0, t1 in ((2.120, 2.247), (2.199, 2.261), (2.224, 2.298)):
        jb.cut("primary", t0, t1, call=None, fingerprint=FP, tokens=KEPT, expected=WHOLE)
    att = attribute(jb.j)
    assert sorted(Counter(att.call_of.values()).values()) == [1, 1, 1], att.call_of
    assert att.call_of["a000001"] == "c-a"  # the only call whose window holds its start
    assert all(att.basis[a] == Basis.TIMING for a in att.call_of)
    assert all(att.alternatives[a] for a in att.call_of)  # the ambiguity is said


def test_whole_and_cut_answers_go_to_the_calls_that_returned_them() -> None:
    """Two calls returned the whole answer and two kept a cut one, all at once: each whole answer
    goes to a call that returned the whole answer, each cut one to a call that kept a cut."""
    jb = JB()
    whole = canonical_text(FP, WHOLE)
    calls = (("w-1", 1.00, 1.30, whole), ("k-1", 1.01, 1.31, _kept()), ("w-2", 1.02, 1.32, whole))
    for call, t0, t1, text in (*calls, ("k-2", 1.03, 1.40, _kept())):
        jb.call(call, t0, t1, fingerprint=None, text=text, source="drill")
    jb.ok("primary", 1.05, 1.25, call=None, fingerprint=FP, tokens=WHOLE)
    jb.cut("primary", 1.06, 1.29, call=None, fingerprint=FP, tokens=KEPT, expected=WHOLE)
    jb.ok("primary", 1.07, 1.305, call=None, fingerprint=FP, tokens=WHOLE)
    jb.cut("primary", 1.20, 1.31, call=None, fingerprint=FP, tokens=KEPT, expected=WHOLE)
    att = attribute(jb.j)
    kinds = {a.id: a.end_reason for a in jb.j.attempts()}
    assert sorted(Counter(att.call_of.values()).values()) == [1, 1, 1, 1], att.call_of
    for aid, key in att.call_of.items():
        assert (kinds[aid] == "cut") == key.startswith("k-"), (aid, key)
