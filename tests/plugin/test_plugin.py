"""The pytest plugin as a user meets it: marker, fixtures, options, and readable failures."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _quiet_ini(pytester):
    """The inner pytest runs get their own ini: keep pytest-asyncio's loop-scope notice out."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


CONFTEST_AGENT = """
import httpx
from harness.drill import call_headers

def ask(url, prompt):
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
    for attempt in range(3):
        r = httpx.post(url + "/v1/chat/completions", json=body, headers=call_headers(), timeout=5)
        if r.status_code == 200:
            return {"text": r.json()["choices"][0]["message"]["content"], "lane": "a", "complete": True}
    r.raise_for_status()
"""

PROFILE = """
time_scale: 1.0
lanes:
  a: {dialect: openai, simulator: {tokens_per_second: 5000, ttft: 0.0, answer_tokens: 8}}
faults:
  - {fault: server_error, lane: a, schedule: {per_call: 1}}
checks:
  - no_lost_calls
  - retries_bounded: {max_attempts_per_call: 2}
"""


def test_marker_fixture_and_a_passing_drill(pytester):
    pytester.makepyfile(agent=CONFTEST_AGENT)
    pytester.makefile(".yaml", flaky=PROFILE)
    pytester.makepyfile(
        """
        import pytest
        from agent import ask

        @pytest.mark.chaos_profile("flaky.yaml", seed=3)
        def test_it(chaos):
            for i in range(3):
                chaos.call(ask, chaos.url("a"), f"q{i}")
            report = chaos.assert_graceful()
            assert report.passed
            assert len(chaos.journal.attempts()) == 6
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_failure_message_shows_the_timeline(pytester):
    pytester.makepyfile(agent=CONFTEST_AGENT)
    pytester.makefile(".yaml", flaky=PROFILE.replace("max_attempts_per_call: 2", "max_attempts_per_call: 1"))
    pytester.makepyfile(
        """
        import pytest
        from agent import ask

        @pytest.mark.chaos_profile("flaky.yaml")
        def test_it(chaos):
            chaos.call(ask, chaos.url("a"), "q")
            chaos.assert_graceful()
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "degradation was not graceful" in out
    assert "retries_bounded" in out and "server_error" in out and "500" in out


def test_options_journal_dir_and_factory(pytester, tmp_path):
    pytester.makepyfile(agent=CONFTEST_AGENT)
    pytester.makepyfile(
        """
        from agent import ask

        def test_it(chaos_factory):
            lanes = {"a": {"dialect": "openai", "simulator": {"answer_tokens": 4, "ttft": 0}}}
            faults = [{"fault": "rate_limit", "lane": "a", "retry_after": 10, "schedule": {"first": 1}}]
            drill = chaos_factory({"lanes": lanes, "faults": faults})
            assert drill.time_scale == 0.01
            assert drill.call(ask, drill.url("a"), "q")["complete"]
            first = drill.journal.attempts()[0]
            assert first.retry_after == 0.1  # 10 s in profile time, compressed by --routechaos-time-scale
        """
    )
    jdir, rdir = tmp_path / "journals", tmp_path / "reports"
    result = pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--routechaos-time-scale=0.01",
        f"--routechaos-journal-dir={jdir}",
        f"--routechaos-report-dir={rdir}",
    )
    result.assert_outcomes(passed=1)
    assert len(list(jdir.glob("*.jsonl"))) == 1
    (report,) = rdir.glob("*.html")
    assert 'id="timeline"' in report.read_text()


def test_plugin_registers_its_marker_and_options(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*chaos_profile(name_or_path, **overrides)*"])
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*--routechaos-time-scale*", "*--routechaos-journal-dir*"])


def test_the_readme_example_runs_as_written(pytester):
    """The pytest example in README.md is a real test: extract it and run it."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## In CI: the pytest plugin", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    pytester.makepyfile(test_readme=code)
    pytester.syspathinsert(Path(__file__).resolve().parents[2])  # examples/ from the repository
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_chaos_fixture_under_xdist(pytester):
    """Two workers, each with its own drill on its own ephemeral ports, at the same time."""
    pytester.makepyfile(agent=CONFTEST_AGENT)
    pytester.makefile(".yaml", flaky=PROFILE)
    pytester.makepyfile(
        """
        import pytest
        from agent import ask

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.chaos_profile("flaky.yaml")
        def test_it(chaos, n):
            chaos.call(ask, chaos.url("a"), f"q{n}")
            assert chaos.assert_graceful().passed
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=4)
