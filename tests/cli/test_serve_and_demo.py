"""The command line as a new user meets it: serve, demo, and clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx

from harness.cli import main

CLI = [sys.executable, "-m", "harness.cli"]


def test_serve_prints_one_line_per_lane_then_serves_until_interrupted(tmp_path):
    journal = tmp_path / "serve.jsonl"
    proc = subprocess.Popen([*CLI, "serve", "--journal", str(journal)], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline().split() for _ in range(2)]
        assert [(w[0], w[1], w[2]) for w in lines] == [
            ("lane", "primary", "openai-chat"),
            ("lane", "stable", "anthropic"),
        ]
        urls = {w[1]: w[3] for w in lines}
        control = proc.stdout.readline().split()
        assert control[0] == "control"
        body = {"model": "c", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        r = httpx.post(urls["stable"] + "/v1/messages", json=body, timeout=10)
        assert r.status_code == 200 and r.json()["stop_reason"] == "max_tokens"
        # flip a fault live from "another terminal"
        assert main(["fault", "--control", control[1], "add", "overloaded", "--lane", "stable", "--name", "x"]) == 0
        assert httpx.post(urls["stable"] + "/v1/messages", json=body, timeout=10).status_code == 529
        assert main(["fault", "--control", control[1], "add", "overloaded", "--lane", "nope"]) == 2
        assert main(["fault", "--control", control[1], "remove", "x"]) == 0
        assert httpx.post(urls["stable"] + "/v1/messages", json=body, timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    assert '"lane": "stable"' in journal.read_text()


def test_demo_streams_through_both_lanes_then_drills_the_example_router(tmp_path):
    """README's first command: both lanes stream, then a drill of examples/ writes its report."""
    out = subprocess.run(
        [*CLI, "demo", "--out", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "200"},
        cwd=tmp_path,  # not the repository: the demo must find its example agent by itself
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "lane primary openai-chat" in out.stdout and "lane stable anthropic" in out.stdout
    assert out.stdout.count("end=complete") == 2
    assert "PASS    no_lost_calls" in out.stdout and "fallback_within" in out.stdout
    report = (tmp_path / "demo" / "report.html").read_text()
    assert "ultraspeed-capacity-loss" in report and 'id="timeline"' in report


def test_unknown_profile_is_a_usage_error(capsys):
    assert main(["serve", "no-such-profile"]) == 2
    assert "profile 'no-such-profile' not found" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_serve_with_toxiproxy_lets_a_toxiproxy_client_add_network_faults(tmp_path):
    """`serve --toxiproxy`: every lane behind a proxy named after it; a Toxiproxy client adds a
    latency toxic by hand and the lane's URL feels it."""
    import time

    from harness.toxiproxy.client import ToxiproxyClient

    proc = subprocess.Popen([*CLI, "serve", "--toxiproxy"], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        lines = [proc.stdout.readline().split() for _ in range(4)]
        urls = {w[1]: w[3] for w in lines if w[0] == "lane"}
        api = next(w[1] for w in lines if w[0] == "toxiproxy")
        client = ToxiproxyClient(api)
        assert set(client.proxies()) == {"primary", "stable"}
        assert client.get_proxy("stable").port == int(urls["stable"].rsplit(":", 1)[1])
        body = {"model": "c", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
        client.add_toxic("stable", "latency", attributes={"latency": 300})
        t0 = time.monotonic()
        assert httpx.post(urls["stable"] + "/v1/messages", json=body, timeout=10).status_code == 200
        assert time.monotonic() - t0 >= 0.3
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
