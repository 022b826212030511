"""``nan`` and ``inf`` are numbers to YAML and to ``float()``, and no drill can be timed by them.

A time scale or a duration that is not finite is refused where it is written: a profile names
file, line and field; the command line exits 2 before any lane starts; the Python API and the
pytest option say what a time scale must be.
"""

from __future__ import annotations

import math

import pytest

from harness.cli import build_parser, main
from harness.drill import Drill
from harness.profile import ProfileError, load_profile

pytest_plugins = ["pytester"]

LANES = "lanes:\n  primary:\n    dialect: openai-chat\n"  # lines 1-3


@pytest.mark.parametrize(
    ("text", "line", "field"),
    [
        (LANES + "time_scale: .nan\n", 4, "time_scale"),
        (LANES + "time_scale: .inf\n", 4, "time_scale"),
        (LANES + "time_scale: -1\n", 4, "time_scale"),
        (LANES + "    simulator: {ttft: .nan}\n", 4, "lanes.primary.simulator.ttft"),
        (LANES + "    simulator:\n      tokens_per_second: .inf\n", 5, "lanes.primary.simulator.tokens_per_second"),
        (LANES + "    read_timeout: .inf\n", 4, "lanes.primary.read_timeout"),
        (LANES + "faults:\n  - {fault: slow_first_token, lane: primary, delay: .inf}\n", 5, "faults[0].delay"),
        (LANES + "faults:\n  - fault: stall\n    lane: primary\n    duration: .nan\n", 7, "faults[0].duration"),
        (LANES + "faults:\n  - {fault: overloaded, schedule: {window: [0, .nan]}}\n", 5, "faults[0].schedule.window"),
        (
            LANES + "toxics:\n  - lane: primary\n    type: latency\n    attributes:\n      latency: .nan\n",
            8,
            "toxics[0].attributes.latency",
        ),
        (LANES + "checks:\n  - latency_budget: {total_p95: .inf}\n", 5, "checks[0].latency_budget.total_p95"),
    ],
)
def test_a_non_finite_value_is_refused_with_file_line_and_field(tmp_path, text, line, field):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, field), str(err)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1", "fast"])
@pytest.mark.parametrize("command", ["drill", "serve"])
def test_the_command_line_refuses_a_bad_time_scale_with_exit_2(capsys, command, value):
    argv = [command, "f01-rate-limit-retry-after", f"--time-scale={value}"]
    with pytest.raises(SystemExit) as info:
        if command == "drill":
            main([*argv, "--", "true"])
        else:
            build_parser().parse_args(argv)  # what main() does first; a serve that started would not return
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--time-scale" in err and "finite number > 0" in err


@pytest.mark.parametrize("value", [math.nan, math.inf, 0.0, -1.0])
def test_drill_refuses_a_bad_time_scale(value):
    with pytest.raises(ValueError, match="time_scale must be a finite number > 0"):
        Drill("f01-rate-limit-retry-after", time_scale=value)


def test_the_pytest_option_refuses_nan(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile("def test_it(chaos):\n    pass\n")
    result = pytester.runpytest("--routechaos-time-scale", "nan")
    assert "time_scale must be a finite number > 0" in result.stdout.str() + result.stderr.str()
    assert result.ret != 0
