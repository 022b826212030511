"""``routechaos drill --ray``: the flag parses, and without the extra it is a usage error naming it.

The drill itself on Ray is tested in test_engine.py (starting Ray in a CLI subprocess costs
another ~15 s on this machine; the README's command was run by hand, figures there)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.cli.common import UsageError
from harness.profile import default_profile


def test_ray_flag_parses_with_and_without_an_address() -> None:
    from harness.cli import build_parser

    p = build_parser()  # main() cuts the agent command off at "--" before parsing
    assert p.parse_args(["drill", "x", "--ray"]).ray == ""
    assert p.parse_args(["drill", "x", "--ray", "ray://head:10001"]).ray == "ray://head:10001"
    assert p.parse_args(["drill", "x", "--ray", "auto", "--seed", "3"]).ray == "auto"
    assert p.parse_args(["drill", "x"]).ray is None


def test_without_the_extra_the_flag_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness.cli.raydrill import ray_drill

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError, as on a plain install
    with pytest.raises(UsageError, match=r"pip install 'routechaos\[ray\]'"):
        ray_drill("", default_profile(), tmp_path / "journal.jsonl", {})


def test_a_profile_with_toxics_is_refused_with_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from harness.cli.raydrill import ray_drill
    from harness.profile import profile_from_dict

    profile = profile_from_dict(
        {
            "name": "toxic",
            "lanes": {"primary": {"dialect": "openai-chat"}},
            "toxics": [{"lane": "primary", "type": "latency", "attributes": {"latency": 100}}],
        }
    )
    with pytest.raises(UsageError, match="toxics"):
        ray_drill("", profile, tmp_path / "journal.jsonl", {})
