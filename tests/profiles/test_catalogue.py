"""The shipped catalogue: every profile loads, says what it reproduces, and judges it.

A catalogue profile is documentation as much as configuration: it must name the real failure it
reproduces (an F-number of provider-wire-formats.md section 8 and its public issue) and the checks
that decide whether the agent coped, or a drill with it proves nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.profile import find_profile, load_profile, load_profile_text

CATALOGUE = Path(__file__).resolve().parents[2] / "fault_profiles"
PROFILES = sorted(CATALOGUE.glob("*.yaml"))
INCIDENTS = [p for p in PROFILES if not p.name.startswith("base-")]
F_NUMBER = re.compile(r"\bF(0[1-9]|[12]\d|3[0-3])\b")
#: tool-call incidents (fault_profiles/README.md): a profile names an F-number or one of these
T_NUMBER = re.compile(r"\b[TC]0[1-9]\b")  # C: capability and cost incidents


def test_catalogue_is_there() -> None:
    assert len(INCIDENTS) >= 25
    assert (CATALOGUE / "base-two-lanes.yaml").is_file()
    assert (CATALOGUE / "ultraspeed-capacity-loss.yaml").is_file()


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_profile_loads_and_is_documented(path: Path) -> None:
    profile = load_profile(path)
    assert profile.name == path.stem, "a profile's name is its file name, so `routechaos drill NAME` finds it"
    assert len(profile.description.split()) >= 20, "say what happens and what a graceful agent does"
    assert profile.incident.strip(), "name the real failure this reproduces"
    assert profile.checks, "a profile without checks proves nothing"
    assert profile.time_scale == 1.0, "profiles are written in real seconds; CI compresses with an override"
    assert "stable" in profile.lanes, "every profile keeps a healthy fallback lane"


@pytest.mark.parametrize("path", INCIDENTS, ids=[p.stem for p in INCIDENTS])
def test_incident_profile_ties_to_the_catalogue(path: Path) -> None:
    profile = load_profile(path)
    assert F_NUMBER.search(profile.incident) or T_NUMBER.search(profile.incident), (
        f"incident must name an F-number (or a T-number): {profile.incident!r}"
    )
    assert profile.faults, "an incident profile injects at least one fault"
    assert {f.lane for f in profile.faults} - {"*"} <= set(profile.lanes)
    names = [c.name for c in profile.checks]
    assert "no_lost_calls" in names and "no_truncated_success" in names
    routing = {
        "fallback_within",
        "retries_bounded",
        "latency_budget",
        "loop_budget",
        "no_retry_on_permanent",
        "no_hammering",
    }
    assert routing & set(names), "judge the degradation itself, not only that calls ended"


@pytest.mark.parametrize("path", INCIDENTS, ids=[p.stem for p in INCIDENTS])
def test_fallback_checks_name_declared_lanes(path: Path) -> None:
    profile = load_profile(path)
    for c in profile.checks:
        for key in ("primary", "fallback", "lane"):
            if key in c.params:
                assert c.params[key] in profile.lanes, f"{c.name}.{key} names no lane"


def test_catalogue_covers_every_family() -> None:
    seen = set()
    for p in INCIDENTS:
        seen |= {int(m) for m in F_NUMBER.findall(load_profile(p).incident)}
    wanted = set(range(1, 32))  # F01-F31; F32/F33 are properties of others (headers, duplicates)
    assert wanted <= seen, f"missing F-numbers: {sorted(wanted - seen)}"


def test_ultraspeed_capacity_loss() -> None:
    p = load_profile("ultraspeed-capacity-loss")
    ultra, stable = p.lanes["ultraspeed"], p.lanes["stable"]
    assert ultra.dialect == "openai" and stable.dialect == "anthropic"
    assert ultra.simulator is not None and ultra.simulator.tokens_per_second == 1000
    assert ultra.simulator.slots == 4 and 0 < ultra.simulator.queue <= 4
    assert stable.simulator is not None and stable.simulator.tokens_per_second == 60
    faults = {f.fault: f for f in p.faults}
    assert {"rate_limiter"} <= set(faults)
    loss = [f for f in p.faults if isinstance(f.schedule, dict) and f.schedule.get("window") == [20, 40]]
    assert loss and loss[0].fault in {"refuse", "unavailable", "overloaded"}
    names = {c.name for c in p.checks}
    assert {
        "no_lost_calls",
        "fallback_within",
        "recovers_within",
        "honors_retry_after",
        "latency_budget",
        "no_truncated_success",
    } <= names


def test_names_find_catalogue_profiles() -> None:
    assert find_profile("f16-stream-cut") == find_profile("f16-stream-cut.yaml")
    assert load_profile("f19-inband-error-before-content").lanes["primary"].dialect == "anthropic"


# -- extends and overrides ---------------------------------------------------------------------
def test_extends_merges_lanes_by_name_and_appends_lists() -> None:
    base = load_profile(CATALOGUE / "base-two-lanes.yaml")
    child = load_profile(CATALOGUE / "f05-overloaded-529.yaml")
    # the child changes only the dialect; the base's simulator settings survive the merge
    assert child.lanes["primary"].dialect == "anthropic"
    assert child.lanes["primary"].simulator == base.lanes["primary"].simulator
    assert child.lanes["stable"].dialect == "openai-chat"
    # lists: the base's checks first, then the child's
    assert [c.name for c in child.checks][: len(base.checks)] == [c.name for c in base.checks]
    assert len(child.checks) > len(base.checks)
    # scalars: the child's win
    assert child.seed != base.seed and child.name == "f05-overloaded-529"


def test_extends_adds_lanes(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(
        "seed: 3\nlanes:\n  a: {dialect: openai, simulator: {ttft: 0.5}}\n"
        "faults:\n  - {fault: overloaded, lane: a, schedule: {first: 1}}\nchecks: [no_lost_calls]\n"
    )
    (tmp_path / "child.yaml").write_text(
        "extends: base.yaml\nlanes:\n  a: {simulator: {ttft: 2}}\n  b: {dialect: gemini}\n"
        "faults:\n  - {fault: server_error, lane: b}\nchecks: [alive_after]\n"
    )
    p = load_profile(tmp_path / "child.yaml")
    assert list(p.lanes) == ["a", "b"]
    assert p.lanes["a"].dialect == "openai" and p.lanes["a"].simulator.ttft == 2  # type: ignore[union-attr]
    assert [f.fault for f in p.faults] == ["overloaded", "server_error"]
    assert [c.name for c in p.checks] == ["no_lost_calls", "alive_after"]
    assert p.seed == 3


def test_extends_chain_of_three(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("lanes: {x: {dialect: openai}}\nchecks: [no_lost_calls]\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nchecks: [alive_after]\n")
    (tmp_path / "c.yaml").write_text("extends: b.yaml\nchecks: [no_truncated_success]\n")
    p = load_profile(tmp_path / "c.yaml")
    assert [c.name for c in p.checks] == ["no_lost_calls", "alive_after", "no_truncated_success"]


def test_extends_from_text_resolves_relative_to_the_file() -> None:
    text = "extends: base-two-lanes.yaml\nseed: 9\n"
    p = load_profile_text(text, str(CATALOGUE / "inline.yaml"))
    assert set(p.lanes) == {"primary", "stable"} and p.seed == 9


def test_overrides_apply() -> None:
    p = load_profile("ultraspeed-capacity-loss", {"seed": 7, "time_scale": 0.1})
    assert p.seed == 7 and p.time_scale == 0.1
    plain = load_profile("ultraspeed-capacity-loss")
    assert plain.seed == 2026 and plain.time_scale == 1.0


def test_overrides_apply_through_extends() -> None:
    p = load_profile("f01-rate-limit-retry-after", {"time_scale": 0.05})
    assert p.time_scale == 0.05 and p.seed == 10


def test_the_readme_profile_example_loads():
    """README's profile example is valid as written (lanes, faults, toxics, checks)."""
    import re
    from pathlib import Path

    from harness.profile import load_profile_text

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```yaml\n(name: my-drill.*?)```", readme, re.S).group(1)
    profile = load_profile_text(block, "README.md")
    assert [f.fault for f in profile.faults] == ["rate_limiter", "unavailable", "stream_cut"]
    assert profile.toxics[0].type == "latency" and len(profile.checks) == 5
