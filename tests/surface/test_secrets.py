"""Known fake keys sent through every path leave no trace in any artifact of the run.

Paths: request headers of every major provider and cloud, query parameters, the request body,
an upstream's 401 that echoes the credentials it got, a forwarding lane, an oversized
``Authorization`` header, an agent's exception text (in-process through ``Drill.call``, and from
another process through ``POST /calls``). Artifacts: journal.jsonl, ``GET /journal``,
checks.json, report.html, the drill's stdout and stderr, and pytest's output. (The agent's own
agent.log is what the agent printed: this agent prints no key.)

Before: ``?access_token=``, ``x-amz-security-token``, ``ocp-apim-subscription-key``, a key echoed
in an upstream 401 body, ``?key=`` inside an exception text and an oversized ``Authorization``
header were stored or printed in clear.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness import redact

# Built at run time, so that no source line pytest might print holds one whole.
KEYS = {
    "openai": "sk-proj-" + "Zt4q" * 10,
    "anthropic": "sk-ant-api03-" + "Qx7_" * 10 + "AA",
    "google": "AIzaSy" + "B1c2D3e4F5g6H7i8J9k0L1m2N3o4P5q6R",
    "google_oauth": "ya29." + "a0AfH6SM" * 4,
    "aws_key_id": "AKIA" + "Q5X2" * 4,
    "aws_session": "FwoGZXIvYXdzE" + "Lm9" * 12,
    "aws_signature": "fe5f80f77d5f" * 5 + "a3be",
    "azure": "7c1e" * 8,  # 32 hex digits: no shape to recognise, only its header
    "apim": "9d2f" * 8,
    "access_token": "opaque" + "Tok3n" * 5,
    "custom_bearer": "zz" + "Cust0m" * 5,
}
UNSHAPED = ("azure", "apim", "access_token", "custom_bearer", "aws_session", "aws_signature")
SIGV4 = (
    f"AWS4-HMAC-SHA256 Credential={KEYS['aws_key_id']}/20260101/us-east-1/bedrock/aws4_request, "
    f"SignedHeaders=host;x-amz-date, Signature={KEYS['aws_signature']}"
)
HEADERS = {
    "Authorization": f"Bearer {KEYS['openai']}",
    "x-api-key": KEYS["anthropic"],
    "x-goog-api-key": KEYS["google"],
    "api-key": KEYS["azure"],
    "Ocp-Apim-Subscription-Key": KEYS["apim"],
    "X-Amz-Security-Token": KEYS["aws_session"],
    "X-Custom-Token": KEYS["custom_bearer"],
    "X-Debug": f"forwarded for {KEYS['google_oauth']}",
}
QUERY = (
    f"?access_token={KEYS['access_token']}&key={KEYS['google']}"
    f"&X-Amz-Credential={KEYS['aws_key_id']}%2F20260101&X-Amz-Signature={KEYS['aws_signature']}"
)
EXCEPTION_TEXT = (
    f"401 Unauthorized for url 'https://generativelanguage.googleapis.com/v1beta/models/m:generateContent"
    f"?key={KEYS['google']}' (Authorization: Bearer {KEYS['openai']}; api-key {KEYS['azure']}; {SIGV4})"
)


class EchoProvider(BaseHTTPRequestHandler):
    """A provider that answers 401 quoting every credential it was sent (some do, in part)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        got = [f"{k}={v}" for k, v in self.headers.items() if k.lower() not in ("host", "content-length")]
        body = {"error": {"message": f"Incorrect API key provided: {'; '.join(got)} path={self.path}"}}
        data = json.dumps(body).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoProvider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    yield
    redact.forget_all()


def _leaks(text: str) -> list[str]:
    return [name for name, key in KEYS.items() if key in text]


AGENT = textwrap.dedent(
    """
    import json, os, socket, sys
    import httpx
    KEYS, HEADERS, QUERY, EXCEPTION_TEXT = json.loads(os.environ["SURFACE_SECRETS"])
    fwd, sim, gem = (os.environ[f"ROUTECHAOS_LANE_{n}_URL"] for n in ("FWD", "SIM", "GEM"))
    chat = {"model": KEYS["openai"], "messages": [{"role": "user", "content": "my key is " + KEYS["anthropic"]}]}
    # a forwarding lane: the provider echoes every credential in its 401
    assert httpx.post(fwd + "/v1/chat/completions" + QUERY, json=chat, headers=HEADERS).status_code == 401
    # headers, query and body on a simulated lane
    assert httpx.post(sim + "/v1/chat/completions" + QUERY, json=chat, headers=HEADERS).status_code == 200
    body = {"contents": [{"role": "user", "parts": [{"text": KEYS["google"]}]}]}
    assert httpx.post(gem + "/v1beta/models/m:generateContent" + QUERY, json=body).status_code == 200
    # a request whose JSON cannot be parsed, quoting a key in the bad part
    bad = b'{"model": "' + KEYS["openai"].encode() + b'", "messages": [NaN]}'
    assert httpx.post(sim + "/v1/chat/completions", content=bad, headers=HEADERS).status_code == 400
    # an oversized Authorization header
    host, port = sim.split("//")[1].split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer "
                  + KEYS["openai"].encode() * 40000 + b"\\r\\n\\r\\n")
        assert s.recv(100).startswith(b"HTTP/1.0 400")
    control = os.environ["ROUTECHAOS_CONTROL_URL"]
    call = {"id": "c1", "outcome": "error", "error": EXCEPTION_TEXT, "error_type": "AuthenticationError"}
    assert httpx.post(control + "/calls", json=call).status_code == 201
    with open(os.environ["SURFACE_JOURNAL_OUT"], "w") as fh:
        fh.write(httpx.get(control + "/journal").text + httpx.get(control + "/marks").text)
    """
)


def test_no_key_reaches_any_artifact_of_a_cli_drill(tmp_path: Path, echo_provider: str):
    profile = tmp_path / "secrets.yaml"
    profile.write_text(
        textwrap.dedent(
            f"""
            name: secrets
            lanes:
              fwd: {{dialect: openai, upstream: "{echo_provider}"}}
              sim: {{dialect: openai, simulator: {{ttft: 0, answer_tokens: 4, tokens_per_second: 5000}}}}
              gem: {{dialect: gemini, simulator: {{ttft: 0, answer_tokens: 4, tokens_per_second: 5000}}}}
            checks: [no_lost_calls]
            """
        )
    )
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    out_dir = tmp_path / "run"
    journal_out = tmp_path / "get-journal.json"
    env = {
        **__import__("os").environ,
        "SURFACE_SECRETS": json.dumps([KEYS, HEADERS, QUERY, EXCEPTION_TEXT]),
        "SURFACE_JOURNAL_OUT": str(journal_out),
    }
    argv = [sys.executable, "-m", "harness.cli", "drill", str(profile), "--out", str(out_dir)]  # live view on
    proc = subprocess.run(
        [*argv, "--", sys.executable, str(agent), f"--api-key={KEYS['openai']}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (out_dir / "agent.log").read_text() == "", (out_dir / "agent.log").read_text()
    # the reported call failed cleanly, and the attempts made outside it leave no_lost_calls UNKNOWN
    # (its evidence, printed too, is scanned below)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "tied to no call" in proc.stdout
    artifacts = {
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "GET /journal": journal_out.read_text(),
        **{p.name: p.read_text(encoding="utf-8") for p in out_dir.iterdir()},
    }
    assert {"journal.jsonl", "checks.json", "report.html"} <= set(artifacts)
    for name, text in artifacts.items():
        assert _leaks(text) == [], f"{name} holds {_leaks(text)}"
    journal = artifacts["journal.jsonl"]
    assert journal.count("[redacted]") >= 10 and "Incorrect API key provided" in journal  # the echo is kept


PYTEST_FILE = textwrap.dedent(
    """
    import json, os
    import httpx

    KEYS, HEADERS, QUERY, EXCEPTION_TEXT = json.loads(os.environ["SURFACE_SECRETS"])

    def test_agent_with_leaky_errors(chaos_factory):
        drill = chaos_factory({
            "lanes": {"a": {"dialect": "openai", "upstream": os.environ["SURFACE_ECHO"]},
                      "b": {"dialect": "anthropic", "simulator": {"ttft": 0, "answer_tokens": 4}}},
            "checks": [{"no_lost_calls": {"budget": 1e-6}}],  # fails: the evidence is printed
        })
        body = {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "q"}]}

        def call_a():
            r = httpx.post(drill.url("a") + "/v1/chat/completions" + QUERY, json=body, headers=HEADERS)
            raise RuntimeError(EXCEPTION_TEXT + " " + r.text)

        def call_b():
            return httpx.post(drill.url("b") + "/v1/messages" + QUERY, json=body, headers=HEADERS).json()

        drill.call(call_a)
        drill.call(call_b)
        drill.assert_graceful()
    """
)


def test_no_key_reaches_pytest_output_or_the_plugins_artifacts(tmp_path: Path, echo_provider: str):
    (tmp_path / "test_leaky.py").write_text(PYTEST_FILE)
    env = {
        **__import__("os").environ,
        "SURFACE_SECRETS": json.dumps([KEYS, HEADERS, QUERY, EXCEPTION_TEXT]),
        "SURFACE_ECHO": echo_provider,
    }
    journals, reports = tmp_path / "journals", tmp_path / "reports"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-vv",
            "--tb=long",
            "-rA",
            f"--routechaos-journal-dir={journals}",
            f"--routechaos-report-dir={reports}",
            str(tmp_path / "test_leaky.py"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "degradation was not graceful" in output, output[-3000:]
    assert "RuntimeError" in output and "[redacted]" in output  # the call's error is shown, redacted
    assert _leaks(output) == [], f"pytest output holds {_leaks(output)}"
    files = [*journals.iterdir(), *reports.iterdir()]
    assert files
    for path in files:
        assert _leaks(path.read_text(encoding="utf-8")) == [], f"{path.name} holds {_leaks(path.read_text())}"


@pytest.mark.parametrize("name", list(KEYS))
def test_each_key_shape_is_redacted_in_free_text(name):
    """A key-shaped value is caught wherever it stands, except the two with no shape (Azure's and
    APIM's hex keys, the opaque token), which are caught by the header or parameter naming them."""
    key = KEYS[name]
    if name in UNSHAPED:
        named = {
            "azure": f"api-key: {key}",
            "apim": f"Ocp-Apim-Subscription-Key: {key}",
            "access_token": f"?access_token={key}",
            "custom_bearer": f"Authorization: Bearer {key}",
            "aws_session": f"x-amz-security-token={key}",
            "aws_signature": f"Signature={key}",
        }[name]
        assert key not in redact.redact_text(f"failed ({named}) retrying")
    else:
        assert key not in redact.redact_text(f"failed with {key}, retrying")


def test_a_remembered_credential_is_caught_without_a_shape():
    redact.redact_headers({"api-key": KEYS["azure"]})
    assert redact.redact_text(f"The key {KEYS['azure']} is not valid") == "The key [redacted] is not valid"
    assert redact.redact_text("routechaos") == "routechaos"  # short values are never remembered


def test_the_cheap_gate_lets_every_shape_through():
    """The gate that spares most strings the full rules must know every shape's first letter."""
    import re

    for alternative in redact._SHAPES.split("|"):
        first = re.match(r"\[([^\]]+)\]|(.)", alternative)
        assert first is not None
        letters = first.group(1) or first.group(2)
        assert set(letters) <= set(redact._SHAPE_FIRST), alternative
    for name in set(KEYS) - set(UNSHAPED):
        assert redact._MAYBE.search(f"x {KEYS[name]}") is not None
