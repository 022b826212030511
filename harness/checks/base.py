"""The machinery every check shares: verdicts, evidence, results, the registry, parameter parsing,
combination and the text rendering of a failed result (a timeline of the attempts that broke it).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from ..attribution import attribution_of
from ..journal import Attempt, Call, Journal

__all__ = [
    "CHECKS",
    "Check",
    "CheckResult",
    "Evidence",
    "Report",
    "Verdict",
    "combine",
    "make_check",
    "make_checks",
    "register",
    "render_failure",
    "render_timeline",
]


class Verdict(enum.StrEnum):
    """What a check concluded. ``FAIL`` beats ``UNKNOWN`` beats ``PASS`` when combined."""

    PASS = "pass"
    FAIL = "fail"
    UNKNOWN = "unknown"


_RANK = {Verdict.PASS: 0, Verdict.UNKNOWN: 1, Verdict.FAIL: 2}


def combine(verdicts: Iterable[Verdict | CheckResult | Evidence]) -> Verdict:
    """The overall verdict: any ``FAIL`` fails, else any ``UNKNOWN`` is unknown, else ``PASS``.

    Accepts verdicts, results or evidence items; an empty collection passes (nothing was asked).
    """
    worst = Verdict.PASS
    for v in verdicts:
        v = v if isinstance(v, Verdict) else v.verdict
        if _RANK[v] > _RANK[worst]:
            worst = v
    return worst


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation behind a verdict: what was seen, on which call/attempts/lane, when, and the
    measured value against the bound it was held to. ``verdict`` says whether this item is a
    violation (``FAIL``), a case the journal cannot decide (``UNKNOWN``) or a measurement that
    held (``PASS``, kept so a report can show actual vs requested for every case)."""

    what: str
    verdict: Verdict = Verdict.FAIL
    call: str | None = None
    attempts: tuple[str, ...] = ()
    lane: str | None = None
    t: float | None = None
    measured: float | None = None
    bound: float | None = None

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["verdict"] = self.verdict.value
        d["attempts"] = list(self.attempts)
        return d


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check, a one-line summary and the evidence behind it.

    ``severity`` is the profile's: an ``error`` check decides the drill, a ``warn`` check is
    reported and never fails it. ``notes`` say what may have distorted the verdict (SDK retries in
    a compressed drill, a workload that ended early) without changing it."""

    name: str
    verdict: Verdict
    summary: str
    evidence: list[Evidence] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    @property
    def decides(self) -> bool:
        """Whether this result counts towards the drill's verdict (``severity: error``)."""
        return self.severity == "error"

    @property
    def label(self) -> str:
        """``PASS``/``FAIL``/``UNKNOWN``, or ``WARN`` for a warn-only check that did not pass."""
        if not self.decides and self.verdict is not Verdict.PASS:
            return "WARN"
        return self.verdict.value.upper()

    def problems(self) -> list[Evidence]:
        """Evidence items that failed, then those that are unknown."""
        return [e for e in self.evidence if e.verdict is Verdict.FAIL] + [
            e for e in self.evidence if e.verdict is Verdict.UNKNOWN
        ]

    def render(self, journal: Journal | None = None, **kw: Any) -> str:
        return render_failure(self, journal, **kw)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "summary": self.summary,
            "params": dict(self.params),
            "severity": self.severity,
            "notes": list(self.notes),
            "evidence": [e.to_json() for e in self.evidence],
        }


# -- checks and their registry ----------------------------------------------------------------

CHECKS: dict[str, type[Check]] = {}
C = TypeVar("C", bound="type[Check]")


def register(name: str) -> Callable[[C], C]:
    """Register a check class under the name profiles use (``@register("no_lost_calls")``)."""

    def deco(cls: C) -> C:
        if name in CHECKS:
            raise ValueError(f"check {name!r} registered twice")
        cls.name = name
        CHECKS[name] = cls
        return cls

    return deco


class Check:
    """Base of every check: a frozen dataclass whose fields are its typed parameters.

    Subclasses implement :meth:`evaluate` and may override :meth:`validate` to check ranges
    (raise ``ValueError``). Build them from profile data with :func:`make_check`.
    """

    name: ClassVar[str] = "check"
    #: the parameters that name a lane: lane mapping renames them, the loader checks they exist
    lane_params: ClassVar[tuple[str, ...]] = ()
    #: True for checks that judge durations: a compressed drill's real-time SDK waits distort them
    timed: ClassVar[bool] = False
    #: set per instance by :func:`make_check` from the profile's ``severity:`` / ``requires:``
    severity: str = "error"
    requires: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` for out-of-range parameters."""

    def evaluate(self, journal: Journal) -> CheckResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def describe(self) -> str:
        ps = ", ".join(f"{k}={v}" for k, v in self.params().items() if v is not None)
        return f"{self.name}({ps})"

    def settings(self) -> dict[str, Any]:
        """Parameters plus ``severity``/``requires`` where they differ from the defaults: what a
        journal's ``drill_start`` mark keeps so ``routechaos report`` judges the same way."""
        out = self.params()
        if self.severity != "error":
            out["severity"] = self.severity
        if self.requires:
            out["requires"] = list(self.requires)
        return out

    def result(self, verdict: Verdict, summary: str, evidence: Sequence[Evidence] = ()) -> CheckResult:
        return CheckResult(self.name, verdict, summary, list(evidence), self.params(), self.severity)

    def judge(self, evidence: Sequence[Evidence], summary: str) -> CheckResult:
        """A result whose verdict is the combination of the evidence items."""
        return self.result(combine(evidence), summary, evidence)

    # -- parameter helpers used by validate() --
    def _require(self, ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(f"check {self.name!r}: {message}")

    def _positive(self, *names: str, allow_zero: bool = False) -> None:
        for n in names:
            v = getattr(self, n)
            if v is None:
                continue
            bad = v < 0 if allow_zero else v <= 0
            self._require(not bad, f"parameter {n!r} must be {'>= 0' if allow_zero else '> 0'}, got {v!r}")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in get_args(tp))
    return {float: "a number", int: "an integer", bool: "a boolean", str: "a string"}.get(tp, str(tp))


def _coerce(tp: Any, value: Any) -> Any:
    """``value`` as type ``tp`` or raise ``TypeError``. Ints are accepted for floats, not bools."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value)
            except TypeError:
                continue
        raise TypeError
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise TypeError
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise TypeError
    if tp is str:
        if isinstance(value, str):
            return value
        raise TypeError
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise TypeError


#: what an agent may or may not have, for ``requires:``; each is seen in the journal unless the
#: drill is told (``Drill(..., capabilities={"fallback": False})``, ``--agent-has`` on the CLI)
CAPABILITIES = {
    "fallback": "the agent sends a call to another lane when one fails (seen: some call used two lanes)",
    "tools": "the agent offers tools and runs the tool calls of the answers (seen: some request offered tools)",
}

#: parameters every check takes, besides its own (one declaration: validation, schema, docs)
COMMON_PARAMS: dict[str, tuple[Any, str]] = {
    "severity": (
        Literal["error", "warn"],
        "error (default): the check decides the drill's verdict; warn: reported, never fails the drill",
    ),
    "requires": (
        list,
        "capabilities the check applies to (" + ", ".join(CAPABILITIES) + "): an agent without them is judged "
        "safe instead (every call ended cleanly, none accepted truncated) rather than failed",
    ),
}


def _common(name: str, params: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    severity = params.pop("severity", "error")
    if severity not in ("error", "warn"):
        raise ValueError(f"check {name!r}: parameter 'severity' must be one of 'error', 'warn', got {severity!r}")
    requires = params.pop("requires", ())
    if isinstance(requires, str):
        requires = [requires]
    if not isinstance(requires, list | tuple) or not all(isinstance(r, str) for r in requires):
        raise ValueError(f"check {name!r}: parameter 'requires' must be a list of capabilities, got {requires!r}")
    unknown = [r for r in requires if r not in CAPABILITIES]
    if unknown:
        raise ValueError(
            f"check {name!r}: parameter 'requires' names unknown capabilities {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(CAPABILITIES)})"
        )
    return severity, tuple(requires)


def make_check(name: str, params: Mapping[str, Any] | None = None) -> Check:
    """The check registered as ``name``, built from ``params`` (a profile's mapping), including the
    common ``severity`` and ``requires`` (:data:`COMMON_PARAMS`).

    Raises ``ValueError`` naming an unknown check, an unknown or missing parameter, or a parameter
    of the wrong type or out of range.
    """
    cls = CHECKS.get(name)
    if cls is None:
        raise ValueError(f"unknown check {name!r} (known: {', '.join(sorted(CHECKS))})")
    params = dict(params or {})
    severity, requires = _common(name, params)
    flds = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(flds))
    if unknown:
        raise ValueError(
            f"check {name!r}: unknown parameter(s) {', '.join(map(repr, unknown))} (known: {', '.join(flds) or 'none'})"
        )
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for pname, value in params.items():
        tp = hints[pname]
        try:
            kwargs[pname] = _coerce(tp, value)
        except TypeError:
            raise ValueError(f"check {name!r}: parameter {pname!r} must be {_type_name(tp)}, got {value!r}") from None
    missing = [
        f.name
        for f in flds.values()
        if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"check {name!r}: missing required parameter(s) {', '.join(map(repr, missing))}")
    chk = cls(**kwargs)
    object.__setattr__(chk, "severity", severity)  # frozen dataclass: set once, here
    object.__setattr__(chk, "requires", requires)
    return chk


def make_checks(spec: Any) -> list[Check]:
    """Checks from a profile's ``checks:`` value: a mapping ``{name: params}``, or a list whose
    items are a name, a one-key mapping ``{name: params}``, a mapping with ``check:``/``name:``
    plus parameters, or a :class:`Check` already built."""
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        return [make_check(str(n), p or {}) for n, p in spec.items()]
    out: list[Check] = []
    for item in spec:
        if isinstance(item, Check):
            out.append(item)
        elif isinstance(item, str):
            out.append(make_check(item, {}))
        elif isinstance(item, Mapping):
            key = "check" if "check" in item else "name" if "name" in item else None
            if key is not None:
                out.append(make_check(str(item[key]), {k: v for k, v in item.items() if k != key}))
            elif len(item) == 1:
                ((n, p),) = item.items()
                out.append(make_check(str(n), p or {}))
            else:
                raise ValueError(f"cannot read a check from {dict(item)!r}")
        else:
            raise ValueError(f"cannot read a check from {item!r}")
    return out


# -- evaluating -------------------------------------------------------------------------------


@dataclass
class Report:
    """The results of every check of a drill and their combined verdict.

    Only ``severity: error`` results decide the verdict; ``warnings`` are drill-level facts a
    reader needs (a workload that ended before the profile's last fault window closed, SDK retries
    in a compressed drill) and never change it."""

    results: list[CheckResult]
    verdict: Verdict
    journal: Journal | None = field(default=None, repr=False, compare=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.decides and r.verdict is Verdict.FAIL]

    def unknown(self) -> list[CheckResult]:
        return [r for r in self.results if r.decides and r.verdict is Verdict.UNKNOWN]

    def warned(self) -> list[CheckResult]:
        """``severity: warn`` results that did not pass."""
        return [r for r in self.results if not r.decides and r.verdict is not Verdict.PASS]

    def summary(self) -> str:
        lines = [f"verdict: {self.verdict.value.upper()}"]
        for r in self.results:
            lines.append(f"  {r.label:7} {r.name}: {r.summary}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def render(self, **kw: Any) -> str:
        """The summary, then the rendering of every check that did not pass."""
        parts = [self.summary()]
        parts += [render_failure(r, self.journal, **kw) for r in self.results if r.verdict is not Verdict.PASS]
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.render()

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "results": [r.to_json() for r in self.results],
            "warnings": list(self.warnings),
        }


# -- rendering --------------------------------------------------------------------------------


def _t(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


_COLS = ("t_start", "t_first", "t_end", "lane", "call", "try", "status", "end_reason", "fault", "tokens", "wait", "id")


def render_timeline(
    attempts: Sequence[Attempt], *, max_rows: int = 40, calls: Mapping[str, str] | None = None
) -> str:
    """The attempts as a table in start order: times, lane, call (``calls`` maps attempt ids to
    the call that made them, else the header's call id or the fingerprint), SDK retry count,
    status, end reason, fault, tokens/expected, requested Retry-After, id."""
    rows = [list(_COLS)]
    ordered = sorted(attempts, key=lambda a: (a.t_start, a.id))
    shown = ordered if len(ordered) <= max_rows else ordered[: max_rows - 1]
    for a in shown:
        toks = f"{a.tokens}/{a.expected_tokens}" if a.expected_tokens is not None else str(a.tokens)
        rows.append(
            [
                _t(a.t_start),
                _t(a.t_first_token),
                _t(a.t_end),
                a.lane,
                (calls or {}).get(a.id) or a.call_id or a.fingerprint or "-",
                "-" if a.retry_count is None else str(a.retry_count),
                "-" if a.status is None else str(a.status),
                a.end_reason,
                a.fault_name or "-",
                toks,
                "-" if a.retry_after is None else f"{a.retry_after:g}s",
                a.id,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLS))]
    numeric = {0, 1, 2, 5, 6}
    lines = [
        "  ".join(c.rjust(widths[i]) if i in numeric else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip()
        for r in rows
    ]
    if len(shown) < len(ordered):
        lines.append(f"... {len(ordered) - len(shown)} more attempts")
    return "\n".join(lines)


def _render_call(c: Call) -> str:
    parts = [f"call {c.id}: outcome={c.outcome}", f"t_start={_t(c.t_start)}", f"t_end={_t(c.t_end)}"]
    if c.lane:
        parts.append(f"lane={c.lane}")
    if c.complete is not None:
        parts.append(f"complete={c.complete}")
    if c.error_type or c.error:
        parts.append(f"error={c.error_type or ''}{': ' if c.error_type and c.error else ''}{c.error or ''}")
    return " ".join(parts)


def _render_evidence(e: Evidence) -> str:
    mark = {Verdict.FAIL: "FAIL", Verdict.UNKNOWN: "UNKNOWN", Verdict.PASS: "ok"}[e.verdict]
    bits = [f"[{mark}] {e.what}"]
    ctx = []
    if e.call is not None:
        ctx.append(f"call={e.call}")
    if e.lane is not None:
        ctx.append(f"lane={e.lane}")
    if e.t is not None:
        ctx.append(f"t={e.t:.3f}")
    if e.measured is not None:
        ctx.append(f"measured={e.measured:.3f}" if isinstance(e.measured, float) else f"measured={e.measured}")
    if e.bound is not None:
        ctx.append(f"bound={e.bound:.3f}" if isinstance(e.bound, float) else f"bound={e.bound}")
    if ctx:
        bits.append("(" + ", ".join(ctx) + ")")
    return " ".join(bits)


def render_failure(
    result: CheckResult, journal: Journal | None = None, *, max_items: int = 8, max_rows: int = 40
) -> str:
    """A failed (or unknown) result as text for a pytest assertion message: the verdict and
    summary, then each problem with the timeline of the attempts (and the call record) involved."""
    ps = ", ".join(f"{k}={v}" for k, v in result.params.items() if v is not None)
    lines = [f"{result.name}({ps}): {result.verdict.value.upper()} - {result.summary}"]
    problems = result.problems() or (result.evidence if result.verdict is not Verdict.PASS else [])
    by_id = {a.id: a for a in journal.attempts()} if journal is not None else {}
    calls = {c.id: c for c in journal.calls()} if journal is not None else {}
    owner: dict[str, str] = {}
    if journal is not None:
        owner = attribution_of(journal).call_of
    for e in problems[:max_items]:
        lines.append("  " + _render_evidence(e))
        if e.call is not None and e.call in calls:
            lines.append("    " + _render_call(calls[e.call]))
        atts = [by_id[i] for i in e.attempts if i in by_id]
        if atts:
            lines += ["    " + ln for ln in render_timeline(atts, max_rows=max_rows, calls=owner).splitlines()]
        elif e.attempts:
            lines.append("    attempts: " + ", ".join(e.attempts))
    if len(problems) > max_items:
        lines.append(f"  ... {len(problems) - max_items} more")
    return "\n".join(lines)
