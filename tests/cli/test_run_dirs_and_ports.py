"""Run directories that are never shared, ports that say whose they are, and several serves at once.

Tried as a new user would: two drills of one profile started in the same second, a `--out` used
twice, a port already taken (by `drill`, `serve`, `sim`, `toxiproxy`), and two `routechaos serve`
in one directory driven by `routechaos fault` from another terminal.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from harness.cli import main
from harness.cli.drill import claim_run_dir
from harness.journal import Journal
from harness.profile import profile_from_dict

CLI = [sys.executable, "-m", "harness.cli"]

PROFILE = """
name: tiny
lanes:
  a: {dialect: openai, simulator: {tokens_per_second: 5000, answer_tokens: 4, ttft: 0.0}}
checks:
  - no_lost_calls: {}
"""
AGENT = """
import os, httpx
url = os.environ["ROUTECHAOS_LANE_A_URL"] + "/v1/chat/completions"
print(httpx.post(url, json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}, timeout=10).status_code)
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "p.yaml").write_text(PROFILE)
    (tmp_path / "agent.py").write_text(AGENT)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- run directories ----------------------------------------------------------------------------
def test_run_directories_claimed_in_one_second_are_distinct(project, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20250101-120000")  # all in one second
    profile = profile_from_dict({"name": "same/second", "lanes": {"a": {"dialect": "openai"}}})
    dirs = [claim_run_dir(None, profile) for _ in range(3)]
    assert len(set(dirs)) == 3 and all(d.is_dir() for d in dirs)
    assert [d.name for d in dirs] == [
        "same_second-20250101-120000",
        "same_second-20250101-120000-2",
        "same_second-20250101-120000-3",
    ]


def test_two_drills_of_one_profile_started_at_once_keep_separate_runs(project):
    procs = [
        subprocess.Popen(
            [*CLI, "drill", "p.yaml", "--quiet", "--", sys.executable, "agent.py"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = sorted((project / "routechaos-runs").iterdir())
    assert len(runs) == 2
    for run in runs:
        journal = Journal.load(run / "journal.jsonl")
        assert len(journal.marks("drill_start")) == 1 and not journal.warnings
        assert len(journal.attempts()) == 1
        assert (run / "agent.log").read_text().strip() == "200"


def test_an_out_that_holds_a_run_is_refused_and_left_as_it_was(project, capsys):
    drill = ["drill", "p.yaml", "--out", "run", "--quiet", "--", sys.executable, "agent.py"]
    assert main(drill) == 0
    before = {p.name: p.read_bytes() for p in (project / "run").iterdir()}
    capsys.readouterr()
    assert main(drill) == 2
    err = capsys.readouterr().err
    assert "--out run already holds a run" in err and "journal.jsonl" in err
    assert {p.name: p.read_bytes() for p in (project / "run").iterdir()} == before


def test_serve_refuses_a_journal_that_exists(project, capsys):
    (project / "old.jsonl").write_text('{"type": "journal", "wall0": 0, "version": 1}\n')
    assert main(["serve", "p.yaml", "--journal", "old.jsonl"]) == 2
    assert "journal old.jsonl already exists" in capsys.readouterr().err


# -- ports --------------------------------------------------------------------------------------
@contextmanager
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.mark.parametrize("command", ["drill", "serve"])
def test_a_lane_whose_port_is_taken_is_named_and_exit_3(project, capsys, command):
    with taken_port() as port:
        (project / "fixed.yaml").write_text(
            f"lanes:\n  free: {{dialect: openai}}\n  premium: {{dialect: openai, port: {port}}}\n"
        )
        argv = ["drill", "fixed.yaml", "--out", "run", "--", "true"] if command == "drill" else ["serve", "fixed.yaml"]
        assert main(argv) == 3
    err = capsys.readouterr().err
    assert f"lane premium cannot listen on 127.0.0.1:{port}: the port is already in use" in err


def test_serve_control_port_taken_is_named_and_exit_3(project, capsys):
    with taken_port() as port:
        assert main(["serve", "p.yaml", "--control-port", str(port)]) == 3
    assert f"the control API cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["sim", "toxiproxy"])
def test_sim_and_toxiproxy_name_their_taken_port_and_exit_3(project, command):
    with taken_port() as port:
        proc = subprocess.run(
            [*CLI, command, "--port", str(port)], cwd=project, capture_output=True, text=True, timeout=60
        )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    what = "lane sim" if command == "sim" else "the API"
    assert f"{what} cannot listen on 127.0.0.1:{port}: the port is already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- several serves in one directory ------------------------------------------------------------
def _serve(project: Path, name: str) -> tuple[subprocess.Popen, dict[str, str]]:
    proc = subprocess.Popen(
        [*CLI, "serve", "--name", name], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    urls = {}
    for _ in range(3):  # two lanes, then the control API
        words = proc.stdout.readline().split()
        assert words, "serve ended before it was up"
        urls[words[1] if words[0] == "lane" else "control"] = words[3] if words[0] == "lane" else words[1]
    deadline = time.monotonic() + 30
    while not (project / ".routechaos" / f"serve-{proc.pid}.json").exists():
        assert time.monotonic() < deadline, "no state file"
        time.sleep(0.05)
    return proc, urls


def _status(lane_url: str) -> int:
    body = {"model": "c", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(lane_url + "/v1/messages", json=body, timeout=10).status_code


def test_several_serves_in_one_directory_are_each_driven_by_fault(project, capsys, monkeypatch):
    monkeypatch.delenv("ROUTECHAOS_CONTROL_URL", raising=False)
    a, a_urls = _serve(project, "a")
    b, b_urls = _serve(project, "b")
    try:
        assert main(["fault", "list"]) == 2  # which one? the message lists both
        err = capsys.readouterr().err
        assert "2 'routechaos serve' are running here" in err and "--serve" in err
        assert f"pid {a.pid}" in err and f"pid {b.pid}" in err

        assert main(["fault", "--serve", "a", "add", "overloaded", "--lane", "stable", "--name", "x"]) == 0
        assert _status(a_urls["stable"]) == 529 and _status(b_urls["stable"]) == 200
        assert main(["fault", "--serve", str(b.pid), "add", "overloaded", "--lane", "stable"]) == 0
        assert _status(b_urls["stable"]) == 529
        assert main(["fault", "--serve", a_urls["control"], "remove", "x"]) == 0
        assert _status(a_urls["stable"]) == 200
        capsys.readouterr()
        assert main(["fault", "--serve", "c", "list"]) == 2
        assert "no running 'routechaos serve' here has that name" in capsys.readouterr().err

        a.send_signal(signal.SIGINT)
        assert a.wait(timeout=30) == 0
        assert not (project / ".routechaos" / f"serve-{a.pid}.json").exists()
        assert main(["fault", "list"]) == 0  # one left: no choice to make
        assert "overloaded on stable" in capsys.readouterr().out

        b.kill()  # kill -9: its state file stays behind, and is recognised as stale
        b.wait(timeout=30)
        assert main(["fault", "list"]) == 2
        assert "no running 'routechaos serve' found here" in capsys.readouterr().err
        assert not list((project / ".routechaos").glob("serve-*.json"))
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def test_the_state_file_keeps_the_control_url_as_written(project, monkeypatch):
    """The control URL is an opaque string (it may carry a token): `fault` uses it as stored."""
    from harness.cli.servestate import choose_serve, write_state

    url = "http://127.0.0.1:1/t0k3n"
    write_state({"name": "x", "control": url, "lanes": {}})
    state = json.loads((project / ".routechaos" / f"serve-{os.getpid()}.json").read_text())
    assert state["control"] == url and state["pid"] == os.getpid()
    assert choose_serve(None)["control"] == url
    assert choose_serve("http://127.0.0.1:1")["control"] == url  # the address alone selects it
