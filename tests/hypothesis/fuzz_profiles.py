"""Fuzz targets over profiles: YAML text (and the bytes of a file), and profile data built in code.

The property, for any input: loading returns a :class:`Profile`, or raises :class:`ProfileError`
naming the file and, for every error it holds, the line (data built in code has no lines: there,
the field); the errors come in line order. A profile that loads holds no non-finite number but
where one means "open-ended" (a schedule window's end).

The inputs start near a real profile (lanes, faults and toxics drawn from the registries, so most
examples reach deep validation) and are then bent: a value swapped for an awkward one (``.nan``, a
huge integer, a list where a name goes, a deep list), text mutations (a control character, an
alias, a truncation, a tag), or bytes that are not UTF-8.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from harness.dialects import DIALECT_NAMES
from harness.profile import TOXIC_TYPES, Profile, ProfileError, load_profile, load_profile_text, profile_from_dict

FILE = "fuzz.yaml"


def _fault_fields() -> dict[str, list[tuple[str, Any]]]:
    from harness.faults.base import FAULTS, fault_names, profile_key

    out = {}
    for name in fault_names():
        hints = typing.get_type_hints(FAULTS[name])
        out[name] = [(profile_key(f), hints[f.name]) for f in dataclasses.fields(FAULTS[name])]
    return out


FAULT_FIELDS = _fault_fields()
CHECK_NAMES = sorted(__import__("harness.checks", fromlist=["CHECKS"]).CHECKS)
LANE_NAMES = ["primary", "stable"]

# -- values -------------------------------------------------------------------------------------
awkward_numbers = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0, -1, 2**63, 10**30, -(10**400), 1e308, 5e-324, 0.5]),
    st.integers(-10, 10**6),
    st.floats(),
)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, else ``bad``: most examples must reach deep validation."""
    return st.one_of(good, good, good, bad)


awkward_scalars = st.one_of(
    awkward_numbers,
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["*", "", "always", "inf", "primary", "nan", "\x00", "\ud800", "a/b", "ok"]),
)
json_like = st.recursive(
    awkward_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=8,
)


def deep(depth: int) -> Any:
    v: Any = []
    for _ in range(depth):
        v = [v]
    return v


def _value_for(hint: Any) -> st.SearchStrategy[Any]:
    """A mostly valid value of a fault attribute's type, sometimes an awkward one."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = args[0]
    good: st.SearchStrategy[Any]
    if base is bool:
        good = st.booleans()
    elif base is int:
        good = st.integers(min_value=0, max_value=600)
    elif base is float:
        good = st.floats(min_value=0, max_value=30)
    elif base is str:
        good = st.sampled_from(["header", "ms", "server_error", "tokens", "arguments", "text", "x"])
    else:
        good = json_like
    return mostly(good, st.one_of(awkward_scalars, json_like))


schedules = st.one_of(
    st.sampled_from(["always", "never", "header", None, True]),
    st.fixed_dictionaries(
        {},
        optional={
            "first": awkward_numbers,
            "nth": st.one_of(st.integers(1, 5), st.lists(st.integers(1, 5), max_size=3), awkward_numbers),
            "window": st.lists(st.one_of(st.floats(0, 20), awkward_scalars), min_size=0, max_size=3),
            "every": awkward_numbers,
            "for": awkward_numbers,
            "probability": st.one_of(st.floats(0, 1), awkward_numbers),
            "sequence": st.lists(st.sampled_from(["fail", "ok", 0, 1, True, "maybe", 2]), max_size=4),
            "match": st.one_of(
                st.fixed_dictionaries({}, optional={"model": awkward_scalars, "contains": awkward_scalars}), json_like
            ),
            "max": awkward_numbers,
        },
    ),
    json_like,
)


@st.composite
def faults(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(FAULT_FIELDS)))
    out: dict[str, Any] = {"fault": name, "lane": draw(st.sampled_from(["*", *LANE_NAMES, "nowhere"]))}
    for key, hint in draw(
        st.lists(st.sampled_from(FAULT_FIELDS[name] or [("status", int)]), max_size=3, unique_by=lambda kv: kv[0])
    ):
        out[key] = draw(_value_for(hint))
    if draw(st.booleans()):
        out["schedule"] = draw(schedules)
    return out


toxic_attrs = st.dictionaries(
    st.sampled_from(["latency", "jitter", "rate", "delay", "bytes", "timeout", "average_size", "size_variation", "x"]),
    mostly(st.integers(0, 5000), awkward_numbers),
    max_size=3,
)
toxics = st.fixed_dictionaries(
    {
        "lane": mostly(st.sampled_from(LANE_NAMES), awkward_scalars),
        "type": st.sampled_from([*TOXIC_TYPES, "noop", "x"]),
    },
    optional={
        "attributes": st.one_of(toxic_attrs, json_like),
        "toxicity": st.one_of(st.floats(0, 1), awkward_numbers),
        "stream": st.sampled_from(["upstream", "downstream", "sideways"]),
        "schedule": schedules,
        "name": awkward_scalars,
    },
)
checks = st.one_of(
    st.sampled_from([*CHECK_NAMES, "no_such_check"]),
    st.dictionaries(
        st.sampled_from(CHECK_NAMES),
        st.one_of(
            st.none(),
            st.dictionaries(
                st.sampled_from(
                    ["within", "max_attempts_per_call", "severity", "requires", "primary", "fallback", "total_p95", "x"]
                ),
                awkward_scalars,
                max_size=2,
            ),
        ),
        min_size=1,
        max_size=1,
    ),
)
simulators = st.dictionaries(
    st.sampled_from(["tokens_per_second", "ttft", "slots", "queue", "answer_tokens", "capacity_error", "x"]),
    mostly(st.one_of(st.integers(1, 100), st.floats(0, 100)), awkward_scalars),
    max_size=3,
)
lanes = st.dictionaries(
    st.sampled_from(LANE_NAMES),
    st.fixed_dictionaries(
        {"dialect": mostly(st.sampled_from(DIALECT_NAMES), awkward_scalars)},
        optional={
            "simulator": st.one_of(simulators, json_like),
            "port": mostly(st.just(0), awkward_numbers),
            "upstream": st.sampled_from(["http://127.0.0.1:9", "http://[::1", "ftp://x", "http://h:port", "https://"]),
            "read_timeout": mostly(st.floats(1, 100), awkward_numbers),
            "max_event_bytes": mostly(st.integers(1024, 2**20), awkward_numbers),
            "replicas": mostly(st.integers(1, 4), awkward_numbers),
        },
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def profile_data(draw: st.DrawFn) -> dict[str, Any]:
    """A near-valid profile as data, with one to three values replaced by awkward ones."""
    data: dict[str, Any] = {"name": "fuzz", "lanes": draw(lanes)}
    data["faults"] = draw(st.lists(faults(), max_size=3))
    data.update(
        draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "toxics": st.lists(toxics, max_size=2),
                    "checks": st.lists(checks, max_size=2),
                    "seed": mostly(st.integers(0, 100), awkward_numbers),
                    "time_scale": st.one_of(st.floats(0.01, 2), awkward_numbers),
                    "workload": st.one_of(
                        st.fixed_dictionaries(
                            {},
                            optional={
                                "calls": awkward_numbers,
                                "over": awkward_numbers,
                                "concurrency": awkward_numbers,
                            },
                        ),
                        json_like,
                    ),
                    "description": awkward_scalars,
                },
            )
        )
    )
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        _replace_somewhere(draw, data)
    return data


def _replace_somewhere(draw: st.DrawFn, data: Any) -> None:
    """Swap one value at a drawn path for an awkward one (or a deep list)."""
    node = data
    for _ in range(draw(st.integers(0, 4))):
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            break
        k = draw(st.sampled_from(keys))
        if not isinstance(node[k], dict | list):
            break
        node = node[k]
    if isinstance(node, dict) and node:
        k = draw(st.sampled_from(list(node)))
    elif isinstance(node, list) and node:
        k = draw(st.integers(0, len(node) - 1))
    else:
        return
    node[k] = draw(st.one_of(awkward_scalars, json_like, st.builds(deep, st.integers(60, 200))))


# -- structures: Python data ------------------------------------------------------------------
python_oddities = st.sampled_from([{1, 2}, b"bytes", object(), (1, 2), 1 + 2j, range(3), {1: "a"}, {("t",): 1}])


@st.composite
def profile_structures(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(profile_data())
    if draw(st.integers(0, 3)) == 0:  # what YAML cannot write but Python code can
        node: Any = data
        path = draw(st.lists(st.sampled_from(["lanes", "faults", "primary", 0, "simulator", "schedule"]), max_size=3))
        for p in path:
            if isinstance(node, dict) and p in node and isinstance(node[p], dict | list):
                node = node[p]
            elif isinstance(node, list) and isinstance(p, int) and node and isinstance(node[0], dict | list):
                node = node[0]
        if isinstance(node, dict):
            node[draw(st.sampled_from(["fault", "dialect", "seed", "x", "lane"]))] = draw(python_oddities)
        elif isinstance(node, list):
            node.append(draw(python_oddities))
    return data


# -- YAML text ----------------------------------------------------------------------------------
CONTROL = [chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), 127)] + [
    "\x85",
    "\u2028",
    "\ufeff",
    "\ud800",
    "\uffff",
]
SNIPPETS = [
    "&x [*x]",
    "*x",
    "&a {b: *a}",
    "!!python/object:os.system x",
    "!!binary aGk=",
    "!!set {a}",
    "!!omap [a: 1]",
    "<<: *a",
    "? [a]\n: 1",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "\t",
    "[" * 300,
    "{" * 70 + "}" * 70,
    "- " * 100 + "x",
    "9" * 5000,
    ".inf",
    "-.inf",
    ".nan",
    "1e999",
    "0x1F",
    "0o17",
    "2001-12-14",
    "~",
    "'",
    '"',
    "|",
    ">",
    "#",
    ": ",
    "- ",
    "&anchor",
    "!local",
    "\n  ",
    "a: &y 1\nb: *y",
    '"\\ud800"',
    '"\\x01"',
]


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    """YAML text: a near-valid profile dumped, then bent by a few text mutations."""
    if draw(st.integers(0, 9)) == 0:  # sometimes no profile at all: YAML-ish noise
        return draw(st.text(alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#\n ,?%@`ab01.~") + CONTROL[:4]), max_size=80))
    text = yaml.safe_dump(
        draw(profile_data()),
        sort_keys=False,
        default_flow_style=draw(st.sampled_from([False, None, True])),
        allow_unicode=True,
    )
    for _ in range(draw(st.integers(0, 3))):
        pos = draw(st.integers(0, len(text)))
        kind = draw(st.integers(0, 4))
        if kind == 0:
            text = text[:pos] + draw(st.sampled_from(CONTROL)) + text[pos:]
        elif kind == 1:
            text = text[:pos] + draw(st.sampled_from(SNIPPETS)) + text[pos:]
        elif kind == 2:
            text = text[:pos]
        elif kind == 3:
            lines = text.splitlines(keepends=True)
            if lines:
                i = draw(st.integers(0, len(lines) - 1))
                lines.insert(i, lines[i])  # a duplicated line: duplicate keys, repeated items
                text = "".join(lines)
        else:
            text = text[:pos] + draw(st.text(max_size=4)) + text[pos:]
    return text


@st.composite
def yaml_files(draw: st.DrawFn) -> bytes:
    """The bytes of a profile file: UTF-8 text, sometimes with bytes that are not UTF-8 in it."""
    data = draw(yaml_texts()).encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        pos = draw(st.integers(0, len(data)))
        data = (
            data[:pos]
            + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\xed\xa0\x80", b"\xff\xfe", b"\x80\x80"]))
            + data[pos:]
        )
    return data


# -- the properties ---------------------------------------------------------------------------
def _assert_located(err: ProfileError, file: str, *, lines: bool) -> None:
    assert err.errors, "a ProfileError holds at least itself"
    for e in err.errors:
        assert e.file == file, (e.file, str(e))
        if lines:
            assert isinstance(e.line, int) and e.line >= 1, f"no line: {e}"
        else:
            assert e.field or "a profile is a mapping" in e.message, f"no field: {e}"
        assert e.message and "Traceback" not in e.message
    if lines:
        order = [e.line for e in err.errors]
        assert order == sorted(order), f"errors out of line order: {order}"


def _assert_finite(profile: Profile) -> None:
    """No non-finite number reached the built profile, except a window's open end."""
    stack: list[tuple[Any, str]] = [(profile.time_scale, "time_scale")]
    for name, lane in profile.lanes.items():
        stack.append((dataclasses.asdict(lane), f"lanes.{name}"))
    for i, f in enumerate(profile.faults):
        stack += [(f.attrs, f"faults[{i}]"), (f.schedule, f"faults[{i}].schedule")]
    for i, t in enumerate(profile.toxics):
        stack += [
            (t.attributes, f"toxics[{i}].attributes"),
            (t.toxicity, f"toxics[{i}].toxicity"),
            (t.schedule, f"toxics[{i}].schedule"),
        ]
    for i, c in enumerate(profile.checks):
        stack.append((c.params, f"checks[{i}]"))
    while stack:
        value, where = stack.pop()
        if isinstance(value, float):
            assert math.isfinite(value) or where.endswith("window[1]"), f"{where} = {value} reached the profile"
        elif isinstance(value, dict):
            stack += [(v, f"{where}.{k}") for k, v in value.items()]
        elif isinstance(value, list | tuple):
            stack += [(v, f"{where}[{j}]") for j, v in enumerate(value)]


def check_yaml_text(text: str) -> None:
    try:
        profile = load_profile_text(text, FILE)
    except ProfileError as err:
        _assert_located(err, FILE, lines=True)
        return
    _assert_finite(profile)


class FileTarget:
    """Loads bytes through a real file (the reader decodes them), one temp file reused."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, data: bytes) -> None:
        self.path.write_bytes(data)
        try:
            profile = load_profile(self.path)
        except ProfileError as err:
            _assert_located(err, str(self.path), lines=True)
            return
        _assert_finite(profile)


def check_structure(data: dict[str, Any]) -> None:
    try:
        profile = profile_from_dict(data, "<fuzz>")
    except ProfileError as err:
        _assert_located(err, "<fuzz>", lines=False)
        return
    _assert_finite(profile)
