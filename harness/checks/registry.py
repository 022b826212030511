"""The check registry and the base class, and checks built from profile data.

Checks are registered by the name profiles use; each is a frozen dataclass whose fields are its
typed parameters, and :func:`make_check` coerces a profile's values to those types (one
declaration gives validation, the JSON Schema and the docs, :data:`COMMON_PARAMS` too). Kept apart
from the results (:mod:`harness.checks.result`) and the report (:mod:`harness.checks.base`).
Import its names from :mod:`harness.checks` (or :mod:`harness.checks.base`).
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from ..journal import Journal
from .result import CheckResult, Evidence, Verdict, combine

__all__ = ["CAPABILITIES", "CHECKS", "COMMON_PARAMS", "Check", "make_check", "make_checks", "register"]


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
