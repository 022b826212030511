"""``routechaos record`` and ``routechaos replay`` as a user runs them: real lanes, the example
agents as subprocesses, verdicts read from the run directories they write."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.cassette import Cassette
from harness.cli import main
from harness.journal import Journal
from harness.lanes import BackgroundLanes, LaneSet
from harness.profile import LaneSpec, Profile
from harness.simulator import SimSettings

ROOT = Path(__file__).resolve().parents[2]
SCALE = "0.05"


def agent(name: str, calls: int) -> list[str]:
    return [sys.executable, "-m", "examples.agents.run", "--agent", name, "--calls", str(calls)]


def verdicts(run: Path) -> dict[str, str]:
    return {r["name"]: r["verdict"] for r in json.loads((run / "checks.json").read_text())["results"]}


def evidence(run: Path, check: str) -> list[str]:
    res = next(r for r in json.loads((run / "checks.json").read_text())["results"] if r["name"] == check)
    return [e["what"] for e in res["evidence"]]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the agents run as python -m examples.agents.run


def test_a_replayed_drill_fails_the_flawed_agent_again_and_passes_the_fixed_one(tmp_path):
    first, again, fixed = tmp_path / "first", tmp_path / "again", tmp_path / "fixed"
    drill = ["--out", str(first), "--quiet", "--time-scale", "0.2"]  # calls well within the agent's timeouts
    assert main(["drill", "f16-stream-cut", *drill, "--", *agent("accepts_cut_stream", 6)]) == 1
    assert verdicts(first)["no_truncated_success"] == "fail"

    assert main(["replay", str(first), "--out", str(again), "--quiet", "--", *agent("accepts_cut_stream", 6)]) == 1
    assert verdicts(again)["no_truncated_success"] == "fail"
    div = json.loads((again / "divergence.json").read_text())
    old, new = Journal.load(first / "journal.jsonl"), Journal.load(again / "journal.jsonl")
    assert div["same"] and div["matched"] == len(old) >= 6 and div["first"] is None, div
    assert [a.fault_name for a in old.attempts("primary")] == [a.fault_name for a in new.attempts("primary")]
    assert "stream_cut" in [a.fault_name for a in new.attempts("primary")]

    journal = str(first / "journal.jsonl")
    assert main(["replay", journal, "--out", str(fixed), "--quiet", "--", *agent("router", 6)]) == 0
    assert set(verdicts(fixed).values()) == {"pass"}
    div = json.loads((fixed / "divergence.json").read_text())
    assert not div["same"] and div["first"] is not None  # the router retried or fell back: its attempts differ
    cut_first = next(a for a in old.attempts("primary") if a.fault_name == "stream_cut")
    k = [a.id for a in old.attempts("primary")].index(cut_first.id)
    assert Journal.load(fixed / "journal.jsonl").attempts("primary")[k].fault_name == "stream_cut"


def test_replay_refuses_what_is_not_a_drill(tmp_path, capsys):
    assert main(["replay", str(tmp_path), "--", sys.executable, "-c", "pass"]) == 2
    assert "no journal at" in capsys.readouterr().err


def test_record_then_replay_with_a_cut_judged_against_the_recorded_answer(tmp_path):
    sim = SimSettings(tokens_per_second=1000.0, ttft=0.01, answer_tokens=40)
    origin = BackgroundLanes(LaneSet(Profile(name="o", lanes={"o": LaneSpec("o", "openai-chat", simulator=sim)})))
    origin.start()
    try:
        cassette = tmp_path / "openai.jsonl"
        rec = tmp_path / "rec.yaml"
        rec.write_text(
            f"name: rec\nlanes:\n  primary: {{dialect: openai-chat, upstream: '{origin.urls['o']}'}}\n"
            "  stable: {dialect: anthropic, simulator: {ttft: 0.01, answer_tokens: 30}}\n"
            "checks: [no_lost_calls, no_truncated_success]\n"
        )
        run = tmp_path / "rec-run"
        args = ["record", str(rec), "--cassette", str(cassette), "--out", str(run), "--quiet"]
        assert main([*args, "--", *agent("router", 4)]) == 0
    finally:
        origin.stop()
    exchanges = Cassette.load(cassette).exchanges
    # each call once on primary (a router that gave up on a slow primary under load may have sent one to stable)
    assert len(exchanges) >= 3 and all(ex.response.events for ex in exchanges)

    rep = tmp_path / "rep.yaml"
    rep.write_text(
        "name: rep\ntime_scale: 0.5\nlanes:\n  primary: {dialect: openai-chat, replay: openai.jsonl}\n"
        "  stable: {dialect: anthropic, simulator: {ttft: 0.01, answer_tokens: 30}}\n"
        "faults:\n  - {fault: stream_cut, lane: primary, schedule: {nth: [2]}, after_tokens: 10}\n"
        "checks: [no_lost_calls, no_truncated_success]\n"
    )
    flawed, fixed = tmp_path / "flawed", tmp_path / "fixed"
    assert main(["drill", str(rep), "--out", str(flawed), "--quiet", "--", *agent("accepts_cut_stream", 4)]) == 1
    assert verdicts(flawed)["no_truncated_success"] == "fail"
    bad = [w for w in evidence(flawed, "no_truncated_success") if w.startswith("accepted")]
    assert bad and "characters (a prefix of the recorded answer)" in bad[0]  # not the simulator's words
    assert main(["drill", str(rep), "--out", str(fixed), "--quiet", "--", *agent("router", 4)]) == 0
    assert verdicts(fixed)["no_truncated_success"] == "pass"
    assert all(w.startswith("whole answer") for w in evidence(fixed, "no_truncated_success"))
