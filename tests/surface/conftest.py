"""Fixtures for the harness's outside surfaces: a control API on running lanes, raw HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from harness.control import ControlServer
from harness.lanes import BackgroundLanes
from harness.profile import profile_from_dict

FAST = {"tokens_per_second": 5000, "ttft": 0.0, "answer_tokens": 8}
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


@pytest.fixture
def controlled(start_lanes) -> Iterator[tuple[BackgroundLanes, ControlServer]]:
    """Two simulated lanes (openai, anthropic) with a started control API."""
    bg = start_lanes(
        profile_from_dict(
            {"lanes": {"a": {"dialect": "openai", "simulator": FAST}, "b": {"dialect": "anthropic", "simulator": FAST}}}
        )
    )
    control = ControlServer(bg.lanes)
    bg.call(control.start)
    yield bg, control
    bg.call(control.stop)


def raw_http(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``data`` as is on a fresh connection; read one response (to its Content-Length, or
    until the server closes). A server that answers before reading everything may reset the
    connection under the rest of ``data``: what it answered is still returned."""
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                raw += chunk
                head, sep, body = raw.partition(b"\r\n\r\n")
                if sep:
                    length = _content_length(head)
                    if length is not None and len(body) >= length:
                        break
        except (TimeoutError, ConnectionResetError):
            pass
    return raw


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return None


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-cased headers, body) of one HTTP/1.x response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body
