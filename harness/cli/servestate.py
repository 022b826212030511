"""Where a running ``routechaos serve`` can be found by ``routechaos fault`` in the same directory.

Each serve writes its own state file, ``.routechaos/serve-PID.json`` (name, pid, control URL, lane
URLs), and removes it when it stops; several serves in one directory never overwrite each other.
``fault`` drives the only one running, or the one ``--serve NAME|PID|URL`` selects, and says which
are running when the choice is not clear. The control URL is stored and used as an opaque string
(it may carry a token): only compared, never taken apart.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import UsageError

__all__ = ["STATE_DIR", "choose_serve", "remove_state", "running_serves", "write_state"]

STATE_DIR = Path(".routechaos")


def write_state(state: Mapping[str, Any], directory: Path = STATE_DIR) -> Path | None:
    """Write this process's state file (atomically: a reader never sees half of it); None when
    the directory cannot be written (a serve still runs, it just cannot be found by ``fault``)."""
    path = directory / f"serve-{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    try:
        directory.mkdir(exist_ok=True)
        # it holds the control API's token: readable by this user only
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({**state, "pid": os.getpid()}))
        os.replace(tmp, path)
    except OSError:
        return None
    return path


def remove_state(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def running_serves(directory: Path = STATE_DIR) -> list[dict[str, Any]]:
    """The serves running from ``directory``, oldest first; state files of serves that died
    (``kill -9``) are removed on the way."""
    found = []
    for path in sorted(directory.glob("serve-*.json")):
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(state, dict) or not isinstance(state.get("control"), str):
            continue
        if not _alive(state.get("pid")):
            remove_state(path)
            continue
        found.append(state)
    return sorted(found, key=lambda s: (s.get("started", 0), s["pid"]))


def _describe(state: Mapping[str, Any]) -> str:
    lanes = ", ".join(state.get("lanes") or {})
    return f"  {state.get('name', '?')}  pid {state['pid']}  lanes {lanes}  control {state['control']}"


def _matches(state: Mapping[str, Any], selector: str) -> bool:
    if selector == str(state["pid"]) or selector == state.get("name"):
        return True
    control, wanted = state["control"].rstrip("/"), selector.rstrip("/")
    return control == wanted or control.startswith(wanted + "/") or control.startswith(wanted + "?")


def choose_serve(selector: str | None, directory: Path = STATE_DIR) -> dict[str, Any]:
    """The running serve ``selector`` (a name, a pid, or the control URL) names, or the only one
    running when it is None; a :class:`UsageError` that lists them otherwise."""
    serves = running_serves(directory)
    if selector is None:
        if len(serves) == 1:
            return serves[0]
        if not serves:
            raise UsageError(
                "no running 'routechaos serve' found here (.routechaos/); start one in this directory, "
                "or pass --control URL"
            )
        listing = "\n".join(_describe(s) for s in serves)
        raise UsageError(
            f"{len(serves)} 'routechaos serve' are running here; choose one with --serve NAME|PID|URL:\n{listing}"
        )
    chosen = [s for s in serves if _matches(s, selector)]
    if len(chosen) == 1:
        return chosen[0]
    listing = "\n".join(_describe(s) for s in (chosen or serves)) or "  (none)"
    if chosen:
        raise UsageError(f"--serve {selector} matches {len(chosen)} running serves; choose one by pid:\n{listing}")
    raise UsageError(
        f"--serve {selector}: no running 'routechaos serve' here has that name, pid or URL; running:\n{listing}"
    )
