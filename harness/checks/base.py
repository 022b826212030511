"""The machinery every check shares: verdicts, evidence, results, the registry, parameter parsing,
combination and the text rendering of a failed result (a timeline of the attempts that broke it).

The parts live in :mod:`harness.checks.result` (verdicts, evidence, results and their rendering)
and :mod:`harness.checks.registry` (the registry, the base class, parameter parsing); this module
holds the :class:`Report` of a whole drill and re-exports the rest, so every import from
``harness.checks.base`` still works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..journal import Journal
from .registry import CAPABILITIES, CHECKS, COMMON_PARAMS, Check, make_check, make_checks, register
from .result import CheckResult, Evidence, Verdict, combine, render_failure, render_timeline

__all__ = [
    "CAPABILITIES",
    "CHECKS",
    "COMMON_PARAMS",
    "Check",
    "CheckResult",
    "Evidence",
    "Report",
    "Verdict",
    "combine",
    "make_check",
    "make_checks",
    "register",
    "render_failure",
    "render_timeline",
]


@dataclass
class Report:
    """The results of every check of a drill and their combined verdict.

    Only ``severity: error`` results decide the verdict; ``warnings`` are drill-level facts a
    reader needs (a workload that ended before the profile's last fault window closed, SDK retries
    in a compressed drill) and never change it."""

    results: list[CheckResult]
    verdict: Verdict
    journal: Journal | None = field(default=None, repr=False, compare=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def failed(self) -> list[CheckResult]:
        return [r for r in self.results if r.decides and r.verdict is Verdict.FAIL]

    def unknown(self) -> list[CheckResult]:
        return [r for r in self.results if r.decides and r.verdict is Verdict.UNKNOWN]

    def warned(self) -> list[CheckResult]:
        """``severity: warn`` results that did not pass."""
        return [r for r in self.results if not r.decides and r.verdict is not Verdict.PASS]

    def summary(self) -> str:
        lines = [f"verdict: {self.verdict.value.upper()}"]
        for r in self.results:
            lines.append(f"  {r.label:7} {r.name}: {r.summary}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def render(self, **kw: Any) -> str:
        """The summary, then the rendering of every check that did not pass."""
        parts = [self.summary()]
        parts += [render_failure(r, self.journal, **kw) for r in self.results if r.verdict is not Verdict.PASS]
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.render()

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "results": [r.to_json() for r in self.results],
            "warnings": list(self.warnings),
        }
