"""A drill stopped from outside, as CI cancellation, Ctrl-C, `timeout` and `kill -9` stop it.

Real subprocesses and real signals: `routechaos drill` runs an agent (`sh -c`, so the process that
calls the lanes is a grandchild) that streams from a slow lane when the signal comes. Every wait is
bounded; the lanes are simulators on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.journal import Journal
from harness.toxiproxy import ToxiproxyServer
from harness.toxiproxy.client import ToxiproxyClient

CLI = [sys.executable, "-m", "harness.cli"]

PROFILE = """
name: interrupted
lanes:
  fast: {dialect: openai, simulator: {tokens_per_second: 5000, answer_tokens: 4, ttft: 0.0}}
  slow: {dialect: openai, simulator: {tokens_per_second: 2, answer_tokens: 400, ttft: 0.0}}
checks:
  - no_lost_calls: {}
"""
# the slow lane behind a Toxiproxy proxy, to see the drill remove it
TOXICS = """
toxics:
  - {lane: slow, type: latency, attributes: {latency: 1}}
"""

# one quick call, then a stream that lasts minutes: the signal comes while it is open
AGENT = textwrap.dedent(
    """
    import os, sys, time, httpx
    from pathlib import Path
    here = Path(sys.argv[1])
    (here / "agent.pid").write_text(str(os.getpid()))
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    fast, slow = os.environ["ROUTECHAOS_LANE_FAST_URL"], os.environ["ROUTECHAOS_LANE_SLOW_URL"]
    print(httpx.post(fast + "/v1/chat/completions", json=body, timeout=30).status_code, flush=True)
    with httpx.stream("POST", slow + "/v1/chat/completions", json={**body, "stream": True}, timeout=120) as r:
        for chunk in r.iter_bytes():
            (here / "streaming").touch()
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    """Alive and not a zombie (where nothing reaps orphans, a dead grandchild stays a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"drill ended early: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


@pytest.fixture
def toxiproxy():
    """A Toxiproxy server outside the drill, as a shared one in CI is: what the drill leaves
    behind there is visible after the drill is gone."""
    with ToxiproxyServer.run_in_thread() as handle:
        yield handle.url


def _start_drill(tmp_path: Path, toxiproxy_url: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "p.yaml").write_text(PROFILE + TOXICS)
    (tmp_path / "agent.py").write_text(AGENT)
    run = tmp_path / "run"
    agent = f"{sys.executable} agent.py {tmp_path}; echo agent-finished"  # a grandchild: sh forks
    proc = subprocess.Popen(
        [*CLI, "drill", "p.yaml", "--out", str(run), "--quiet", "--grace", "5", *extra, "--", "sh", "-c", agent],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TOXIPROXY_URL": toxiproxy_url, "COLUMNS": "200"},
    )
    return proc, run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_drill_cleanly_with_everything_written(tmp_path, toxiproxy, sig):
    proc, run = _start_drill(tmp_path, toxiproxy)
    try:
        _wait_for(tmp_path / "streaming", proc)
        assert set(ToxiproxyClient(toxiproxy).proxies())  # the slow lane's proxy is up
        agent_pid = int((tmp_path / "agent.pid").read_text())
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, output
    name = signal.Signals(sig).name

    journal = Journal.load(run / "journal.jsonl")
    (stop,) = journal.marks("drill_stop")
    assert stop.detail["interrupted"] is True and stop.detail["reason"] == name
    assert journal.interruption() == name
    by_lane = {a.lane: a for a in journal.attempts()}
    assert by_lane["fast"].outcome == "ok"
    assert by_lane["slow"].outcome == "unknown"  # open when the signal came: journaled, never a verdict
    assert by_lane["slow"].tokens > 0

    checks = json.loads((run / "checks.json").read_text())
    assert checks["interrupted"] == name and checks["results"]
    assert 'id="interrupted"' in (run / "report.html").read_text()
    assert f"drill interrupted ({name})" in output and "verdict:" in output  # the summary, marked

    assert ToxiproxyClient(toxiproxy).proxies() == {}  # its proxies removed from the shared server
    assert not _alive(agent_pid)  # the grandchild that called the lanes is gone too
    assert "agent-finished" not in (run / "agent.log").read_text()  # sh was ended, not left to go on


def test_timeout_ends_the_whole_process_tree(tmp_path):
    (tmp_path / "p.yaml").write_text(PROFILE)
    pidfile = tmp_path / "sleep.pid"
    # sh forks sleep (the command after it keeps sh from exec'ing it) and records its pid
    agent = f"sleep 47 & echo $! > {pidfile}; wait; echo after"
    t0 = time.monotonic()
    proc = subprocess.run(
        [*CLI, "drill", "p.yaml", "--out", "run", "--quiet", "--timeout", "2", "--", "sh", "-c", agent],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "did not finish within 2s" in proc.stdout
    sleep_pid = int(pidfile.read_text())
    assert not _alive(sleep_pid), "the grandchild outlived the drill"
    assert time.monotonic() - t0 < 47
    journal = Journal.load(tmp_path / "run" / "journal.jsonl")
    assert journal.interruption() == "timeout"
    assert json.loads((tmp_path / "run" / "checks.json").read_text())["interrupted"] == "timeout"


def test_an_agent_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    (tmp_path / "p.yaml").write_text(PROFILE)
    pidfile = tmp_path / "sleep.pid"
    agent = f"trap '' TERM; sleep 47 & echo $! > {pidfile}; wait; echo after"
    drill = [*CLI, "drill", "p.yaml", "--out", "run", "--quiet", "--timeout", "1", "--grace", "0.5"]
    proc = subprocess.run(
        [*drill, "--", "sh", "-c", agent],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not _alive(int(pidfile.read_text()))
    assert "after" not in (tmp_path / "run" / "agent.log").read_text()  # SIGKILL: sh never went on


def test_report_says_a_drill_killed_with_sigkill_was_cut_short(tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(PROFILE)
    (tmp_path / "agent.py").write_text(AGENT)
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [*CLI, "drill", "p.yaml", "--out", str(run), "--quiet", "--", sys.executable, "agent.py", str(tmp_path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(tmp_path / "streaming", proc)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        # routechaos ran no code after SIGKILL: the agent, in its own session, is ended here
        agent = int((tmp_path / "agent.pid").read_text())
        os.kill(agent, signal.SIGKILL)
    assert main(["report", str(run / "journal.jsonl"), "--out", str(tmp_path / "again.html")]) in (0, 1)
    out = capsys.readouterr().out
    assert "cut short" in out and "no drill_stop" in out
    assert 'id="interrupted"' in (tmp_path / "again.html").read_text()


PLUGIN_TEST = textwrap.dedent(
    """
    import os, signal, httpx, pytest

    @pytest.mark.chaos_profile("interrupted.yaml")
    def test_interrupted(chaos):
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(chaos.url("fast") + "/v1/chat/completions", json=body, timeout=30).status_code == 200
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the terminal sends it, mid-test
    """
)


def test_pytest_plugin_on_ctrl_c_keeps_the_journal_and_writes_the_report_marked_interrupted(tmp_path):
    (tmp_path / "interrupted.yaml").write_text(PROFILE)
    (tmp_path / "test_drill.py").write_text(PLUGIN_TEST)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "harness.pytest_plugin",  # and no other plugin: a lighter pytest to start
            "test_drill.py",
            "--routechaos-profile-dir",
            str(tmp_path),
            "--routechaos-journal-dir",
            "journals",
            "--routechaos-report-dir",
            "reports",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr  # pytest's "interrupted"
    (path,) = (tmp_path / "journals").glob("*.jsonl")
    journal = Journal.load(path)
    assert journal.interruption() == "SIGINT"
    assert [a.outcome for a in journal.attempts()] == ["ok"]
    (report,) = (tmp_path / "reports").glob("*.html")
    assert 'id="interrupted"' in report.read_text()
