"""Which call caused each attempt, for agents that send nothing special.

A check judges *calls* (one logical request of the agent, which may cause several attempts across
lanes), but a lane sees only attempts. An agent may tie them together itself by sending
``x-routechaos-call-id``; most agents do not, so the journal's other facts have to do it, the way
a careful human reading the timeline would:

1. **Header**: an attempt that carries a call id belongs to that call.
2. **Time window**: an attempt belongs to a call whose window (the call record's start to end,
   in-process or reported over the control API) contains the attempt's start. One window: done.
3. **Conversation**: among several overlapping windows, the call whose conversation the attempt
   carries: the call's returned text is (a prefix of) the canonical answer of the attempt's
   fingerprint, or the call already owns attempts of that conversation. A call that failed has no
   text; it is what is left when the others are accounted for.
4. **Timing**: what is still ambiguous (the same conversation sent by several calls at once) is
   settled as a sequential agent would have done it: a call's attempts do not overlap, its SDK
   retry counter goes up by one, its first request follows its start closely, and the attempt
   that delivered its answer ends just before the call returns. Such attempts are marked
   ``timing`` with the other calls that could have made them, so a check can say so.
5. **Wire**: attempts outside every call record (or a journal with no call records at all) are
   grouped by conversation, a complete answer closing the group: a correct agent does not ask
   again for an answer it already has. With call records present, they are *unattributed*.

Every attempt ends up in at most one call: nothing is counted twice. Pure code over the journal's
records, so it is tested with hand-made journals in virtual time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from heapq import heappop, heappush

from .answers import learn, recorded_text
from .canonical import canonical_text
from .journal import Attempt, Call, Journal

__all__ = ["Attribution", "Basis", "attempts_by_call", "attribute", "attribution_of", "call_keys", "text_matches"]


class Basis:
    """How an attempt was tied to its call (strings, so they read well in evidence and JSON)."""

    HEADER = "header"
    WINDOW = "window"
    CONVERSATION = "conversation"
    TIMING = "timing"
    WIRE = "wire"


#: how far (real seconds) an attempt may start outside a call's recorded window: clocks read an
#: instant apart in-process; an agent in another process reports epoch times it took itself
TOLERANCE_IN_PROCESS = 0.002
TOLERANCE_REPORTED = 0.025


@dataclass
class Attribution:
    """The result: each attempt's call and how it was found."""

    call_of: dict[str, str] = field(default_factory=dict)  # attempt id -> call key
    basis: dict[str, str] = field(default_factory=dict)  # attempt id -> Basis.*
    alternatives: dict[str, tuple[str, ...]] = field(default_factory=dict)  # timing: other candidates
    unattributed: list[str] = field(default_factory=list)  # outside every call record
    wire_groups: dict[str, list[str]] = field(default_factory=dict)  # key -> attempt ids (no record)

    def ambiguous_calls(self, attempt_ids: Iterable[str]) -> tuple[str, ...]:
        """Other calls that could have made any of ``attempt_ids`` (empty when all are certain)."""
        out: set[str] = set()
        for i in attempt_ids:
            out.update(self.alternatives.get(i, ()))
        return tuple(sorted(out))


def call_keys(calls: Sequence[Call]) -> list[str]:
    """The key of each call record: its id, or ``id#k`` for the k-th record reusing an id (an
    agent that numbers its calls from 0 in every run): two records are never one call."""
    seen: dict[str, int] = {}
    out = []
    for c in calls:
        n = seen[c.id] = seen.get(c.id, 0) + 1
        out.append(c.id if n == 1 else f"{c.id}#{n}")
    return out


def text_matches(
    text: str | None, fp: str | None, expected_tokens: int | None, answer: str | None = None
) -> str | None:
    """``"whole"`` when ``text`` holds the canonical answer of ``fp``, ``"prefix"`` when it is a
    non-empty prefix of it (a truncation), else ``None``. Only simulator answers are canonical,
    and recorded ones: ``answer`` names the recorded answer of a replayed attempt."""
    if not text or not fp or not expected_tokens:
        return None
    if answer is not None:
        recorded = recorded_text(answer)
        if recorded is None:
            return None
        want = recorded.strip()
    else:
        want = canonical_text(fp, expected_tokens).strip()
    got = text.strip()
    if not got or not want:
        return None
    if want in got:
        return "whole"
    if want.startswith(got):
        return "prefix"
    return None


class _Families:
    """Conversations that belong together: a fingerprint and the fingerprints of the steps that
    continue it (an agent loop's ``parent_fingerprint`` links), joined by union-find."""

    def __init__(self, attempts: Sequence[Attempt]) -> None:
        self.parent: dict[str, str] = {}
        for a in attempts:
            if a.fingerprint:
                self.find(a.fingerprint)
                pf = getattr(a, "parent_fingerprint", None)
                if pf:
                    self.union(a.fingerprint, pf)

    def find(self, x: str) -> str:
        p = self.parent.setdefault(x, x)
        while p != self.parent[p]:
            self.parent[p] = self.parent[self.parent[p]]
            p = self.parent[p]
        self.parent[x] = p
        return p

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def of(self, a: Attempt) -> str | None:
        return self.find(a.fingerprint) if a.fingerprint else None


def _end(a: Attempt) -> float:
    return a.t_end if a.t_end is not None else math.inf


@dataclass(eq=False, slots=True)
class _C:
    """A call record as attribution sees it: its key and how loosely its window is read."""

    key: str
    call: Call
    tol: float

    @property
    def t_start(self) -> float:
        return self.call.t_start

    @property
    def t_end(self) -> float:
        return self.call.t_end if self.call.t_end is not None else math.inf

    @property
    def ok(self) -> bool:
        return self.call.outcome == "ok"


def attribute(journal: Journal) -> Attribution:
    """Tie every attempt of ``journal`` to at most one call (see the module's docstring)."""
    attempts = journal.attempts()
    records = journal.calls()
    scale = getattr(journal, "scale", 1.0)
    learn(journal)  # the recorded answers of replayed attempts
    out = Attribution()
    fam = _Families(attempts)
    calls = [
        _C(k, c, scale * (TOLERANCE_IN_PROCESS if c.source == "drill" else TOLERANCE_REPORTED))
        for c, k in zip(records, call_keys(records), strict=True)
    ]
    record_keys = {c.key for c in calls}

    # 1. header
    rest: list[Attempt] = []
    header_calls: set[str] = set()
    for a in attempts:
        if a.call_id:
            out.call_of[a.id] = a.call_id
            out.basis[a.id] = Basis.HEADER
            if a.call_id in record_keys:
                header_calls.add(a.call_id)
        else:
            rest.append(a)
    if not calls:
        _wire(rest, fam, out)
        return out

    # 2. time windows, in one sweep over attempts by start time: a call joins the open windows
    # when its window opens and leaves for good once it closed before the attempt at hand started,
    # so each attempt meets only the calls open around it (linear in the drill, not quadratic)
    by_start = sorted(calls, key=lambda c: c.t_start - c.tol)
    open_: dict[int, _C] = {}  # in by_start order: the windows open at the sweep's time
    closing: list[tuple[float, int]] = []  # (window's end, index into by_start), a min-heap
    nxt = 0
    window_of: dict[str, list[_C]] = {}
    for a in sorted(rest, key=lambda x: x.t_start):
        while nxt < len(by_start) and by_start[nxt].t_start - by_start[nxt].tol <= a.t_start:
            c = by_start[nxt]
            open_[nxt] = c
            heappush(closing, (c.t_end + c.tol, nxt))
            nxt += 1
        while closing and closing[0][0] < a.t_start:
            open_.pop(heappop(closing)[1], None)
        window_of[a.id] = [open_[k] for k in sorted(open_)] if len(open_) > 1 else list(open_.values())
    cands: dict[str, list[_C]] = {}
    orphans: list[Attempt] = []
    for a in rest:
        ws = window_of[a.id]
        if len(ws) > 1:  # a call that tags its attempts does not also send untagged ones
            ws = [c for c in ws if c.key not in header_calls] or ws
        if ws:
            cands[a.id] = ws
        else:
            orphans.append(a)

    # 3. conversations: the text each call returned names its conversation
    told: dict[str, set[str]] = {c.key: set() for c in calls}
    for c in calls:
        if c.call.fingerprint:
            told[c.key].add(fam.find(c.call.fingerprint))
    for a in rest:
        f = fam.of(a)
        for c in cands.get(a.id, ()) if f is not None else ():
            if text_matches(c.call.text, a.fingerprint, a.expected_tokens, a.answer):
                told[c.key].add(f)
    owns: dict[str, set[str]] = {c.key: set() for c in calls}
    assigned: dict[str, str] = {}

    def pin(a: Attempt, c: _C, basis: str) -> None:
        assigned[a.id] = out.call_of[a.id] = c.key
        out.basis[a.id] = basis
        f = fam.of(a)
        if f is not None:
            owns[c.key].add(f)

    pending: list[Attempt] = []
    for a in rest:
        ws = cands.get(a.id)
        if ws is not None and len(ws) == 1:
            pin(a, ws[0], Basis.WINDOW)
        elif ws is not None:
            pending.append(a)

    # narrow by conversation until nothing changes: what calls said first, then what they own
    changed = True
    while changed and pending:
        changed = False
        still: list[Attempt] = []
        for a in pending:
            f = fam.of(a)
            ws = cands[a.id]
            said = [c for c in ws if f is not None and f in told[c.key]]
            ws = said or [c for c in ws if not told[c.key]] or ws
            known = [c for c in ws if f is not None and f in owns[c.key]]
            free = [c for c in ws if not owns[c.key] and not told[c.key]]
            # owning a conversation decides only where no other candidate returned it too (the
            # same prompt from several calls at once: that is for the timing step)
            if len(known) == 1 and not free and len(said) < 2:
                ws = known
            elif not known and f is not None:
                others = [c for c in ws if owns[c.key]]
                if others and len(others) < len(ws):
                    ws = [c for c in ws if not owns[c.key]]
            if len(ws) < len(cands[a.id]):
                cands[a.id] = ws
                changed = True
            if len(ws) == 1:
                pin(a, ws[0], Basis.CONVERSATION)
                changed = True
            else:
                still.append(a)
        pending = still

    # 4. timing: the same conversation from several calls at once
    if pending:
        _by_timing(pending, cands, attempts, assigned, {a.id: fam.of(a) for a in attempts}, out, scale)

    # 5. outside every call record
    out.unattributed = [a.id for a in orphans]
    return out


def _by_timing(
    pending: list[Attempt],
    cands: dict[str, list[_C]],
    attempts: list[Attempt],
    assigned: dict[str, str],
    family: dict[str, str | None],
    out: Attribution,
    scale: float,
) -> None:
    """Settle ambiguous attempts as sequential calls would have made them (see step 4)."""
    eps = TOLERANCE_IN_PROCESS * scale
    by_id = {a.id: a for a in attempts}
    owned: dict[str, list[Attempt]] = {}
    for aid, key in assigned.items():
        owned.setdefault(key, []).append(by_id[aid])

    def overlaps(a: Attempt, key: str) -> bool:
        return any(b.t_start < _end(a) - eps and a.t_start < _end(b) - eps for b in owned.get(key, ()))

    def answered(key: str, t: float) -> bool:
        return any(b.complete and _end(b) <= t + eps for b in owned.get(key, ()))

    def settle(a: Attempt, key: str) -> None:
        owned.setdefault(key, []).append(a)
        out.call_of[a.id] = key
        out.basis[a.id] = Basis.TIMING
        out.alternatives[a.id] = tuple(c.key for c in cands[a.id] if c.key != key)

    # anchors first: the attempt whose answer a successful call returned ended just before the call
    # did, and delivered that text (all of it, or the very prefix the call kept). Calls and such
    # attempts are matched as a whole (a maximum matching, each call trying its latest fitting
    # attempt first): handing each call in turn its latest fit can leave a later call with none
    # although every call had one (concurrent calls whose windows nest, on a loaded machine)
    needy = sorted({c.key: c for a in pending for c in cands[a.id] if c.ok}.values(), key=lambda c: c.t_end)
    fits: dict[str, list[Attempt]] = {}
    for c in needy:
        if answered(c.key, c.t_end):
            continue
        fit = [
            a
            for a in pending
            if c in cands[a.id] and _end(a) <= c.t_end + eps and not overlaps(a, c.key) and _delivered(a, c.call.text)
        ]
        if fit:
            fits[c.key] = sorted(fit, key=lambda x: (_end(x), x.t_start), reverse=True)
    taken: set[str] = set()
    for key, a in _match(fits).items():
        taken.add(a.id)
        settle(a, key)

    for a in pending:
        if a.id in taken:
            continue
        best: tuple[float, str] | None = None
        for c in cands[a.id]:
            mine = owned.get(c.key, [])
            cost = _cost(a, c, mine, overlaps(a, c.key), answered(c.key, a.t_start), eps)
            fams = {family[b.id] for b in mine} - {None}
            if fams and family[a.id] not in fams:
                cost += 300.0  # a call keeps its conversation across retries and lanes
            if best is None or cost < best[0]:
                best = (cost, c.key)
        assert best is not None
        settle(a, best[1])

    # every call record made at least one attempt of its own: a call the greedy pass left with
    # none takes, from a call holding several of these ambiguous attempts, the one that fits it best
    # (the ambiguity stays said: the moved attempt names the other candidates)
    for c in {c.key: c for a in pending for c in cands[a.id]}.values():
        if owned.get(c.key):
            continue
        donors = [a for a in pending if c in cands[a.id] and len(owned[out.call_of[a.id]]) > 1]
        if not donors:
            continue
        a = min(
            donors,
            key=lambda x: (not (c.ok and _delivered(x, c.call.text)), _cost(x, c, [], False, False, eps)),
        )
        owned[out.call_of[a.id]].remove(a)
        settle(a, c.key)


def _match(fits: dict[str, list[Attempt]]) -> dict[str, Attempt]:
    """A maximum matching of calls to attempts (Kuhn's augmenting paths, iterative so that a long
    drill cannot exhaust the stack): each call tries its candidates in the order given, so where
    nothing competes every call keeps its first choice."""
    owner: dict[str, str] = {}  # attempt id -> call key
    got: dict[str, Attempt] = {}  # call key -> attempt
    for root in fits:
        seen: set[str] = set()
        # each frame: (call key, index of the next candidate to try); path of (call, attempt) edges
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[tuple[str, Attempt]] = []
        while stack:
            key, i = stack.pop()
            options = fits.get(key, ())
            while i < len(options) and options[i].id in seen:
                i += 1
            if i == len(options):  # a dead end: step back and let the caller try its next option
                if path:
                    path.pop()
                continue
            a = options[i]
            seen.add(a.id)
            stack.append((key, i + 1))
            path.append((key, a))
            holder = owner.get(a.id)
            if holder is None:  # an augmenting path: flip every edge along it
                for k, b in path:
                    owner[b.id] = k
                    got[k] = b
                break
            stack.append((holder, 0))
    return got


def _delivered(a: Attempt, text: str | None) -> bool:
    """Whether ``a`` could be where a call's returned ``text`` came from: a complete answer, or,
    for a text that is a prefix of the canonical answer, an attempt that delivered that many
    tokens (the cut stream an agent kept)."""
    kind = text_matches(text, a.fingerprint, a.expected_tokens, a.answer)
    if kind == "prefix" and a.answer is not None:  # a recorded answer's tokens are not its words
        return abs(a.text_chars - len((text or "").strip())) <= 1
    if kind == "prefix":
        return abs(a.tokens - len((text or "").split())) <= 1
    return a.complete


def _cost(a: Attempt, c: _C, mine: list[Attempt], overlap: bool, answered: bool, eps: float) -> float:
    """How unlike a sequential agent it would be for call ``c`` to have made attempt ``a``."""
    cost = 0.0
    if overlap:
        cost += 1000.0  # a call's attempts follow one another
    if answered:
        cost += 500.0  # a call that had its answer does not ask again
    before = [b for b in mine if b.t_start < a.t_start]
    last_on_lane = max((b for b in before if b.lane == a.lane), key=lambda b: b.t_start, default=None)
    if a.retry_count is not None and a.retry_count > 0:
        if last_on_lane is None or last_on_lane.retry_count != a.retry_count - 1:
            cost += 200.0  # an SDK's retry counter goes up by one within its loop
    elif a.retry_count == 0 and last_on_lane is not None and last_on_lane.retry_count is not None:
        cost += 1.0  # a fresh SDK loop on a lane this call already tried: possible, less likely
    last_event = max([c.t_start] + [_end(b) for b in before if _end(b) <= a.t_start + eps])
    cost += max(0.0, a.t_start - last_event)  # the sooner after the call's last event, the likelier
    return cost


def _wire(attempts: Sequence[Attempt], fam: _Families, out: Attribution) -> None:
    """Calls seen from the wire only: a conversation's attempts, split after each complete answer."""
    open_group: dict[str, str] = {}
    count: dict[str, int] = {}
    for a in attempts:
        f = fam.of(a) or a.id
        key = open_group.get(f)
        if key is None:
            count[f] = count.get(f, 0) + 1
            base = a.fingerprint or a.id
            key = base if count[f] == 1 else f"{base}#{count[f]}"
            open_group[f] = key
            out.wire_groups[key] = []
        out.wire_groups[key].append(a.id)
        out.call_of[a.id] = key
        out.basis[a.id] = Basis.WIRE
        if a.complete:
            del open_group[f]


def attempts_by_call(journal: Journal) -> dict[str, list[Attempt]]:
    """Attempts grouped by the call that caused them (the ``x-routechaos-call-id`` header when the
    agent sent one, else the call records' time windows, conversations and answers, else the
    conversation alone). Attempts outside every call record are left out."""
    att = attribute(journal)
    groups: dict[str, list[Attempt]] = {}
    for a in journal.attempts():
        key = att.call_of.get(a.id)
        if key is not None:
            groups.setdefault(key, []).append(a)
    return groups


def attribution_of(journal: Journal) -> Attribution:
    """The journal's attribution, computed once per state of the journal (checks share it)."""
    state = (len(journal), len(journal.calls()))
    cached = getattr(journal, "_routechaos_attribution", None)
    if cached is not None and cached[0] == state:
        return cached[1]
    att = attribute(journal)
    journal._routechaos_attribution = (state, att)  # type: ignore[attr-defined]
    return att
