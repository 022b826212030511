"""The fuzz targets, declared once: the normal suite (``test_fuzz.py``) runs a few hundred examples
of each, and ``python -m benchmarks.fuzz`` runs ten thousand or more.

A target is a strategy and a property (``check(example)`` raises ``AssertionError``, or any other
exception, when the harness misbehaves), and a context that starts what the property talks to (a
lane, a control API, an embedded Toxiproxy: real sockets on loopback) once for all examples.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from . import fuzz_http, fuzz_journal, fuzz_profiles

Check = Callable[[Any], None]


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    strategy: st.SearchStrategy[Any]
    #: a context manager giving the property function (servers started, temp dirs made)
    open: Callable[[], contextlib.AbstractContextManager[Check]]


@contextlib.contextmanager
def _plain(check: Check) -> Iterator[Check]:
    yield check


@contextlib.contextmanager
def _in_tmp(make: Callable[[Path], Check]) -> Iterator[Check]:
    with tempfile.TemporaryDirectory(prefix="routechaos-fuzz-") as tmp:
        yield make(Path(tmp))


TARGETS = [
    Target(
        "profile_yaml",
        "profile YAML text: a Profile or a ProfileError with file and line, in line order",
        fuzz_profiles.yaml_texts(),
        lambda: _plain(fuzz_profiles.check_yaml_text),
    ),
    Target(
        "profile_file",
        "profile file bytes (not always UTF-8): a Profile or a located ProfileError",
        fuzz_profiles.yaml_files(),
        lambda: _in_tmp(lambda d: fuzz_profiles.FileTarget(d / "fuzz.yaml")),
    ),
    Target(
        "profile_data",
        "profile data built in code: a Profile or a ProfileError naming the field",
        fuzz_profiles.profile_structures(),
        lambda: _plain(fuzz_profiles.check_structure),
    ),
    Target(
        "control_api",
        "control API requests over HTTP: 2xx, or a 4xx JSON error; journal.jsonl stays strict JSON",
        fuzz_http.control_requests(),
        fuzz_http.control_target,
    ),
    Target(
        "toxiproxy_api",
        "embedded Toxiproxy API requests over HTTP: never a 5xx; errors as Toxiproxy writes them",
        fuzz_http.toxiproxy_requests(),
        fuzz_http.toxiproxy_target,
    ),
    Target(
        "lane_http",
        "raw HTTP bytes to a lane: well-formed responses or a clean close, journaled, lane still serving",
        fuzz_http.raw_requests(),
        fuzz_http.lane_target,
    ),
    Target(
        "journal_lines",
        "journal.jsonl lines: Journal.load returns, or raises JournalError naming file and line",
        fuzz_journal.journal_files(),
        lambda: _in_tmp(lambda d: fuzz_journal.JournalTarget(d / "journal.jsonl")),
    ),
]
BY_NAME = {t.name: t for t in TARGETS}
