"""`routechaos drill`, `profiles`, `report`: exit codes, errors a new user hits, and the report."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
from html.parser import HTMLParser

import pytest

from harness.cli import main

AGENT = textwrap.dedent(
    """
    import os, httpx
    primary = os.environ["ROUTECHAOS_LANE_ULTRASPEED_URL"]
    fallback = os.environ["ROUTECHAOS_LANE_STABLE_URL"]
    assert os.environ["OPENAI_BASE_URL"] == primary + "/v1"
    assert os.environ["ANTHROPIC_BASE_URL"] == fallback
    for i in range(4):
        body = {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]}
        r = httpx.post(primary + "/v1/chat/completions", json=body, timeout=5)
        if r.status_code != 200 and FALLBACK:
            r = httpx.post(fallback + "/v1/messages", json={**body, "max_tokens": 20}, timeout=5)
        print(i, r.status_code)
    """
)

PROFILE = textwrap.dedent(
    """
    name: tiny-drill
    description: the premium lane is overloaded on its 2nd and 3rd calls
    time_scale: 0.5
    lanes:
      ultraspeed: {dialect: openai, simulator: {tokens_per_second: 2000, answer_tokens: 6, ttft: 0.0}}
      stable: {dialect: anthropic, simulator: {tokens_per_second: 2000, answer_tokens: 6, ttft: 0.0}}
    faults:
      - {fault: overloaded, lane: ultraspeed, schedule: {nth: [2, 3]}}
    checks:
      - fallback_within: {primary: ultraspeed, fallback: stable, within: 2}
    """
)


@pytest.fixture
def files(tmp_path):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(PROFILE)
    good = tmp_path / "good_agent.py"
    good.write_text("FALLBACK = True\n" + AGENT)
    bad = tmp_path / "bad_agent.py"
    bad.write_text("FALLBACK = False\n" + AGENT)
    return profile, good, bad, tmp_path


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.rects = 0
        self.data_json = ""
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if "att" in (a.get("class") or "").split():  # one timeline bar (a group of rects) per attempt
            self.rects += 1
        self._in_data = tag == "script" and a.get("id") == "routechaos-data"

    def handle_data(self, data):
        if self._in_data:
            self.data_json += data


def test_drill_passes_a_good_agent_and_writes_journal_and_report(files, capsys):
    profile, good, _, tmp = files
    out = tmp / "run-good"
    rc = main(["drill", str(profile), "--out", str(out), "--quiet", "--", sys.executable, str(good)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "PASS    fallback_within" in text
    lines = (out / "journal.jsonl").read_text().splitlines()
    assert sum(1 for x in lines if json.loads(x)["type"] == "attempt") == 6  # 4 primary + 2 fallbacks
    parsed = _Structure()
    parsed.feed((out / "report.html").read_text())
    assert {"timeline", "checks", "attempts", "verdict"} <= parsed.ids
    assert {"a000001", "a000006"} <= parsed.ids  # one table row per attempt, linkable from the timeline
    assert parsed.rects >= 6
    assert json.loads(parsed.data_json)["verdict"] == "pass"


def test_drill_fails_an_agent_without_fallback_with_exit_1(files, capsys):
    profile, _, bad, tmp = files
    rc = main(["drill", str(profile), "--out", str(tmp / "run-bad"), "--quiet", "--", sys.executable, str(bad)])
    text = capsys.readouterr().out
    assert rc == 1
    assert "FAIL" in text and "fallback_within" in text
    assert "ultraspeed" in text and "overloaded" in text  # the timeline of what broke it


def test_report_rejudges_a_saved_journal(files, capsys):
    profile, good, _, tmp = files
    out = tmp / "run"
    assert main(["drill", str(profile), "--out", str(out), "--quiet", "--", sys.executable, str(good)]) == 0
    capsys.readouterr()
    assert main(["report", str(out / "journal.jsonl"), "--out", str(tmp / "again.html")]) == 0
    assert "PASS    fallback_within" in capsys.readouterr().out
    assert (tmp / "again.html").read_text().startswith("<!doctype html>")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["drill", "no-such-profile", "--", "true"], "profile 'no-such-profile' not found"),
        (["drill", "{profile}", "--", "definitely-not-a-command-xyz"], "agent command not found"),
        (["drill", "{profile}"], "give the agent command after --"),
        (["report", "/nonexistent/journal.jsonl"], "no journal at"),
        (["profiles", "validate", "{broken}"], "broken.yaml:3: lanes.a.dialect"),
    ],
)
def test_cli_errors_are_clear_and_exit_2(files, capsys, argv, message):
    profile, *_, tmp = files
    broken = tmp / "broken.yaml"
    broken.write_text("lanes:\n  a:\n    dialect: klingon\n")
    argv = [a.format(profile=profile, broken=broken) for a in argv]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err + captured.out


def test_port_in_use_is_exit_3(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        profile = tmp_path / "fixed.yaml"
        profile.write_text(f"lanes:\n  a: {{dialect: openai, port: {port}}}\n")
        assert main(["serve", str(profile)]) == 3
    assert f"lane a cannot listen on 127.0.0.1:{port}: the port is already in use" in capsys.readouterr().err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for cmd in ("serve", "drill", "fault", "profiles", "report", "demo", "sim", "toxiproxy"):
        assert cmd in text
    with pytest.raises(SystemExit):
        main(["drill", "--help"])
    assert "ROUTECHAOS_LANE_<NAME>_URL" in capsys.readouterr().out


def test_profiles_list_and_show_the_catalogue(capsys):
    assert main(["profiles", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ultraspeed-capacity-loss" in listing and "f16-stream-cut" in listing
    assert main(["profiles", "show", "ultraspeed-capacity-loss"]) == 0
    shown = capsys.readouterr().out
    assert "lane ultraspeed: openai -> simulator 1000 tokens/s" in shown
    assert "check fallback_within" in shown
    assert main(["profiles", "validate", "ultraspeed-capacity-loss", "f05-overloaded-529"]) == 0
