"""Profiles fit your lanes: a profile's lanes renamed to the names an agent already uses.

The same renaming through every door: ``extends: {profile:, lanes:}``, ``load_profile(lanes=)``,
``Drill(lanes=)`` (a name or a built profile), the pytest marker and ``--lane`` on the command
line. It reaches lanes, faults, toxics and the check parameters that name lanes; an unknown lane
anywhere is an error naming it and the lanes there are, never a bare ``KeyError``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from harness.cli import main
from harness.drill import Drill
from harness.faults.plan import FaultPlan
from harness.journal import Journal
from harness.lanemap import UnknownLane
from harness.profile import FaultSpec, ProfileError, default_profile, load_profile, profile_from_dict

pytest_plugins = ["pytester"]

BASE = """\
name: base
lanes:
  primary: {dialect: openai-chat, simulator: {tokens_per_second: 5000, ttft: 0, answer_tokens: 6}}
  stable: {dialect: anthropic, simulator: {tokens_per_second: 5000, ttft: 0, answer_tokens: 6}}
faults:
  - {fault: overloaded, lane: primary, schedule: {first: 1}}
  - {fault: rate_limit, name: throttle, lane: primary, schedule: never}
toxics:
  - {lane: stable, type: latency, attributes: {latency: 5}}
checks:
  - no_lost_calls
  - fallback_within: {primary: primary, fallback: stable, within: 5}
  - recovers_within: {lane: primary, within: 5}
  - circuit_opens: {lane: primary}
  - alive_after: {lane: stable, after: 0}
"""


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "base.yaml"
    path.write_text(BASE)
    return path


def _write(tmp_path: Path, text: str, name: str = "child.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _names(profile):
    return (
        list(profile.lanes),
        [(f.name, f.lane) for f in profile.faults],
        [t.lane for t in profile.toxics],
        [(c.name, c.params) for c in profile.checks],
    )


RENAMED = (
    ["fast", "slow"],
    [("overloaded@fast", "fast"), ("throttle", "fast")],
    ["slow"],
    [
        ("no_lost_calls", {}),
        ("fallback_within", {"primary": "fast", "fallback": "slow", "within": 5}),
        ("recovers_within", {"lane": "fast", "within": 5}),
        ("circuit_opens", {"lane": "fast"}),
        ("alive_after", {"lane": "slow", "after": 0}),
    ],
)


def test_extends_renames_the_base_lanes_everywhere(tmp_path, base):
    child = _write(
        tmp_path,
        """\
        extends: {profile: base.yaml, lanes: {primary: fast, stable: slow}}
        lanes:
          fast: {simulator: {answer_tokens: 9}}   # the renamed lane, merged by its new name
        faults:
          - {fault: stream_cut, lane: fast}
        """,
    )
    p = load_profile(child)
    lanes, faults, toxics, checks = _names(p)
    assert (lanes, toxics, checks) == (RENAMED[0], RENAMED[2], RENAMED[3])
    assert faults == [*RENAMED[1], ("stream_cut@fast", "fast")]
    assert p.lanes["fast"].dialect == "openai-chat" and p.lanes["fast"].simulator.answer_tokens == 9
    assert p.lanes["fast"].name == "fast"


def test_every_way_in_renames_alike(base):
    mapping = {"primary": "fast", "stable": "slow"}
    by_name = load_profile(base, lanes=mapping)
    by_object = Drill(load_profile(base), lanes=mapping).profile
    assert _names(by_name) == RENAMED == _names(by_object)


def test_lanes_may_swap_names(base):
    p = load_profile(base, lanes={"primary": "stable", "stable": "primary"})
    assert p.lanes["stable"].dialect == "openai-chat" and p.faults[0].lane == "stable"


@pytest.mark.parametrize(
    ("lanes", "line", "field", "says"),
    [
        ("{nope: fast}", 1, "extends.lanes.nope", "no lane named 'nope'; lanes: primary, stable (in base.yaml)"),
        ("{primary: stable}", 1, "extends.lanes", "lanes 'primary' and 'stable' would both be called 'stable'"),
        ("{primary: ''}", 1, "extends.lanes", "must be mapped to a lane name"),
    ],
)
def test_a_bad_extends_mapping_names_file_line_and_field(tmp_path, base, lanes, line, field, says):
    child = _write(tmp_path, f"extends: {{profile: base.yaml, lanes: {lanes}}}\n")
    with pytest.raises(ProfileError) as info:
        load_profile(child)
    err = info.value
    assert (err.file, err.line, err.field) == (str(child), line, field)
    assert says in err.message


def test_the_child_must_use_the_new_names(tmp_path, base):
    child = _write(
        tmp_path,
        """\
        extends: {profile: base.yaml, lanes: {primary: fast}}
        faults:
          - {fault: overloaded, lane: primary}
        """,
    )
    with pytest.raises(ProfileError) as info:
        load_profile(child)
    assert info.value.field == "faults[0].lane" and info.value.line == 3  # its index in the child file
    assert "no lane named 'primary'; lanes: fast, stable" in info.value.message


def test_a_check_naming_an_unknown_lane_is_a_profile_error(tmp_path):
    path = _write(
        tmp_path,
        """\
        lanes:
          a: {dialect: openai}
        checks:
          - recovers_within: {lane: b, within: 3}
        """,
    )
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert (info.value.line, info.value.field) == (4, "checks[0].recovers_within.lane")
    assert "no lane named 'b'; lanes: a" in info.value.message


def test_a_drill_under_your_lane_names(base):
    with Drill(base, lanes={"primary": "fast"}, time_scale=0.2) as drill:
        assert set(drill.urls) == {"fast", "stable"}
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(drill.base_url("fast") + "/chat/completions", json=body, timeout=10).status_code == 503
        with pytest.raises(UnknownLane, match=r"no lane named 'primary'; lanes: fast, stable"):
            drill.url("primary")
        with pytest.raises(KeyError, match="lanes: fast, stable"):  # still a KeyError, but a clear one
            drill.urls["nope"]
        with pytest.raises(UnknownLane):
            drill.base_url("nope")
        drill.settle()
        (a,) = drill.journal.attempts()
        assert a.lane == "fast" and a.fault_name == "overloaded"


def test_an_unknown_lane_in_a_drill_mapping_is_named(base):
    with pytest.raises(UnknownLane) as info:
        Drill(base, lanes={"primray": "fast"})
    assert str(info.value) == "no lane named 'primray'; did you mean 'primary'? lanes: primary, stable"
    with pytest.raises(UnknownLane):
        Drill(load_profile(base), lanes={"primray": "fast"})


def test_a_fault_added_on_an_unknown_lane_is_refused():
    plan = FaultPlan(default_profile(), Journal())
    with pytest.raises(UnknownLane, match="no lane named 'ultraspeed'; lanes: primary, stable"):
        plan.add(FaultSpec(fault="overloaded", lane="ultraspeed"))


def test_the_default_lanes_are_named_as_in_the_catalogue():
    assert list(default_profile().lanes) == list(load_profile("base-two-lanes").lanes) == ["primary", "stable"]


# -- the pytest marker ----------------------------------------------------------------------------
def test_the_marker_maps_lanes(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import httpx
        import pytest
        from harness.lanemap import UnknownLane

        @pytest.mark.chaos_profile("f16-stream-cut", lanes={"primary": "fast"}, time_scale=0.1)
        def test_mapped(chaos):
            assert set(chaos.urls) == {"fast", "stable"}
            assert [c.params for c in chaos.profile.checks if c.name == "fallback_within"] == [
                {"primary": "fast", "fallback": "stable", "within": 8}
            ]
            with pytest.raises(UnknownLane):
                chaos.url("primary")

        @pytest.mark.chaos_profile("f16-stream-cut", lanes={"prmary": "fast"})
        def test_typo(chaos):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    assert "chaos_profile lanes=: no lane named 'prmary'; did you mean 'primary'? lanes: primary, stable" in (
        result.stdout.str()
    )


# -- the command line -----------------------------------------------------------------------------
AGENT = """\
import os, httpx
url = os.environ["ROUTECHAOS_LANE_FAST_URL"]
body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
for _ in range(2):
    httpx.post(url + "/v1/chat/completions", json=body, timeout=10)
"""


def test_drill_lane_option(tmp_path, base, capsys):
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    out = tmp_path / "run"
    argv = ["drill", str(base), "--lane", "primary=fast", "--out", str(out), "--quiet", "--time-scale", "0.2"]
    main([*argv, "--", sys.executable, str(agent)])
    lanes = {a.lane for a in Journal.load(out / "journal.jsonl").attempts()}
    assert lanes == {"fast"}
    assert "lane fast openai-chat" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("lane", "says"),
    [
        ("nope=fast", "--lane nope=...: no lane named 'nope'; lanes: primary, stable"),
        ("primary", "give PROFILE_LANE=YOUR_LANE"),
        ("primary=stable", "would both be called 'stable'"),
    ],
)
@pytest.mark.parametrize("command", ["drill", "serve"])
def test_a_bad_lane_option_is_exit_2(base, capsys, command, lane, says):
    argv = [command, str(base), "--lane", lane]
    assert main([*argv, "--", "true"] if command == "drill" else argv) == 2
    assert says in capsys.readouterr().err


def test_serve_lane_option(tmp_path):
    ready = tmp_path / "ready"
    cmd = [sys.executable, "-m", "harness.cli", "serve", "--lane", "primary=fast", "--control-port", "0"]
    proc = subprocess.Popen([*cmd, "--ready-file", str(ready)], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        first = proc.stdout.readline().split()
        assert first[:3] == ["lane", "fast", "openai-chat"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_profile_from_dict_then_mapped_drill_runs_checks_on_new_names():
    profile = profile_from_dict(
        {
            "time_scale": 0.2,
            "lanes": {
                "primary": {"dialect": "openai", "simulator": {"ttft": 0, "tokens_per_second": 5000}},
                "stable": {"dialect": "openai", "simulator": {"ttft": 0, "tokens_per_second": 5000}},
            },
            "faults": [{"fault": "overloaded", "lane": "primary"}],
            "checks": [{"fallback_within": {"primary": "primary", "fallback": "stable", "within": 5}}],
        }
    )
    with Drill(profile, lanes={"primary": "a", "stable": "b"}) as drill:
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

        def ask() -> str:
            r = httpx.post(drill.base_url("a") + "/chat/completions", json=body, timeout=10)
            if r.status_code != 200:
                r = httpx.post(drill.base_url("b") + "/chat/completions", json=body, timeout=10)
            return r.json()["choices"][0]["message"]["content"]

        drill.call(ask)
        report = drill.evaluate()
    (result,) = report.results
    assert result.verdict == "pass", result.summary
    assert result.params["primary"] == "a" and result.params["fallback"] == "b"
