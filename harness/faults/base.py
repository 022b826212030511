"""What a fault is: a small dataclass with typed attributes and one behaviour, registered by name.

Like Toxiproxy's toxics (a struct, its JSON attributes, one ``Pipe`` method, one ``Register``
line), each fault here is one class: its fields are the attributes a profile may set, with
defaults, and it overrides the :class:`~harness.proxy.hooks.Intervention` hook it needs
(``before`` to answer or drop, ``after_headers`` to delay, ``transform`` to act on the stream).

Attributes that are durations in seconds are declared with :func:`seconds` so the drill's time
scale compresses them (and the ``Retry-After`` a fault advertises) along with everything else.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from ..proxy.hooks import AttemptContext, Intervention
from ..suggest import did_you_mean

__all__ = ["FAULTS", "Fault", "FaultAttrError", "fault_names", "make_fault", "register", "seconds"]

FAULTS: dict[str, type[Fault]] = {}

F = TypeVar("F", bound="type[Fault]")


class FaultAttrError(ValueError):
    """A bad fault attribute; ``field`` names it for the profile's file:line:field error."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def seconds(default: float | None, doc: str = "") -> Any:
    """A duration attribute: scaled by the drill's ``time_scale``."""
    return dataclasses.field(default=default, metadata={"seconds": True, "doc": doc})


def attr(default: Any, doc: str = "", choices: tuple[str, ...] | None = None, key: str | None = None) -> Any:
    """An attribute with a description (and allowed values), used by validation and the schema;
    ``key`` is its name in profiles when that is no Python name (``in``)."""
    meta: dict[str, Any] = {"doc": doc}
    if choices:
        meta["choices"] = choices
    if key:
        meta["key"] = key
    return dataclasses.field(default=default, metadata=meta)


def profile_key(f: dataclasses.Field[Any]) -> str:
    """The name a profile gives a fault attribute."""
    return f.metadata.get("key", f.name)


def register(name: str) -> Callable[[F], F]:
    """Class decorator: make the fault available in profiles under ``name``."""

    def deco(cls: F) -> F:
        if name in FAULTS:
            raise ValueError(f"fault {name!r} registered twice")
        cls.name = name
        FAULTS[name] = cls
        return cls

    return deco


@dataclasses.dataclass
class Fault(Intervention):
    """Base of every fault: its dataclass fields are its profile attributes; durations declared
    with :func:`seconds` become real seconds through :meth:`s` (the attempt's time scale)."""

    name: ClassVar[str] = "fault"
    #: lane-level faults act on the listener over time (refuse), not on one attempt
    lane_level: ClassVar[bool] = False

    def s(self, ctx: AttemptContext | None, value: float | None) -> float:
        """A duration attribute in real seconds for this drill."""
        if value is None:
            return 0.0
        return value * (ctx.time_scale if ctx is not None else 1.0)

    def attrs(self) -> dict[str, Any]:
        return {profile_key(f): getattr(self, f.name) for f in dataclasses.fields(self)}

    def describe(self) -> dict[str, Any]:
        d = {"name": self.name}
        d.update({k: v for k, v in self.attrs().items() if v is not None})
        return d

    def select(self, ctx: AttemptContext, scheduled: bool) -> Intervention | None:
        """The intervention for this attempt. Plain faults apply exactly when scheduled; stateful
        ones (rate limiters, concurrency caps) may answer even when not, or decline when they are."""
        return self if scheduled else None


def fault_names() -> list[str]:
    return sorted(FAULTS)


def make_fault(name: str, attrs: dict[str, Any] | None = None) -> Fault:
    """Build a fault from its profile name and attributes, validating every attribute."""
    cls = FAULTS.get(name)
    if cls is None:
        guess = did_you_mean(name, FAULTS)
        known = guess or "known faults: " + ", ".join(sorted(FAULTS))
        raise FaultAttrError(f"unknown fault {name!r}; {known}", "fault")
    attrs = dict(attrs or {})
    fields = {profile_key(f): f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for key, value in attrs.items():
        f = fields.get(key)
        if f is None:
            known = ", ".join(sorted(fields)) or "none"
            guess = did_you_mean(key, fields)
            hint = f"{guess} " if guess else ""
            raise FaultAttrError(f"unknown attribute for fault {name!r}; {hint}its attributes: {known}", key)
        kwargs[f.name] = _coerce(key, value, hints[f.name], f.metadata.get("choices"))
    try:
        fault = cls(**kwargs)
    except TypeError as exc:
        raise FaultAttrError(str(exc)) from None
    check = getattr(fault, "validate", None)
    if check is not None:
        check()
    return fault


def _coerce(key: str, value: Any, hint: Any, choices: tuple[str, ...] | None) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return _coerce(key, value, a, choices)
            except FaultAttrError as exc:
                errors.append(str(exc))
        raise FaultAttrError(errors[0] if errors else f"invalid value {value!r}", key)
    if hint is bool:
        if not isinstance(value, bool):
            raise FaultAttrError(f"must be true or false (got {value!r})", key)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FaultAttrError(f"must be an integer (got {value!r})", key)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise FaultAttrError(f"must be a number (got {value!r})", key)
        return float(value)
    if hint is str:
        # a number is taken as its text (retry_after_raw: 300), but not .nan or .inf: no header
        # or message means "nan", and a non-finite number is refused wherever one is read
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise FaultAttrError(f"must be a string (got {value!r})", key)
        if isinstance(value, float) and not math.isfinite(value):
            raise FaultAttrError(f"must be a string; {value!r} is not a number a profile can hold", key)
        value = str(value)
        if choices and value not in choices:
            raise FaultAttrError(f"must be one of {', '.join(choices)} (got {value!r})", key)
        return value
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise FaultAttrError(f"must be a mapping (got {value!r})", key)
        return value
    if origin is list or hint is list:
        if not isinstance(value, list):
            raise FaultAttrError(f"must be a list (got {value!r})", key)
        return value
    return value
