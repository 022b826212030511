"""Command-line manners, tried as a new user would: typos get a suggestion, every option has
help, piped output is whole, a crashed agent shows why, and CI bots get JSON or Markdown."""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap

import pytest

from harness.cli import build_parser, main
from harness.faults import make_fault
from harness.faults.base import FaultAttrError
from harness.profile import load_profile
from harness.suggest import did_you_mean


def test_did_you_mean():
    assert did_you_mean("overloded", ["overloaded", "rate_limit"]) == "did you mean 'overloaded'?"
    assert did_you_mean("zzz", ["overloaded"]) == ""


def test_a_misspelled_profile_name_gets_a_suggestion_not_a_list(capsys):
    assert main(["drill", "ultraspeed-capcity-loss", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'ultraspeed-capacity-loss'" in err  # first: the closest
    assert "f16-stream-cut" not in err  # not all forty names
    assert main(["profiles", "show", "no-such-profile-at-all"]) == 2
    assert "shipped profiles:" in capsys.readouterr().err  # nothing close: the list helps


@pytest.mark.parametrize(
    "body,message",
    [
        ("faults:\n  - {fault: overloded, lane: fast}\n", "did you mean 'overloaded'?"),
        ("faults:\n  - {fault: overloaded, lane: fats}\n", "no lane named 'fats'; did you mean 'fast'?"),
        ("checks: [no_lost_call]\n", "unknown check; did you mean 'no_lost_calls'?"),
        ("toxics:\n  - {lane: stabel, type: latency}\n", "did you mean 'stable'?"),
    ],
)
def test_profile_typos_get_a_suggestion_with_file_and_line(tmp_path, capsys, body, message):
    p = tmp_path / "typo.yaml"
    p.write_text("lanes:\n  fast: {dialect: openai}\n  stable: {dialect: anthropic}\n" + body)
    assert main(["profiles", "validate", str(p)]) == 2
    out = capsys.readouterr().out
    assert message in out and re.search(r"typo\.yaml:[45]: (faults|checks|toxics)", out)


def test_fault_attribute_typos_get_a_suggestion():
    with pytest.raises(FaultAttrError, match=r"did you mean 'retry_after'"):
        make_fault("overloaded", {"retry_afer": 2})


def _options(parser: argparse.ArgumentParser, path: str = "routechaos"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_option_and_argument_has_help():
    missing = [
        f"{path} {'/'.join(a.option_strings) or a.dest}"
        for path, a in _options(build_parser())
        if a.help is None or (a.help != argparse.SUPPRESS and not a.help.strip())
    ]
    assert missing == []


def test_profiles_list_keeps_whole_descriptions_when_piped(capsys):
    assert main(["profiles", "list"]) == 0
    listing = capsys.readouterr().out
    want = " ".join(load_profile("ultraspeed-capacity-loss").description.split())
    line = next(ln for ln in listing.splitlines() if ln.startswith("ultraspeed-capacity-loss "))
    assert line.endswith(want) and "…" not in line


def test_profiles_show_cites_only_files_that_exist(capsys):
    assert main(["profiles", "show", "f24-finish-length"]) == 0
    shown = capsys.readouterr().out
    m = re.search(r"extends (\S+base-two-lanes\.yaml)", shown)
    assert m is not None
    from pathlib import Path

    assert Path(m.group(1)).is_file()
    # a document the catalogue cites but this install does not ship is said to be missing
    assert "provider-wire-formats.md (not in this install)" in shown


def test_a_crashed_agent_shows_the_end_of_its_log(tmp_path, capsys):
    agent = tmp_path / "crash.py"
    agent.write_text("print('starting')\nraise RuntimeError('the agent fell over')\n")
    profile = tmp_path / "p.yaml"
    profile.write_text("lanes:\n  a: {dialect: openai}\n")
    rc = main(["drill", str(profile), "--out", str(tmp_path / "run"), "--quiet", "--", sys.executable, str(agent)])
    assert rc == 1
    out = capsys.readouterr().out
    assert "agent exited with status 1" in out
    assert "RuntimeError: the agent fell over" in out and "starting" in out


AGENT = textwrap.dedent(
    """
    import os, httpx
    url = os.environ["ROUTECHAOS_LANE_FAST_URL"]
    ctl = os.environ["ROUTECHAOS_CONTROL_URL"]
    for i in range(3):
        body = {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}
        head = {"x-routechaos-call-id": f"c{i}"}
        r = httpx.post(url + "/v1/chat/completions", json=body, headers=head, timeout=5)
        ok = r.status_code == 200
        report = {"id": f"c{i}", "outcome": "ok" if ok else "error", "lane": "fast"}
        if not ok:
            report.update(error=f"status {r.status_code}", error_type="APIStatusError")
        httpx.post(ctl + "/calls", json=report)
    """
)


@pytest.fixture
def saved_failing_drill(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: two-lanes-one-fails\n"
        "lanes:\n  fast: {dialect: openai, simulator: {answer_tokens: 4, ttft: 0}}\n"
        "  spare: {dialect: anthropic}\n"
        "faults:\n  - {fault: overloaded, lane: fast, schedule: {nth: [2]}}\n"
        "checks:\n  - no_lost_calls\n  - fallback_within: {primary: fast, fallback: spare, within: 1}\n"
    )
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    out = tmp_path / "run"
    assert main(["drill", str(profile), "--out", str(out), "--quiet", "--", sys.executable, str(agent)]) == 1
    return out / "journal.jsonl"


def test_report_format_json_is_json_alone_with_failures_first(saved_failing_drill, capsys):
    capsys.readouterr()
    assert main(["report", str(saved_failing_drill), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "fail" and data["profile"] == "two-lanes-one-fails"
    assert data["checks"][0]["verdict"] == "fail"  # failures first
    assert [ln["lane"] for ln in data["lanes"]] == ["fast", "spare"]  # spare was never tried
    assert data["lanes"][1]["attempts"] == 0
    failing = next(c for c in data["checks"] if c["verdict"] == "fail")
    cited = {p["call"] for p in failing["problems"]}
    assert cited and cited <= {c["id"] for c in data["cited_calls"]}
    assert data["report"].endswith("report.html")


def test_report_format_md_is_a_pull_request_summary(saved_failing_drill, capsys):
    capsys.readouterr()
    assert main(["report", str(saved_failing_drill), "--format", "md"]) == 1
    md = capsys.readouterr().out
    assert md.startswith("### routechaos drill `two-lanes-one-fails`: **FAIL**")
    assert "| `fallback_within` | **FAIL** |" in md
    assert md.index("#### FAIL `fallback_within`") < md.index("<details><summary>1 check(s) passed</summary>")
    assert "call `c1`" in md  # the same ids as the report and the terminal
    assert "(spare never tried)" in md
