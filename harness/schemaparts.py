"""The parts of the profile's JSON Schema, each generated from the declaration the loader reads.

A lane's keys, the simulator's rules, each fault's dataclass fields (type, ``choices``, ``doc``
metadata, defaults), the toxic classes, the checks and the workload: one typed declaration per
concept gives the loader its validation, the schema its part and the docs their text, so they
cannot drift apart. :mod:`harness.schema` puts the parts together and writes the file; kept apart
from it so that each stays short enough to read.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from .billing import prices_json_schema
from .capabilities import capabilities_json_schema
from .dialects import DIALECT_NAMES
from .profile import (
    FAULT_RESERVED,
    LANE_CAPS,
    LANE_KEYS,
    SIM_RULES,
    TOXIC_KEYS,
    TOXIC_TYPES,
    capacity_error_kinds,
    toxic_attributes,
)
from .replayspec import RECORD_SCHEMA, REPLAY_SCHEMA
from .simulator import SimSettings

__all__ = [
    "SCHEDULE_KEYS",
    "check_schema",
    "fault_defs",
    "lane_schema",
    "schedule_schema",
    "simulator_schema",
    "toxic_schema",
    "workload_schema",
]

#: the schedule keys this schema describes; a test holds them equal to ``harness.schedule._KEYS``
SCHEDULE_KEYS = (
    "always",
    "never",
    "nth",
    "first",
    "after",
    "window",
    "every",
    "for",
    "offset",
    "probability",
    "per_call",
    "calls",
    "sequence",
    "repeat",
    "header",
    "max",
    "match",
)


# -- Python types to JSON Schema ---------------------------------------------------------------
def _type_schema(hint: Any, *, lenient_str: bool = False) -> dict[str, Any]:
    """A JSON Schema for a dataclass field's type hint. ``lenient_str``: the fault loader turns
    numbers into strings for ``str`` attributes (``retry_after_raw: 300``), so allow them."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return {}
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        alts = [_type_schema(a, lenient_str=lenient_str) for a in inner]
        if type(None) in args:
            alts.append({"type": "null"})
        return alts[0] if len(alts) == 1 else {"anyOf": alts}
    if origin is Literal:
        return {"enum": list(args)}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": "number"}
    if hint is str:
        return {"type": ["string", "number"]} if lenient_str else {"type": "string"}
    if hint is dict or origin is dict:
        return {"type": "object"}
    if hint is list or origin is list or origin is tuple:
        return {"type": "array"}
    return {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return getattr(value, "value", str(value))


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    para = doc.strip().split("\n\n")[0]
    return " ".join(line.strip() for line in para.splitlines())


def _field_schema(f: dataclasses.Field[Any], hint: Any, *, lenient_str: bool = False) -> dict[str, Any]:
    """One attribute: its type, allowed values, description (``doc`` metadata) and default."""
    s = _type_schema(hint, lenient_str=lenient_str)
    choices = f.metadata.get("choices")
    if choices:
        enum = {"enum": list(choices)}
        if "anyOf" in s:
            s = {"anyOf": [enum if alt.get("type") in ("string", ["string", "number"]) else alt for alt in s["anyOf"]]}
        else:
            s = enum
    doc = str(f.metadata.get("doc") or "")
    if f.metadata.get("seconds"):
        doc = f"{doc} (seconds; scaled by time_scale)" if doc else "seconds; scaled by time_scale"
    if doc:
        s["description"] = doc
    if f.default is not dataclasses.MISSING:
        s["default"] = _jsonable(f.default)
    return s


# -- parts -------------------------------------------------------------------------------------
def simulator_schema() -> dict[str, Any]:
    hints = typing.get_type_hints(SimSettings)
    props: dict[str, Any] = {}
    defaults = SimSettings()
    for name, rule in SIM_RULES.items():
        if name == "capacity_error":
            s: dict[str, Any] = {"enum": capacity_error_kinds()}
        else:
            s = _type_schema(hints[name])
            if rule.minimum is not None:
                key = "exclusiveMinimum" if rule.exclusive else "minimum"
                if "anyOf" in s:
                    s["anyOf"] = [
                        {**alt, key: rule.minimum} if alt.get("type") != "null" else alt for alt in s["anyOf"]
                    ]
                else:
                    s[key] = rule.minimum
        s["description"] = rule.doc
        s["default"] = _jsonable(getattr(defaults, name))
        props[name] = s
    return {
        "type": "object",
        "description": "The built-in provider's behaviour (the lane's upstream when no upstream: is given).",
        "properties": props,
        "additionalProperties": False,
    }


def lane_schema() -> dict[str, Any]:
    props = {
        "dialect": {"enum": list(DIALECT_NAMES), "description": "the provider wire format this lane speaks"},
        "host": {"type": "string", "minLength": 1, "default": "127.0.0.1"},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535, "default": 0, "description": "0 picks a free one"},
        "simulator": {"$ref": "#/$defs/simulator"},
        "upstream": {"type": "string", "pattern": "^https?://[^/]+", "description": "a real provider's base URL"},
        "read_timeout": {
            "anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}],
            "default": 600.0,
            "description": "seconds the lane waits on its upstream",
        },
        **{
            key: {
                "type": "integer",
                "minimum": 1024,
                "maximum": 2**40,
                "default": default,
                "description": f"bytes a real upstream may send in {what} before the attempt ends as upstream_error",
            }
            for (key, default), what in zip(LANE_CAPS.items(), ("one SSE event", "one response"), strict=True)
        },
        "replicas": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1024,
            "default": 1,
            "description": "processes (Ray actors) serving this lane in a --ray drill; their faults decide as one lane",
        },
        "description": {"type": "string"},
        "capabilities": capabilities_json_schema(),
        "prices": prices_json_schema(),
        "record": RECORD_SCHEMA,
        "replay": REPLAY_SCHEMA,
    }
    assert set(props) == LANE_KEYS, "lane keys of the schema and the loader differ"
    return {
        "type": "object",
        "description": "One named route: a listen address, a dialect and an upstream (or the simulator).",
        "properties": props,
        "additionalProperties": False,
        "not": {"required": ["upstream", "simulator"]},
    }


def schedule_schema() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    fraction = {"type": "number", "minimum": 0, "maximum": 1}
    props: dict[str, Any] = {
        "always": {"type": "boolean"},
        "never": {"type": "boolean"},
        "nth": {
            "description": "those attempts on the lane (1-based)",
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
            ],
        },
        "first": {**count, "description": "the first N attempts, then heal"},
        "after": {**count, "description": "every attempt after the first N"},
        "window": {
            "description": "drill time [from, to) in seconds; to may be null or inf",
            "type": "array",
            "prefixItems": [{"type": "number", "minimum": 0}, {"anyOf": [{"type": "number"}, {"enum": [None, "inf"]}]}],
            "minItems": 2,
            "maxItems": 2,
        },
        "every": {"type": "number", "minimum": 0.001, "description": "flapping period in seconds (needs for:)"},
        "for": {"type": "number", "minimum": 0, "description": "seconds down in each every: period"},
        "offset": {"type": "number", "minimum": 0, "description": "seconds before the first period"},
        "probability": {**fraction, "description": "one seeded draw per attempt"},
        "per_call": {"type": "integer", "minimum": 1, "description": "the first N attempts of every call fail"},
        "calls": {**fraction, "description": "the fraction of calls per_call: applies to"},
        "sequence": {
            "type": "array",
            "minItems": 1,
            "items": {"enum": ["fail", "ok", True, False, 0, 1]},
            "description": "fail/ok per attempt, cycling unless repeat: false",
        },
        "repeat": {"type": "boolean"},
        "header": {"type": "boolean", "description": "only when the request names the fault in x-routechaos-fault"},
        "max": count,
        "match": _match_schema(),
    }
    assert tuple(props) == SCHEDULE_KEYS
    return {
        "description": "When a fault applies. Several keys in one mapping must all hold.",
        "anyOf": [
            {"enum": ["always", "never", "header", "on_header", True, False, None]},
            {
                "type": "object",
                "minProperties": 1,
                "properties": props,
                "additionalProperties": False,
                "dependentRequired": {"every": ["for"], "for": ["every"], "calls": ["per_call"]},
            },
        ],
    }


def _match_schema() -> dict[str, Any]:
    from .schedule import RequestMatch

    hints = typing.get_type_hints(RequestMatch)
    props: dict[str, Any] = {}
    for f in dataclasses.fields(RequestMatch):
        inner = next(a for a in typing.get_args(hints[f.name]) if a is not type(None))  # absent means "any"
        props[f.name] = {k: v for k, v in _field_schema(f, inner).items() if k != "default"}
        if inner is str:
            props[f.name]["minLength"] = 1
    return {
        "type": "object",
        "description": _first_paragraph(RequestMatch.__doc__),
        "minProperties": 1,
        "properties": props,
        "additionalProperties": False,
    }


def fault_defs() -> dict[str, Any]:
    from .faults.base import FAULTS, fault_names, profile_key

    names = fault_names()
    defs: dict[str, Any] = {}
    for name in names:
        cls = FAULTS[name]
        hints = typing.get_type_hints(cls)
        props: dict[str, Any] = {
            "fault": {"const": name},
            "lane": {"type": "string", "description": 'a lane name, or "*" for every lane', "default": "*"},
            "schedule": {"$ref": "#/$defs/schedule"},
            "name": {"type": "string"},
            "description": {"type": "string"},
        }
        assert set(props) == FAULT_RESERVED
        for f in dataclasses.fields(cls):
            props[profile_key(f)] = _field_schema(f, hints[f.name], lenient_str=True)
        d: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        doc = _first_paragraph(cls.__doc__)
        if doc:
            d["description"] = doc
        defs[f"fault.{name}"] = d
    fault = {
        "type": "object",
        "description": "One fault on one lane, when its schedule says; the other keys are the fault's attributes.",
        "required": ["fault"],
        "properties": {"fault": {"enum": names}},
        "allOf": [
            {
                "if": {"properties": {"fault": {"const": n}}, "required": ["fault"]},
                "then": {"$ref": f"#/$defs/fault.{n}"},
            }
            for n in names
        ],
    }
    return {"fault": fault, **defs}


def toxic_schema() -> dict[str, Any]:
    branches = []
    for ttype in TOXIC_TYPES:
        attrs = toxic_attributes(ttype)
        props = {
            k: {"type": "integer", "minimum": 0, **({"description": unit} if unit else {})} for k, unit in attrs.items()
        }
        branches.append(
            {
                "if": {"properties": {"type": {"const": ttype}}, "required": ["type"]},
                "then": {
                    "properties": {"attributes": {"type": "object", "properties": props, "additionalProperties": False}}
                },
            }
        )
    props = {
        "lane": {"type": "string"},
        "type": {"enum": list(TOXIC_TYPES)},
        "name": {"type": "string", "description": "default: <type>_<stream>"},
        "stream": {"enum": ["upstream", "downstream"], "default": "downstream"},
        "toxicity": {"type": "number", "minimum": 0, "maximum": 1, "default": 1.0},
        "attributes": {"type": "object"},
        "schedule": {"$ref": "#/$defs/schedule"},
    }
    assert set(props) == TOXIC_KEYS
    return {
        "type": "object",
        "description": "A Toxiproxy toxic (L4) in front of a lane.",
        "required": ["lane", "type"],
        "properties": props,
        "additionalProperties": False,
        "allOf": branches,
    }


def check_schema() -> dict[str, Any]:
    from .checks import CHECKS

    names = sorted(CHECKS)
    forms: list[dict[str, Any]] = [{"enum": [n for n in names if not _required_params(CHECKS[n])]}]
    for name in names:
        cls = CHECKS[name]
        hints = typing.get_type_hints(cls)
        params = {f.name: _field_schema(f, hints[f.name]) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        params.update(_common_check_params())
        body: dict[str, Any] = {"type": "object", "properties": params, "additionalProperties": False}
        required = _required_params(cls)
        if required:
            body["required"] = required
        value = body if required else {"anyOf": [body, {"type": "null"}]}
        doc = _first_paragraph(cls.__doc__)
        if doc:
            value["description"] = doc
        forms.append(
            {
                "type": "object",
                "properties": {name: value},
                "required": [name],
                "additionalProperties": False,
            }
        )
    return {"description": "An oracle over the journal: a name, or {name: parameters}.", "anyOf": forms}


def workload_schema() -> dict[str, Any]:
    from .workload import Workload

    props: dict[str, Any] = {}
    for f in dataclasses.fields(Workload):
        if f.name == "over":
            props[f.name] = {"type": ["number", "null"], "exclusiveMinimum": 0}
        else:
            props[f.name] = {"type": "integer", "minimum": f.metadata.get("min", 1), "default": f.default}
        props[f.name]["description"] = f.metadata["doc"]
    return {
        "type": "object",
        "description": _first_paragraph(Workload.__doc__) or "",
        "properties": props,
        "additionalProperties": False,
    }


def _common_check_params() -> dict[str, Any]:
    """``severity`` and ``requires``, which every check takes (declared in ``checks.base``)."""
    from .checks.base import CAPABILITIES, COMMON_PARAMS

    return {
        "severity": {"enum": ["error", "warn"], "default": "error", "description": COMMON_PARAMS["severity"][1]},
        "requires": {
            "type": "array",
            "items": {"enum": sorted(CAPABILITIES)},
            "description": COMMON_PARAMS["requires"][1],
        },
    }


def _required_params(cls: Any) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
