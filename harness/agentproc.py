"""An agent subprocess in its own process group, so that ending it ends everything it started.

The command a drill runs is often not the process that calls the lanes: ``sh -c '...'``,
``npm test``, ``uv run agent.py`` start children of their own. Killing the direct child leaves
those grandchildren running (still calling lanes that are gone, holding ports, writing to the run
directory). So the agent starts in a new session, the leader of its own process group, and is
ended as a group: SIGTERM to every process in it, then SIGKILL after a grace period to whatever
is still alive. The new session also has no controlling terminal, so a Ctrl-C typed at the
terminal reaches routechaos alone, which then ends the agent this way.

A process that starts a session of its own (a daemon that calls ``setsid``) leaves the group and
is out of reach; so is everything after ``kill -9`` of routechaos itself, which runs no code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["GRACE", "AgentProcess"]

#: seconds an agent has between SIGTERM and SIGKILL
GRACE = 5.0
_POSIX = hasattr(os, "killpg")
_PROC = Path("/proc")


def _live_members(pgid: int) -> Iterator[int]:
    """Pids of the processes in group ``pgid`` that are not zombies (Linux ``/proc``)."""
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            yield int(entry.name)


class AgentProcess:
    """``subprocess.Popen`` in a new session; :meth:`end` ends the whole process group."""

    def __init__(self, command: Sequence[str], **popen: Any) -> None:
        if _POSIX:
            popen["start_new_session"] = True
        self.proc = subprocess.Popen(list(command), **popen)
        self.pgid = self.proc.pid  # a session leader's pid is its process group's id

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        """The agent's exit status (``subprocess.TimeoutExpired`` after ``timeout`` seconds)."""
        return self.proc.wait(timeout)

    def group_alive(self) -> bool:
        """True while any process of the agent's group is alive (the agent itself, once reaped,
        no longer counts; a child it left behind does). A zombie is not alive: where no init
        reaps orphans (some containers), a dead grandchild stays a zombie in the group forever."""
        if not _POSIX:
            return self.proc.poll() is None
        self.proc.poll()  # reap the leader if it exited
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # a member changed its user id: still alive
            return True
        return not _PROC.is_dir() or next(_live_members(self.pgid), None) is not None

    def _signal(self, sig: int) -> None:
        try:
            if _POSIX:
                os.killpg(self.pgid, sig)
            elif self.proc.poll() is None:
                self.proc.kill() if sig == getattr(signal, "SIGKILL", None) else self.proc.terminate()
        except (ProcessLookupError, PermissionError):
            pass

    def end(self, grace: float = GRACE, hurry: threading.Event | None = None) -> int:
        """End the agent and every process in its group; returns the agent's exit status.

        SIGTERM first (also when the agent already exited: processes it left behind are ended
        too), then SIGKILL for what is alive after ``grace`` seconds, or at once when ``hurry`` is
        set (a second Ctrl-C). Bounded: returns within ``grace`` plus about a second even if a
        member never dies (a zombie no one reaps)."""
        if self.group_alive():
            self._signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            while self.group_alive() and time.monotonic() < deadline:
                if hurry is not None and hurry.is_set():
                    break
                time.sleep(0.02)
            if self.group_alive():
                self._signal(getattr(signal, "SIGKILL", signal.SIGTERM))
                deadline = time.monotonic() + 1.0
                while self.group_alive() and time.monotonic() < deadline:
                    time.sleep(0.01)
        try:
            return self.proc.wait(1.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            return self.proc.returncode if self.proc.returncode is not None else -9

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()
