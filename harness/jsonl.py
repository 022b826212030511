"""Strict JSON for the journal: lines any JSON tool reads, and records read back field by field.

Python's ``json.dumps`` writes ``Infinity`` and ``NaN`` bare, which is not JSON: ``jq`` and a
browser's ``JSON.parse`` refuse the whole file. Here a non-finite number is written as the string
``"Infinity"``, ``"-Infinity"`` or ``"NaN"`` (the convention of protobuf's JSON mapping), and a
field declared ``float`` reads such a string back as the number, so a journal judged again from its
file gives the verdict the live drill gave.

Reading is typed: :func:`record_from_json` builds a record dataclass from a JSON object and checks
every field against its annotation, so a line like ``{"type": "attempt"}`` (no id) or a string
where a time belongs is a :class:`FieldError` that names the field, never a ``TypeError`` deep in
a check. Unknown keys are ignored: a newer routechaos may add fields, and an older one still reads
its journals.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["NON_FINITE", "FieldError", "brief", "dumps", "record_from_json"]

#: how a non-finite number is written, and read back in a ``float`` field
NON_FINITE: dict[str, float] = {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}

R = TypeVar("R")


def dumps(obj: Any, **kw: Any) -> str:
    """``json.dumps`` that never writes a bare ``Infinity``/``NaN`` (objects it cannot encode are
    written as their ``str``). The usual case costs one C-encoder pass; only a value that holds a
    non-finite number is walked and encoded again."""
    try:
        return json.dumps(obj, default=str, allow_nan=False, **kw)
    except ValueError:
        return json.dumps(_finite(obj), default=str, allow_nan=False, **kw)


def _non_finite_name(x: float) -> str:
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else _non_finite_name(obj)
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _finite({f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    return obj


class FieldError(ValueError):
    """A JSON object does not fit the record it claims to be: ``field`` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def record_from_json(cls: type[R], obj: Mapping[str, Any], choices: Mapping[str, type[enum.Enum]] | None = None) -> R:
    """``cls(**obj)`` for a dataclass ``cls``, with every field checked against its annotation.

    Required fields must be present; a field in ``choices`` must hold one of that enum's values.
    Raises :class:`FieldError` naming the first field that does not fit."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name not in obj:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise FieldError(f.name, "missing (a required field)")
            continue
        value = _fit(obj[f.name], hints[f.name], f.name)
        enum_type = (choices or {}).get(f.name)
        if enum_type is not None and value not in {e.value for e in enum_type}:
            allowed = ", ".join(str(e.value) for e in enum_type)
            raise FieldError(f.name, f"{brief(value)} is not one of {allowed}")
        kwargs[f.name] = value
    return cls(**kwargs)


_SCALARS: dict[type, str] = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in typing.get_args(tp))
    if origin in (dict, Mapping) or tp is dict:
        return "an object"
    if origin is list or tp is list:
        return "a list"
    return _SCALARS.get(tp, getattr(tp, "__name__", str(tp)))


def _fit(value: Any, tp: Any, name: str) -> Any:
    """``value`` if it has type ``tp`` (a non-finite string becomes the float), else FieldError."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            if arm is type(None):
                if value is None:
                    return None
                continue
            try:
                return _fit(value, arm, name)
            except FieldError:
                pass
        raise FieldError(name, f"{brief(value)} is not {_describe(tp)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value in NON_FINITE:
            return NON_FINITE[value]
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp in (str, bool):
        if isinstance(value, tp):
            return value
    elif origin in (dict, Mapping) or tp is dict:  # a Mapping field is read as the object it was written as
        if isinstance(value, dict):
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] in _SCALARS:
                for k, v in value.items():
                    _fit(v, args[1], f"{name}.{k}")
            return value
    elif origin is list or tp is list:
        if isinstance(value, list):
            return value
    else:
        return value  # a type this reader does not check (none today): taken as written
    raise FieldError(name, f"{brief(value)} is not {_describe(tp)}")


def brief(value: Any) -> str:
    """A value as JSON, cut to 40 characters: for messages that quote what they refuse."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."
