"""The processes a benchmark runs, and what /proc says about them.

Every path under test is hosted by a process of its own (the simulator by another, the load
generator is the benchmark itself), so the CPU a path costs is read from that process alone:
``/proc/<pid>/stat`` (user + system time, in clock ticks) for every thread of it. Children print
one JSON line when ready and serve until their stdin closes (the benchmark exited) or SIGTERM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # benchmarks/
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    info: dict[str, Any]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            except OSError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)


def spawn(kind: str, *args: str) -> Child:
    """Start ``benchlib.servers`` as ``kind`` and wait for its ready line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _HERE + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchlib.servers", kind, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        line = _readline_with_timeout(proc, STARTUP_TIMEOUT)
        if not line:
            raise RuntimeError(f"{kind} server exited before it was ready (rc={proc.poll()})")
        info = json.loads(line)
    except BaseException:
        proc.kill()
        proc.wait(5.0)
        raise
    return Child(kind, proc, info)


def _readline_with_timeout(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    box: list[bytes] = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    t.start()
    t.join(timeout)
    if not box:
        raise TimeoutError("server did not start in time")
    return box[0]


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads), from ``/proc/<pid>/stat``."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, ValueError, IndexError):
        return None


def rss_mib(pid: int | None) -> float | None:
    """Resident memory (VmRSS) of ``pid`` in MiB."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def pid_listening_on(port: int) -> int | None:
    """The pid of the process (of this user) holding a TCP socket listening on ``port``: how
    the Toxiproxy column finds the server whose CPU it reads (or set ``TOXIPROXY_PID``)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                        inodes.add(parts[9])
        except (OSError, StopIteration, IndexError, ValueError):
            continue
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return int(pid)
        except OSError:
            continue
    return None


# -- Toxiproxy's HTTP API (a real server at $TOXIPROXY_URL, or the embedded one) ------------------


def toxiproxy_api(url: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def toxiproxy_create(url: str, targets: list[int]) -> tuple[list[int], list[str]]:
    """One proxy per target port, no toxics, listening on an ephemeral loopback port
    (``POST /proxies`` with ``listen: 127.0.0.1:0``, which answers the port it bound)."""
    names: list[str] = []
    ports: list[int] = []
    tag = uuid.uuid4().hex[:8]
    try:
        for i, port in enumerate(targets):
            name = f"routechaos_bench_{tag}_{i}"
            obj = toxiproxy_api(
                url, "POST", "/proxies", {"name": name, "listen": f"{HOST}:0", "upstream": f"{HOST}:{port}"}
            )
            names.append(name)
            ports.append(int(str(obj["listen"]).rsplit(":", 1)[1]))
    except BaseException:
        toxiproxy_delete(url, names)
        raise
    return ports, names


def toxiproxy_delete(url: str, names: list[str]) -> None:
    for name in names:
        try:
            toxiproxy_api(url, "DELETE", f"/proxies/{name}")
        except OSError:
            pass


def toxiproxy_pid(url: str) -> int | None:
    env = os.environ.get("TOXIPROXY_PID")
    if env and env.isdigit():
        return int(env)
    try:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
    except (IndexError, ValueError):
        return None
    return pid_listening_on(port)
